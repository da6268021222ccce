"""Checksums that prove a model file is whole.

Every model file that :func:`segmentation.training.checkpoint.atomic_save` writes (the trainer's
``model.pt``, ``best.pt`` and ``last.pt``, the shipped default model, the device kit's models)
stores ``weights_sha256``: the SHA-256 of its members' weights. :func:`weights_sha256` feeds the
hash member by member, and within a member tensor by tensor in sorted name order, each as its name,
dtype, shape and raw bytes (C order, the machine's byte order, little-endian everywhere torch runs).
A ``last.pt`` also stores ``training_state_sha256`` over its training state (optimizer moments,
scheduler, RNG, history), so that ``--resume`` never continues from a damaged state.

:func:`segmentation.training.checkpoint.read_checkpoint` recomputes both and refuses a file whose
bytes changed after it was written ("model file X is corrupt (checksum mismatch)"): ``torch.load``
itself does not check the zip archive's CRCs, so a file with a few bytes changed inside its
weights loads without complaint and segments badly.

Files written before checksums existed load as before, with one warning per file and process
("... has no checksum ...") that names the way to add one::

    python -m segmentation.training.checksum MODEL.pt [MODEL.pt ...]

which rewrites each file with its checksum and leaves every weight bit-identical (checked).
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

#: Checkpoint keys holding the checksums.
WEIGHTS_KEY = "weights_sha256"
STATE_KEY = "training_state_sha256"
SIZE_KEY = "size_model_sha256"
KEYS = (WEIGHTS_KEY, STATE_KEY, SIZE_KEY)


def _feed_tensor(h: Any, name: str, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def weights_sha256(members: list[dict[str, Any]]) -> str:
    """Hex SHA-256 of the members' ``state_dict`` tensors, in the canonical order above.

    Args:
        members: a checkpoint's ``members`` (dicts with a ``state_dict`` of name -> tensor; any
            dtype and shape).

    Returns:
        64 hexadecimal characters. The same weights give the same digest whatever the dict order
        or device; any changed byte, dtype, shape or name gives another.
    """
    h = hashlib.sha256()
    for i, member in enumerate(members):
        state = member["state_dict"]
        h.update(f"member {i}: {len(state)} tensors\0".encode())
        for name in sorted(state):
            _feed_tensor(h, name, state[name])
    return h.hexdigest()


def _feed_value(h: Any, where: str, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        _feed_tensor(h, where, value)
    elif isinstance(value, dict):
        h.update(f"{where}: dict {len(value)}\0".encode())
        for key in sorted(value, key=repr):
            _feed_value(h, f"{where}[{key!r}]", value[key])
    elif isinstance(value, list | tuple):  # torch.load may give either back
        h.update(f"{where}: sequence {len(value)}\0".encode())
        for i, item in enumerate(value):
            _feed_value(h, f"{where}[{i}]", item)
    else:
        h.update(f"{where} = {value!r}\0".encode())


def state_sha256(state: Any) -> str:
    """Hex SHA-256 of a nested structure of dicts, lists, tensors and plain values (a
    ``training_state``): dict keys in sorted order, tensors as in :func:`weights_sha256`, other
    values by ``repr``."""
    h = hashlib.sha256()
    _feed_value(h, "training_state", state)
    return h.hexdigest()


def checksums(ckpt: dict[str, Any]) -> dict[str, str]:
    """The checksum entries a checkpoint dict is written with: ``weights_sha256`` and, when it
    has a training state, ``training_state_sha256``, and when it has a size model,
    ``size_model_sha256``."""
    out = {WEIGHTS_KEY: weights_sha256(ckpt["members"])}
    if ckpt.get("training_state") is not None:
        out[STATE_KEY] = state_sha256(ckpt["training_state"])
    if ckpt.get("size_model") is not None:
        h = hashlib.sha256()
        _feed_value(h, "size_model", ckpt["size_model"])
        out[SIZE_KEY] = h.hexdigest()
    return out


def mismatched(ckpt: dict[str, Any]) -> list[str]:
    """The checksum keys of a loaded checkpoint whose stored digest differs from its content's
    (``[]`` when all match or none is stored; see :func:`has_checksum`)."""
    expected = checksums(ckpt)
    # a checksummed file with a size model must carry its checksum too
    size_expected = SIZE_KEY in expected and WEIGHTS_KEY in ckpt
    return [
        key
        for key in KEYS
        if (key in ckpt or (key == SIZE_KEY and size_expected))
        and ckpt.get(key) != expected.get(key)
    ]


def has_checksum(ckpt: dict[str, Any]) -> bool:
    """Whether a loaded checkpoint carries a weights checksum (files written before checksums
    existed do not)."""
    return isinstance(ckpt.get(WEIGHTS_KEY), str)


def add_checksum(path: str | Path) -> bool:
    """Rewrite the model file ``path`` with its checksums, weights bit-identical.

    Returns:
        True when the file was rewritten, False when it already had a checksum (left untouched).

    Raises:
        FileNotFoundError, ValueError: the file is not a readable model file (see
            :func:`~segmentation.training.checkpoint.read_checkpoint`), or the weights read back
            differ from the original's.
    """
    from segmentation.training.checkpoint import atomic_save, read_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "no checksum" warning: being fixed here
        before = read_checkpoint(path)
    if has_checksum(before):
        return False
    atomic_save(before, path)
    after = read_checkpoint(path)
    for old, new in zip(before["members"], after["members"], strict=True):
        old, new = old["state_dict"], new["state_dict"]
        if old.keys() != new.keys() or not all(
            old[k].dtype == new[k].dtype and torch.equal(old[k], new[k]) for k in old
        ):
            raise ValueError(f"the weights read back from {path} differ from the original's")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m segmentation.training.checksum MODEL.pt ...``: add checksums in place."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m segmentation.training.checksum MODEL.pt [...]", file=sys.stderr)
        return 2
    for path in paths:
        try:
            done = add_checksum(path)
        except (FileNotFoundError, ValueError) as err:
            print(f"{path}: {err}", file=sys.stderr)
            return 2
        print(f"{path}: {'checksum added' if done else 'already has a checksum'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
