"""Checksums that prove a model file is whole and unedited.

Every model file that :func:`segmentation.modelfile.write.atomic_save` writes (the trainer's
``model.pt``, ``best.pt`` and ``last.pt``, the shipped default model, the device kit's models, a
fine-tuned model) stores:

- ``weights_sha256``: the SHA-256 of its members' weights. :func:`weights_sha256` feeds the hash
  member by member, and within a member tensor by tensor in sorted name order, each as its name,
  dtype, shape and raw bytes (C order, the machine's byte order, little-endian everywhere torch
  runs);
- ``settings_sha256``: the SHA-256 of everything else that changes results
  (:func:`settings_sha256`): the family, each member's config (and ``unused_keys``), the
  normalisation, the post-processing thresholds, the recipe (which names the view of stained
  tissue the network was trained on), the metrics and format fields, and every route's whole
  content (kind, weights, settings, size model). Only the model card (documentation) and the
  training state are left out;
- ``size_model_sha256`` over its size model, when it has one;
- in a ``last.pt``, ``training_state_sha256`` over its training state (optimizer moments,
  scheduler, RNG, history), so that ``--resume`` never continues from a damaged state.

Each route carries the same keys for its own content.
:func:`segmentation.modelfile.read.read_checkpoint` recomputes them and refuses a file whose
bytes changed after it was written: "model file X is corrupt (checksum mismatch)" for the weights,
"model file X is corrupt or edited: the settings ... do not match their checksum" for the
settings (:func:`settings_error`). ``torch.load`` itself does not check the zip archive's CRCs, so
a file with a few bytes changed inside its weights or thresholds loads without complaint and
segments badly (``min_size`` 20 -> 200 finds 18 of 40 nuclei).

Older files load as before: a file without ``settings_sha256`` (written before it existed) is
checked on its weights only, without a warning; a file written before checksums existed loads
with one warning per file and process ("... has no checksum ...") that names the way to add them::

    python -m segmentation.modelfile.stamp MODEL.pt [MODEL.pt ...]

which rewrites each file with every checksum it lacks (``settings_sha256`` included) and leaves
every weight and setting identical (checked). Settings changed on purpose (e.g. a threshold set
by hand) are accepted, the weights still verified, with::

    python -m segmentation.modelfile.stamp --accept-settings MODEL.pt
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

#: Checkpoint keys holding the checksums.
WEIGHTS_KEY = "weights_sha256"
STATE_KEY = "training_state_sha256"
SIZE_KEY = "size_model_sha256"
SETTINGS_KEY = "settings_sha256"
KEYS = (WEIGHTS_KEY, STATE_KEY, SIZE_KEY, SETTINGS_KEY)
#: The checksums of tensors (weights, size model, training state): "checksum mismatch" at load.
CONTENT_KEYS = (WEIGHTS_KEY, STATE_KEY, SIZE_KEY)

#: Checkpoint entries that ``settings_sha256`` leaves out: covered by a checksum of their own, or
#: documentation (the model card). Every other entry is covered, including ones added later.
NOT_SETTINGS = ("training_state", "model_card", "size_model", *KEYS)


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


def _size_sha256(size_model: Any) -> str:
    h = hashlib.sha256()
    _feed_value(h, "size_model", size_model)
    return h.hexdigest()


def settings_sha256(ckpt: dict[str, Any]) -> str:
    """Hex SHA-256 of everything in a checkpoint dict that changes results, weights aside.

    Covered: every entry but those of :data:`NOT_SETTINGS` (the model card, the training state,
    the size model and the checksums themselves): the family, the normalisation, the thresholds,
    the recipe, the metrics, the format fields and any entry a later toolkit adds; of each member
    every entry but its ``state_dict`` (its config, its ``unused_keys``); of each route its kind
    and its whole content (the :func:`checksums` of the route, weights included, computed
    afresh), so that a route edited, swapped, added or removed changes the digest. Values are fed
    as in :func:`state_sha256` (dict keys sorted, lists and tuples alike).

    Args:
        ckpt: a checkpoint dict (see :mod:`segmentation.modelfile`), as written or as
            loaded.

    Returns:
        64 hexadecimal characters.
    """
    settings: dict[str, Any] = {}
    for key, value in ckpt.items():
        if key in NOT_SETTINGS:
            continue
        if key == "members" and isinstance(value, list | tuple):
            value = [
                {k: v for k, v in m.items() if k != "state_dict"} if isinstance(m, dict) else m
                for m in value
            ]
        elif key == "routes" and isinstance(value, dict):
            value = {
                kind: checksums(route) if isinstance(route, dict) else route
                for kind, route in value.items()
            }
        settings[key] = value
    h = hashlib.sha256()
    _feed_value(h, "settings", settings)
    return h.hexdigest()


def _expected(ckpt: dict[str, Any], key: str) -> str | None:
    """The digest ``key`` of ``ckpt``'s content (``None``: the file has nothing it covers)."""
    if key == WEIGHTS_KEY:
        return weights_sha256(ckpt["members"])
    if key == STATE_KEY:
        state = ckpt.get("training_state")
        return None if state is None else state_sha256(state)
    if key == SIZE_KEY:
        size = ckpt.get("size_model")
        return None if size is None else _size_sha256(size)
    return settings_sha256(ckpt)


