"""Mixed precision and memory format of the training step, on CUDA and on CPUs that have bfloat16.

On a CPU with native bfloat16 instructions (Intel AMX or AVX512-BF16, read from
``/proc/cpuinfo``), ``torch.autocast("cpu", dtype=torch.bfloat16)`` with channels-last tensors
trains the default model 3.2-4.6x faster than float32 (``benchmarks/bench_cpu_training.py``,
docs/benchmarks.md "CPU training throughput"). Elsewhere the CPU trains in float32, contiguous,
as before: emulated bfloat16 is slower than float32.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

#: CPU flags (``/proc/cpuinfo``) of native bfloat16 matrix instructions.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def has_bf16_flags(cpuinfo: str) -> bool:
    """Whether the first ``flags`` line of a ``/proc/cpuinfo`` text names one of
    :data:`BF16_FLAGS`."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return bool(set(line.partition(":")[2].split()).intersection(BF16_FLAGS))
    return False


@functools.cache
def cpu_bf16_supported() -> bool:
    """Whether this CPU has native bfloat16 instructions that oneDNN uses (Linux only)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    if not has_bf16_flags(text):
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def uses_amp(device: torch.device, amp: bool) -> bool:
    """Whether ``train.amp`` turns bfloat16 autocast on for ``device``."""
    if not amp:
        return False
    return device.type == "cuda" or (device.type == "cpu" and cpu_bf16_supported())


def uses_channels_last(device: torch.device, channels_last: bool, amp: bool) -> bool:
    """Whether ``train.channels_last`` applies on ``device``: always on CUDA, on a CPU with
    bfloat16 autocast (where oneDNN's channels-last kernels are the fast ones)."""
    if not channels_last:
        return False
    return device.type == "cuda" or uses_amp(device, amp)


def autocast(device: torch.device, amp: bool) -> AbstractContextManager:
    """The autocast context of a training step (a no-op where :func:`uses_amp` is False)."""
    if uses_amp(device, amp):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()
