"""Stamping older model files with the checksums they lack, or settings changed on purpose anew::

    python -m segmentation.modelfile.stamp MODEL.pt [MODEL.pt ...]
    python -m segmentation.modelfile.stamp --accept-settings MODEL.pt

Every weight and setting is read back and compared: the file's content never changes.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from segmentation.modelfile import checksum
from segmentation.modelfile.read import read_checkpoint
from segmentation.modelfile.write import atomic_save


def _content(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Digests of a checkpoint's content, its routes' included (stored checksums left out)."""
    routes = ckpt.get("routes") or {}
    return {**checksum.checksums(ckpt), "routes": {k: _content(r) for k, r in routes.items()}}


def add_checksum(path: str | Path, accept_settings: bool = False) -> bool:
    """Rewrite the model file ``path`` with every checksum it lacks, content identical.

    Args:
        path: the model file.
        accept_settings: also accept settings that no longer match their ``settings_sha256``
            (changed on purpose, e.g. a threshold set by hand) and stamp them anew; the weights
            are verified either way.

    Returns:
        True when the file was rewritten, False when it already had every checksum (and
        ``accept_settings`` is off): left untouched.

    Raises:
        FileNotFoundError, ValueError: the file is not a readable model file, or a checksum does
            not match (see :func:`~segmentation.modelfile.read.read_checkpoint`), or the
            weights or settings read back differ from the original's.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "no checksum" warning: being fixed here
        before = read_checkpoint(path, verify_settings=not accept_settings)
    if checksum.has_all_checksums(before) and not accept_settings:
        return False
    atomic_save(before, path)
    after = read_checkpoint(path)
    for old, new in zip(before["members"], after["members"], strict=True):
        old, new = old["state_dict"], new["state_dict"]
        if old.keys() != new.keys() or not all(
            old[k].dtype == new[k].dtype and torch.equal(old[k], new[k]) for k in old
        ):
            raise ValueError(f"the weights read back from {path} differ from the original's")
    if _content(before) != _content(after):
        raise ValueError(f"the settings or routes read back from {path} differ from the original's")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m segmentation.modelfile.stamp [--accept-settings] MODEL.pt ...``: add the
    missing checksums in place (``--accept-settings``: also stamp settings changed on purpose)."""
    args = list(sys.argv[1:] if argv is None else argv)
    accept = "--accept-settings" in args
    paths = [a for a in args if a != "--accept-settings"]
    if not paths or any(p.startswith("-") for p in paths):
        print(
            "usage: python -m segmentation.modelfile.stamp [--accept-settings] MODEL.pt [...]",
            file=sys.stderr,
        )
        return 2
    for path in paths:
        try:
            done = add_checksum(path, accept_settings=accept)
        except (FileNotFoundError, ValueError) as err:
            print(f"{path}: {err}", file=sys.stderr)
            return 2
        print(f"{path}: {'checksums written' if done else 'already has every checksum'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