def checksums(ckpt: dict[str, Any]) -> dict[str, str]:
    """The checksum entries a checkpoint dict is written with: ``weights_sha256`` and
    ``settings_sha256`` always, ``training_state_sha256`` when it has a training state and
    ``size_model_sha256`` when it has a size model. A route's own entries are not included
    (:func:`segmentation.modelfile.write.atomic_save` stamps each route with its own)."""
    out = {}
    for key in KEYS:
        digest = _expected(ckpt, key)
        if digest is not None:
            out[key] = digest
    return out


def mismatched(ckpt: dict[str, Any], keys: tuple[str, ...] = KEYS) -> list[str]:
    """The checksum keys (of ``keys``) of a loaded checkpoint whose stored digest differs from its
    content's (``[]`` when all match or none is stored; see :func:`has_checksum`).

    A digest that is not stored is not checked (older files), except ``size_model_sha256``: a
    file with a weights checksum and a size model must carry it too. Only the digests asked for
    are computed.
    """
    out = []
    for key in keys:
        required = key == SIZE_KEY and WEIGHTS_KEY in ckpt and ckpt.get("size_model") is not None
        if (key in ckpt or required) and ckpt.get(key) != _expected(ckpt, key):
            out.append(key)
    return out


def has_checksum(ckpt: dict[str, Any]) -> bool:
    """Whether a loaded checkpoint carries a weights checksum (files written before checksums
    existed do not)."""
    return isinstance(ckpt.get(WEIGHTS_KEY), str)


def has_all_checksums(ckpt: dict[str, Any]) -> bool:
    """Whether a checkpoint dict, and each of its routes, carries every checksum this toolkit
    writes (a file written before ``settings_sha256`` existed does not)."""
    routes = ckpt.get("routes") or {}
    return all(isinstance(ckpt.get(key), str) for key in checksums(ckpt)) and all(
        has_all_checksums(route) for route in routes.values() if isinstance(route, dict)
    )


def settings_error(path: str | Path, where: str = "") -> ValueError:
    """The error for a model file whose settings do not match ``settings_sha256``.

    Args:
        path: the model file.
        where: which network, e.g. ``" of its stained route"`` (``""``: the file's own).
    """
    return ValueError(
        f"model file {str(path)!r} is corrupt or edited: the settings{where} (post-processing "
        "thresholds, normalisation, network config, recipe) do not match their checksum "
        f"({SETTINGS_KEY}). Re-download or retrain it; if the settings were changed on purpose, "
        f"accept them with `python -m segmentation.modelfile.stamp --accept-settings {path}` "
        "(or save the checkpoint dict through segmentation.modelfile.write.atomic_save)"
    )


def check_settings(path: str | Path, ckpt: dict[str, Any], where: str = "") -> None:
    """Raise :func:`settings_error` when ``ckpt`` stores a ``settings_sha256`` that its settings
    do not match; a checkpoint without one (written before it existed) passes.

    Args:
        path: the model file (named in the error).
        ckpt: the loaded checkpoint dict, or one of its routes.
        where: which network, e.g. ``" of its stained route"`` (``""``: the file's own).
    """
    if mismatched(ckpt, (SETTINGS_KEY,)):
        raise settings_error(path, where)
