"""The checkpoint format: one self-describing file per trained model (or ensemble).

A model file is a ``torch.save`` dict of plain Python values and tensors (loadable with
``weights_only=True``)::

    format: "segmentation-model", format_version: 1
    family: "unet" | "fpn" | "maskrcnn"
    members: [{"config": model config, "state_dict": weights}, ...]   # ensemble = several
             # optional per member: "unused_keys": [...] (see drop_unused_weights)
    normalization: {"low": 1.0, "high": 99.8}     # percentile normalisation of inputs
    thresholds: {...}                            # tuned post-processing thresholds
    metrics: {...}                               # reached on its validation split
    recipe: {...}                                # the whole training config
    toolkit_version: "0.1.0"
    training_state: {...} | None                 # optimizer, scheduler, epoch, RNG (last.pt only)
    model_card: {...}                            # optional: a shipped model's description
    weights_sha256: "64 hex digits"              # added by atomic_save (see checksum.py)
    settings_sha256: "64 hex digits"             # all else but model_card and training_state
    training_state_sha256: "64 hex digits"       # added by atomic_save when training_state is set
    routes: {"stained": checkpoint dict}         # optional: a network of its own for a kind of image

The optional ``routes`` (format_version stays 1) give one kind of image a network of its own, as
StarDist ships one model for fluorescence and one for H&E: ``segment()`` sends each image whose
:func:`~segmentation.datasets.nuclear_view.view_kind` is a key of ``routes`` (``"gray"``,
``"stained"`` or ``"composite"``) to that network, every other image to the file's own
``members``. A route is a whole checkpoint dict (family, members, thresholds, normalization,
recipe, metrics, its own checksums) without a training state, a model card or routes of
its own (:func:`add_route`). Toolkits older than routes load such a file and ignore them.

A member's optional ``unused_keys`` lists weights left out of its ``state_dict`` because the
network never runs them (e.g. the encoder stages past ``encoder_depth`` that smp keeps); loading
accepts exactly those as missing (:func:`drop_unused_weights`).

The optional ``model_card`` (format_version stays 1; older files simply lack it) describes a model
that is handed to other people, such as the default model inside the package
(``segmentation/weights/default_unet.pt``, written by ``scripts/ship_default_model.py``). It is a
dict of plain values (str, int, float, bool, None, and lists/dicts of those) with the keys of
:data:`MODEL_CARD_KEYS`::

    name: "default_unet"
    description: "unet family (architecture unet, encoder resnet18, ...), 3.57 M parameters"
    recipe: "configs/default_unet.yaml"          # the recipe it was trained from
    data: "DSB2018 stage1_train (664 images), 565 train / 99 validation, data.val_fraction 0.15,
           split_seed 0"
    licence: "CC0 1.0 (public domain): ..."      # of the training data
    split: {"val_fraction", "split_seed", "test_fraction", "train_images", "validation_images",
            "validation_ids": [image names]}
    validation: {"float32": {"score", "f1_0.7", "seconds_per_image"}, "float16": {...}}
    baseline: {"name": "Otsu + watershed", "score", "f1_0.7", "seconds_per_image"}  # same images
    parameters: 3574451                          # parameters the network uses
    weights_dtype: "float16"
    training: {"crops", "seconds", "epochs", "machine", "metrics"}  # the budget actually spent
    date: "2026-11-21"
    retrain: ["segmentation pack ...", "segmentation train ...", "python scripts/ship_..."]

``validation.*.score`` is the DSB2018 competition score (mean over images of the mean over IoU
thresholds 0.5-0.95 of TP / (TP + FP + FN)); ``f1_0.7`` is F1 at IoU 0.7 pooled over the images.

Files are written atomically (a temporary file ``.<name>.<random>.tmp`` in the same folder, then
``os.replace``), so a run killed while saving leaves the previous checkpoint intact; a run killed
hard (SIGKILL, power loss) may leave the temporary file behind, which the trainer removes at the
next start of the run (:func:`orphaned_temporary_files`).

Every file carries checksums of its weights, of its settings (thresholds, normalisation, configs,
recipe, routes) and of its training state, verified at load: a file whose bytes changed is refused
as corrupt instead of segmenting badly (:mod:`.checksum`). Files written before the settings
checksum existed are checked on their weights only; files written before checksums existed still
load, with one warning per file.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from segmentation.training import checksum

FORMAT = "segmentation-model"
FORMAT_VERSION = 1

#: Keys a model card must have (see the module docstring).
MODEL_CARD_KEYS = (
    "name",
    "description",
    "recipe",
    "data",
    "licence",
    "split",
    "validation",
    "baseline",
    "parameters",
    "weights_dtype",
    "training",
    "date",
    "retrain",
)

_PLAIN = (str, int, float, bool, type(None))

#: Kinds of image a checkpoint may route to a network of its own (``view_kind``'s values).
ROUTE_KINDS = ("gray", "stained", "composite")


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and an atomic rename.

    A model checkpoint (a dict with ``format: "segmentation-model"``) is written with the
    checksums of its weights, settings and training state, its routes' too
    (:func:`.checksum.checksums`, recomputed from what is written), and its ``model_card`` as a
    plain dict; ``obj`` itself is not modified.
    """
    path = Path(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = _with_checksums(obj)  # its routes' too
        if isinstance(obj.get("model_card"), dict):  # e.g. a ModelCard: loadable as plain data
            obj["model_card"] = check_model_card(obj["model_card"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a model file is for sharing
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _with_checksums(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` with fresh checksums (stale ones, e.g. of a dropped training state, removed)."""
    out = {k: v for k, v in ckpt.items() if k not in checksum.KEYS}
    out.update(checksum.checksums(ckpt))
    if out.get("routes"):
        out["routes"] = {k: _with_checksums(r) for k, r in out["routes"].items()}
    return out


def orphaned_temporary_files(folder: str | Path, names: tuple[str, ...]) -> list[Path]:
    """Temporary files that :func:`atomic_save` left in ``folder`` when killed while writing one
    of ``names`` (``.<name>.<random>.tmp``), sorted; other files are never listed."""
    pattern = re.compile(r"\.(" + "|".join(re.escape(n) for n in names) + r")\.[A-Za-z0-9_]+\.tmp")
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and pattern.fullmatch(p.name))


def make_checkpoint(
    *,
    family: str,
    members: list[dict[str, Any]],
    thresholds: dict[str, Any],
    metrics: dict[str, Any],
    recipe: dict[str, Any],
    normalization: dict[str, float] | None = None,
    training_state: dict[str, Any] | None = None,
    model_card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a checkpoint dict; ``members`` is a list of ``{"config", "state_dict"}``.

    ``model_card`` (optional, see :func:`check_model_card`) is stored only when given.
    """
    from segmentation import __version__

    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": family,
        "members": [
            {
                "config": dict(m["config"]),
                "state_dict": {k: v.detach().cpu() for k, v in m["state_dict"].items()},
            }
            for m in members
        ],
        "normalization": dict(normalization or {"low": 1.0, "high": 99.8}),
        "thresholds": dict(thresholds),
        "metrics": dict(metrics),
        "recipe": recipe,
        "toolkit_version": __version__,
        "training_state": training_state,
    }
    if model_card is not None:
        ckpt["model_card"] = check_model_card(model_card)
    return ckpt


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"model card key {where}.{key!r} must be a string")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise ValueError(
            f"model card value {where} is a {type(value).__name__}; only str, int, float, bool, "
            "None and lists/dicts of them can be stored (convert tensors and arrays with .tolist() "
            "or float())"
        )


def check_model_card(card: dict[str, Any], *, complete: bool = False) -> dict[str, Any]:
    """Check that ``card`` is a dict of plain values; returns a copy (lists for tuples).

    Args:
        card: the model card (see the module docstring).
        complete: also require every key of :data:`MODEL_CARD_KEYS`.

    Raises:
        TypeError: ``card`` is not a dict. ValueError: a value is not plain, or (``complete``)
            a key is missing.
    """
    if not isinstance(card, dict):
        raise TypeError(f"a model card must be a dict, got {type(card).__name__}")
    _check_plain(card, "model_card")
    if complete:
        missing = [key for key in MODEL_CARD_KEYS if key not in card]
        if missing:
            raise ValueError(
                f"model card lacks the keys {missing}; every card has {MODEL_CARD_KEYS}"
            )

    def copy(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [copy(v) for v in value]
        return value

    return copy(card)


def half_precision(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``ckpt`` whose floating-point weights are float16, without its training state.

    Half the size of a float32 file; loading casts the weights back to the networks' float32
    (``load_state_dict`` copies into the existing parameters), so inference runs in float32 with
    weights rounded to 11 significant bits. Integer tensors (e.g. batch-norm counters) are kept.
    The input dict is not modified.
    """
    out = {key: value for key, value in ckpt.items() if key != "members"}
    if ckpt.get("routes"):
        out["routes"] = {kind: half_precision(route) for kind, route in ckpt["routes"].items()}
    out["members"] = [
        {
            **member,
            "state_dict": {
                k: (v.half() if v.is_floating_point() else v)
                for k, v in member["state_dict"].items()
            },
        }
        for member in ckpt["members"]
    ]
    out["training_state"] = None
    return out


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


def add_route(ckpt: dict[str, Any], kind: str, route: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``ckpt`` that sends images of ``kind`` to the network of ``route``.

    Args:
        ckpt: the model's checkpoint dict (its own members serve every other image).
        kind: a :func:`~segmentation.datasets.nuclear_view.view_kind`: ``"gray"``,
            ``"stained"`` (colour on a bright background) or ``"composite"``.
        route: a checkpoint dict of any family (e.g. a trained ``model.pt``, read); its training
            state, model card, routes and checksums are left out (checksums are written anew).

    Returns:
        The new dict (inputs not modified); a route already there for ``kind`` is replaced.

    Raises:
        ValueError: an unknown ``kind``, or ``route`` is not a checkpoint dict.
    """
    if kind not in ROUTE_KINDS:
        raise ValueError(f"kind must be one of {ROUTE_KINDS}, got {kind!r}")
    if not isinstance(route, dict) or route.get("format") != FORMAT:
        raise ValueError("route must be a checkpoint dict (read_checkpoint of a model file)")
    dropped = ("training_state", "model_card", "routes", *checksum.KEYS)
    clean = {key: value for key, value in route.items() if key not in dropped}
    clean["training_state"] = None
    return {**ckpt, "routes": {**(ckpt.get("routes") or {}), kind: clean}}


def read_checkpoint(path: str | Path, *, verify_settings: bool = True) -> dict[str, Any]:
    """Load and check a model file; errors name the file, what is wrong and what to do.

    The checksums (:mod:`.checksum`) are verified; a file written before checksums existed loads
    with one ``UserWarning`` per path and process, one written before ``settings_sha256`` existed
    is checked on its weights only.

    Args:
        path: the model file.
        verify_settings: ``False`` only to stamp settings changed on purpose anew
            (``python -m segmentation.training.checksum --accept-settings``); the weights are
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
            f"segmentation.training.checksum {path}`",
            UserWarning,
            stacklevel=2,
        )
    if not isinstance(ckpt.get("model_card", {}), dict):
        raise ValueError(
            f"{str(path)!r} has a model_card of type {type(ckpt['model_card']).__name__}; it must "
            "be a dict (rewrite it with scripts/ship_default_model.py)"
        )
    return ckpt


def drop_unused_weights(ckpt: dict[str, Any], size: int = 64) -> dict[str, Any]:
    """A copy of ``ckpt`` without the weights its dense networks never run (input not modified).

    segmentation-models-pytorch keeps every encoder stage even when ``encoder_depth`` uses fewer
    (a resnet18 cut after 4 stages still stores the 8.4 M parameters of its last stage). The
    modules that a forward pass on a ``(1, 3, size, size)`` input never calls are found with
    hooks; their weights are removed from the member's ``state_dict`` and named in its
    ``unused_keys``, and the pruned network is checked to give exactly the same output. Families
    whose networks are not dense (Mask R-CNN, whose heads run only on detections) are returned
    unchanged. Pruning a pruned checkpoint again changes nothing.

    Raises:
        ValueError: the pruned network's output differs (the weights are then all needed).
    """
    from segmentation.models.dense import modules_run
    from segmentation.models.registry import get_family

    family = get_family(ckpt["family"])
    out = {key: value for key, value in ckpt.items() if key != "members"}
    if ckpt.get("routes"):
        out["routes"] = {k: drop_unused_weights(r, size) for k, r in ckpt["routes"].items()}
    out["members"] = [dict(member) for member in ckpt["members"]]
    if not family.dense:
        return out
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    for member in out["members"]:
        config = family.inference_config(member["config"])
        net = family.build(config).eval()
        # a member pruned before (its unused_keys absent from the state dict) prunes to itself
        net.load_state_dict(member["state_dict"], strict=not member.get("unused_keys"))
        expected, called = modules_run(net, x)
        unused = [k for k in member["state_dict"] if k.rpartition(".")[0] not in called]
        if not unused:
            continue
        kept = {k: v for k, v in member["state_dict"].items() if k not in unused}
        pruned = family.build(config).eval()
        pruned.load_state_dict(kept, strict=False)
        with torch.no_grad():
            if not torch.equal(pruned(x), expected):
                raise ValueError(
                    f"dropping the weights {unused[:3]}... changes the network's output; they "
                    "are used, keep them"
                )
        member["state_dict"] = kept
        member["unused_keys"] = sorted(set(member.get("unused_keys", [])) | set(unused))
    return out
