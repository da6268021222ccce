"""bfloat16 autocast and channels-last on CPUs that have native bfloat16, float32 elsewhere."""

from __future__ import annotations

import math

import pytest
import torch

from segmentation.training import precision
from segmentation.training.fit import fit
from tests.paths import CONFIG_DIR
from tests.tiny_recipes import tiny_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_bf16_flags_are_read_from_the_flags_line():
    amx = "processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n"
    plain = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"
    assert precision.has_bf16_flags(amx)
    assert precision.has_bf16_flags(amx.replace("amx_bf16", "avx512_bf16"))
    assert not precision.has_bf16_flags(plain)
    assert not precision.has_bf16_flags("")


@pytest.mark.parametrize("supported", [True, False])
def test_amp_and_channels_last_follow_the_device(monkeypatch, supported):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: supported)
    assert precision.uses_amp(CPU, True) is supported
    assert precision.uses_amp(CUDA, True) and not precision.uses_amp(CUDA, False)
    assert not precision.uses_amp(CPU, False)
    assert precision.uses_channels_last(CPU, True, True) is supported
    assert not precision.uses_channels_last(CPU, True, False)  # float32: contiguous is as fast
    assert precision.uses_channels_last(CUDA, True, False)
    context = precision.autocast(CPU, True)
    assert isinstance(context, torch.autocast) is supported


def test_training_with_amp_on_the_cpu_gives_finite_losses(tmp_path):
    rows = []
    config = tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path / "amp", ["train.amp=true"])
    fit(config, callbacks=[rows.append])
    assert rows and all(math.isfinite(r["total"]) and r["crops"] == 4 for r in rows)
