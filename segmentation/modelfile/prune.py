"""Pruning weights a network never runs (smp keeps encoder stages past ``encoder_depth``)."""

from __future__ import annotations

from typing import Any

import torch


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
