"""Start training from a trained model's weights: ``train.init`` (fine-tuning).

What a Cellpose user does with ``--pretrained_model``: ``train.init=default`` starts every
ensemble member from the shipped default model, ``train.init=runs/x/model.pt`` from any model file
that ``segmentation train`` wrote. Only the weights are taken; the optimiser, schedule, epochs and
data come from the recipe, so a fine-tune is an ordinary run (its own ``--resume`` continues it
from its own ``last.pt``, not from the init file).

The recipe must build the same network as the file: the family and every ``model`` key that
shapes it (the encoder's published weights, ``encoder_weights``, are ignored: the file's weights
replace them). Weights the file does not hold because they were pruned as unused
(:func:`~segmentation.modelfile.drop_unused_weights`) keep their fresh values: the
network never runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from segmentation.modelfile import read_checkpoint
from segmentation.training.config import ConfigError

#: Keys of a member's model config that do not shape the network.
_IGNORED_KEYS = ("encoder_weights",)


def init_path(init: str) -> Path:
    """The model file that ``train.init`` names: ``default`` is the shipped default model.

    Raises:
        ConfigError: no such file (the message says what ``train.init`` accepts).
    """
    if init == "default":
        from segmentation.inference.default import default_model_path

        path = default_model_path()
    else:
        path = Path(init)
    if not path.is_file():
        raise ConfigError(
            f"train.init: model file {str(path)!r} not found; give the model.pt of a finished "
            "run, or 'default' for the shipped default model"
        )
    return path


def _network_keys(family: Any, config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in family.inference_config(config).items() if k not in _IGNORED_KEYS}


def initial_state(
    init: str,
    family_name: str,
    member_config: dict[str, Any],
    index: int,
    members: int,
    route: str | None = None,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The weights that ensemble member ``index`` of a recipe starts from.

    Args:
        init: ``train.init``: a model file path, or ``default``.
        family_name: the recipe's family (must be the file's).
        member_config: the recipe's model config of this member.
        index: the member's index; ``members``: how many the recipe trains. A file with one
            member initialises every member; otherwise it must have ``members`` members, taken
            in order.
        route: ``train.init_route``: start from the file's network for that kind of image
            (``"stained"``) instead of its main network.

    Returns:
        ``(state_dict, missing)``: float32 CPU tensors to load with ``strict=False``, and the
        network's weight names the file does not hold (pruned as unused).

    Raises:
        ConfigError: another family, another member count, or another network (the differing
            ``model`` keys are named); ValueError: the file is not a model file or is corrupt.
    """
    from segmentation.models.registry import get_family
    from segmentation.training.run_folder import changed_network_keys

    path = init_path(init)
    ckpt = read_checkpoint(path)
    if route is not None:
        routes = ckpt.get("routes") or {}
        if route not in routes:
            have = f"its routes: {', '.join(routes)}" if routes else "it has no routes"
            raise ConfigError(
                f"train.init_route: {str(path)!r} has no {route!r} route ({have}); drop "
                "train.init_route to start from its main network"
            )
        ckpt = routes[route]
    if ckpt["family"] != family_name:
        raise ConfigError(
            f"train.init: {str(path)!r} is a {ckpt['family']} model and this recipe trains "
            f"{family_name}; start from a {family_name} model or drop train.init"
        )
    stored = ckpt["members"]
    if len(stored) not in (1, members):
        raise ConfigError(
            f"train.init: {str(path)!r} has {len(stored)} ensemble members and this recipe "
            f"trains {members}; give a file with one member (it starts them all) or {members}"
        )
    member = stored[index if len(stored) == members else 0]
    family = get_family(family_name)
    changed = changed_network_keys(
        _network_keys(family, member["config"]), _network_keys(family, member_config)
    )
    if changed:
        raise ConfigError(
            f"train.init: {str(path)!r} holds another network than this recipe builds ("
            + "; ".join(changed)
            + "); set the recipe's model keys to the file's"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in member["state_dict"].items()}
    return state, list(member.get("unused_keys", []))


def load_initial_weights(
    model: torch.nn.Module,
    init: str,
    family_name: str,
    member_config: dict[str, Any],
    index: int,
    members: int,
    route: str | None = None,
) -> Path:
    """Load :func:`initial_state` into ``model`` (in place); returns the file's path.

    Raises:
        ConfigError: see :func:`initial_state`, or the weights do not fit the network (a
            missing weight that the file did not prune, or a shape that differs).
    """
    state, pruned = initial_state(init, family_name, member_config, index, members, route)
    path = init_path(init)
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ConfigError(f"train.init: the weights of {str(path)!r} do not fit: {err}") from err
    missing = sorted(set(result.missing_keys) - set(pruned))
    if missing or result.unexpected_keys:
        names = (missing or result.unexpected_keys)[:3]
        raise ConfigError(
            f"train.init: the weights of {str(path)!r} do not fit this network ("
            f"{len(missing)} missing, {len(result.unexpected_keys)} unexpected, e.g. {names})"
        )
    return path
