"""What every peer adapter shares: the budget it trains under, its wall-clock deadline, the input
images it sees, and the interface of a trained peer. Imports no peer library."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from segmentation.datasets.sample_type import Sample


@dataclass(frozen=True)
class PeerBudget:
    """The benchmark's shared budget and crops, as a peer's own training loop can take them.

    Attributes:
        minutes: wall minutes of training (``train.max_minutes``), or None for epochs only.
        max_epochs: most epochs (``train.epochs``).
        crop_size: side of the square training crops (``data.crop_size``).
        batch_size: crops per step (``train.batch_size``).
        samples_per_epoch: crops per epoch (``data.samples_per_epoch``).
        threads: CPU threads the peer may use (those torch uses in this process).
        seed: seeds NumPy, torch and TensorFlow.
        device: ``"cpu"`` or a CUDA device (``"cuda"``, ``"cuda:N"``).
        stained_view: how stained tissue is shown (``data.stained_view``), as to the families.
    """

    minutes: float | None
    max_epochs: int
    crop_size: int
    batch_size: int
    samples_per_epoch: int
    threads: int
    seed: int
    device: str = "cpu"
    stained_view: str = "rgb"

    @property
    def steps_per_epoch(self) -> int:
        """Steps of ``batch_size`` crops per epoch (at least 1)."""
        return max(1, self.samples_per_epoch // self.batch_size)


class Deadline:
    """A wall-clock deadline ``seconds`` after ``started`` (``time.perf_counter()``; now by
    default); ``seconds=None`` never passes."""

    def __init__(self, seconds: float | None, started: float | None = None):
        self.started = time.perf_counter() if started is None else started
        self.seconds = seconds

    def left(self) -> float:
        """Seconds left (``inf`` without a deadline, negative once passed)."""
        if self.seconds is None:
            return math.inf
        return self.started + self.seconds - time.perf_counter()

    def passed(self) -> bool:
        """Whether the deadline has passed."""
        return self.left() <= 0

    def elapsed(self) -> float:
        """Seconds since ``started``."""
        return time.perf_counter() - self.started


#: Epoch time allowance for the per-epoch bookkeeping that a one-epoch probe does not see.
EPOCH_MARGIN = 1.02


def epochs_for(
    left_seconds: float, probe_seconds: float, step_times: list[float], max_epochs: int
) -> tuple[int, float, float]:
    """How many epochs fit in ``left_seconds``, from a one-epoch probe.

    Args:
        left_seconds: budget left.
        probe_seconds: wall time of the probe's whole ``train_seg`` call.
        step_times: ``perf_counter`` times at which the probe's training steps started.
        max_epochs: the cap.

    Returns:
        ``(epochs, epoch_seconds, setup_seconds)``: at least 1 epoch; the epoch time is the mean
        step time times the steps (the whole probe when it made a single step).
    """
    steps = len(step_times)
    if steps >= 2:
        epoch = (step_times[-1] - step_times[0]) / (steps - 1) * steps
    else:
        epoch = probe_seconds
    setup = max(0.0, probe_seconds - epoch)
    fits = math.floor((left_seconds - setup) / (epoch * EPOCH_MARGIN)) if epoch > 0 else max_epochs
    return int(min(max(fits, 1), max_epochs)), epoch, setup


class DeadlineReached(Exception):
    """Raised inside a peer's training loop to stop it at the deadline (caught by the adapter)."""


class TrainedPeer(Protocol):
    """A peer trained by :func:`train` of its adapter.

    Attributes:
        parameters: trainable and frozen parameters of its network.
        facts: JSON-ready training facts: ``source``, ``train_seconds`` (wall time of the whole
            training call), ``train_crops``, ``train_epochs``, ``stopped_at_deadline``, ...
    """

    parameters: int
    facts: dict[str, Any]

    def tune(self, images: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
        """Tune the post-processing thresholds on validation images (``(H, W, 3)`` float32, see
        :func:`peer_input`) with their ``(H, W)`` int32 labels; returns the thresholds."""
        ...

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Segment one ``(H, W, 3)`` float32 input: ``(labels (H, W) int32, network seconds,
        post-processing seconds)``."""
        ...

    def oracle(self, labels: np.ndarray) -> np.ndarray:
        """The peer's post-processing applied to perfect network outputs made from ``(H, W)``
        int32 ``labels``; returns ``(H, W)`` int32 labels."""
        ...


def peer_input(image: np.ndarray, stained_view: str = "rgb") -> np.ndarray:
    """The input both peers train and predict on: the same normalised, three-channel image the
    families get (:func:`~segmentation.datasets.normalize.prepare_image` of the nuclear view),
    channels last.

    Args:
        image: ``(H, W, C)`` image as read (``C`` in ``{1, 3}``), any real dtype.
        stained_view: ``data.stained_view`` (``"rgb"`` or ``"hematoxylin"``).

    Returns:
        New C-contiguous ``(H, W, 3)`` float32 array, percentiles 1/99.8 mapped to 0/1.
    """
    from segmentation.datasets.normalize import prepare_image
    from segmentation.datasets.nuclear_view import nuclear_view

    return np.ascontiguousarray(prepare_image(nuclear_view(image, stained_view)).transpose(1, 2, 0))


def peer_inputs(samples: list[Sample], stained_view: str = "rgb") -> list[np.ndarray]:
    """:func:`peer_input` of every sample's image, in order."""
    return [peer_input(s.image, stained_view) for s in samples]


def check_crop_fits(samples: list[Sample], crop_size: int, peer: str) -> None:
    """Raise a ValueError naming the images smaller than ``crop_size`` (a peer that cannot pad
    its training crops needs every image at least that large)."""
    small = [s.name for s in samples if min(s.labels.shape) < crop_size]
    if small:
        raise ValueError(
            f"{peer}: {len(small)} image(s) smaller than data.crop_size={crop_size}, e.g. "
            f"{small[:3]}; lower data.crop_size (a multiple of 32) or leave those images out"
        )
