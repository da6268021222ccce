"""Reading model files: every check a file must pass before it segments anything, with errors that
name the file, what is wrong and what to do."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from segmentation.modelfile import checksum
from segmentation.modelfile.format import FORMAT, FORMAT_VERSION, ROUTE_KINDS

_WARNED_NO_CHECKSUM: set[str] = set()


def _not_a_model_file(path: Path, what: str) -> ValueError:
    return ValueError(
        f"{str(path)!r} is not a model file written by `segmentation train` ({what}); give the "
        "model.pt that training wrote (a YAML recipe is trained with `segmentation train RECIPE`)"
    )


def _corrupt(path: Path, why: str) -> ValueError:
    return ValueError(f"model file {str(path)!r} is corrupt ({why}): re-download or retrain it")


def _load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` with the toolkit's errors instead of torch's."""
    with path.open("rb") as f:
        head = f.read(64)
    if not head:
        raise _not_a_model_file(path, "the file is empty: it was not written completely")
    is_zip = head.startswith(b"PK\x03\x04")  # torch.save writes a zip archive
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for files it cannot read
        message = str(err)
        if "Unsupported global" in message:
            raise _not_a_model_file(
                path, "it holds Python objects, e.g. a network saved with torch.save(model)"
            ) from None
        if is_zip:
            if isinstance(err, zipfile.BadZipFile) or "zip archive" in message:
                raise _corrupt(path, "its zip archive is damaged or truncated") from None
            raise _corrupt(path, f"unreadable content: {type(err).__name__}") from None
        kind = "it is not a torch.save archive"
        try:
            text = head.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = ""
        if text and all(c.isprintable() or c in "\t\r\n" for c in text):
            kind = f"it is a text file, starting {text.splitlines()[0][:40]!r}"
        raise _not_a_model_file(path, kind) from None


def _check_weights(path: Path, ckpt: dict[str, Any], where: str) -> None:
    """Members with weights and configs, and matching weights, size model and training state
    checksums (``where``: which network); the settings by :func:`.checksum.check_settings`."""
    members = ckpt.get("members")
    if (
        not isinstance(members, list)
        or not members
        or not all(
            isinstance(m, dict) and isinstance(m.get("state_dict"), dict) and "config" in m
            for m in members
        )
    ):
        raise _corrupt(path, f"the members{where} lack their weights or config")
    if checksum.mismatched(ckpt, checksum.CONTENT_KEYS):
        raise _corrupt(path, f"checksum mismatch{where}")


def read_checkpoint(path: str | Path, *, verify_settings: bool = True) -> dict[str, Any]:
    """Load and check a model file; errors name the file, what is wrong and what to do.

    The checksums (:mod:`.checksum`) are verified; a file written before checksums existed loads
    with one ``UserWarning`` per path and process, one written before ``settings_sha256`` existed
    is checked on its weights only.

    Args:
        path: the model file.
        verify_settings: ``False`` only to stamp settings changed on purpose anew
            (``python -m segmentation.modelfile.stamp --accept-settings``); the weights are
            verified either way.

    Returns:
        The checkpoint dict (see the module docstring), tensors on the CPU.

    Raises:
        FileNotFoundError: no such file. ValueError: the file is empty, not a model file
            (random bytes, a YAML recipe, a bare state dict...), of a newer format, or corrupt
            (damaged archive, checksum mismatch: "model file X is corrupt (checksum mismatch):
            re-download or retrain it"), or with edited settings ("model file X is corrupt or
            edited: the settings ... do not match their checksum ...").
    """
    path = Path(path)
    if path.is_dir():
        raise _not_a_model_file(path, "it is a folder; the model file of a run is its model.pt")
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} not found")
    ckpt = _load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        what = f"it holds a {type(ckpt).__name__}"
        if isinstance(ckpt, dict):
            what += " without format " + repr(FORMAT)
        raise _not_a_model_file(path, what)
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has format version {ckpt['format_version']}, newer than this toolkit "
            f"reads ({FORMAT_VERSION}); upgrade the segmentation package"
        )
    _check_weights(path, ckpt, "")
    routes = ckpt.get("routes") or {}
    if not isinstance(routes, dict):
        raise _corrupt(path, f"its routes are a {type(routes).__name__}, not a dict")
    for kind, route in routes.items():
        if kind not in ROUTE_KINDS:
            raise ValueError(
                f"{str(path)!r} routes images of kind {kind!r}, not one of {ROUTE_KINDS}: the file "
                "comes from a newer toolkit; upgrade the segmentation package"
            )
        if not isinstance(route, dict) or route.get("routes"):
            raise _corrupt(path, f"its {kind} route is not a checkpoint without routes")
        _check_weights(path, route, f" of its {kind} route")
        if verify_settings:
            checksum.check_settings(path, route, f" of its {kind} route")
    if verify_settings:  # after the routes, so that a route's own error names it
        checksum.check_settings(path, ckpt, "")
    if not checksum.has_checksum(ckpt) and str(path.resolve()) not in _WARNED_NO_CHECKSUM:
        _WARNED_NO_CHECKSUM.add(str(path.resolve()))
        warnings.warn(
            f"model file {str(path)!r} has no checksum (written before checksums existed), so "
            "damage to it cannot be detected; add one with `python -m "
            f"segmentation.modelfile.stamp {path}`",
            UserWarning,
            stacklevel=2,
        )
    if not isinstance(ckpt.get("model_card", {}), dict):
        raise ValueError(
            f"{str(path)!r} has a model_card of type {type(ckpt['model_card']).__name__}; it must "
            "be a dict (rewrite it with scripts/ship_default_model.py)"
        )
    return ckpt
