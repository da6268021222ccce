"""The layout of a model file (see :mod:`segmentation.modelfile`): assembling a checkpoint dict,
giving a kind of image a network of its own (a route), and half-precision copies."""

from __future__ import annotations

from typing import Any

from segmentation._version import __version__
from segmentation.modelfile import checksum
from segmentation.modelfile.card import check_model_card

FORMAT = "segmentation-model"

FORMAT_VERSION = 1
#: Kinds of image a checkpoint may route to a network of its own (``view_kind``'s values).
ROUTE_KINDS = ("gray", "stained", "composite")


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
