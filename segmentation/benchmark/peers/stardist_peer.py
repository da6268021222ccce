"""StarDist as a benchmark peer: ``StarDist2D`` with its default 2-D config (``Config2D``: 32 rays,
grid 1x1, its U-Net, Adam 3e-4 with ReduceLROnPlateau), built from scratch (no published weights),
trained by ``StarDist2D.train`` and tuned by ``StarDist2D.optimize_thresholds`` on the validation
split, as StarDist's own training notebook does.

What the benchmark sets: three input channels (the families' normalised input), the shared crop
size (``train_patch_size``), batch size, crops per epoch (``steps_per_epoch = samples_per_epoch //
batch_size``), seed and thread count, and the wall-clock budget, enforced by a Keras callback that
stops training after the batch during which the deadline passes (StarDist then validates that
epoch and reloads its best weights by validation loss, as after any run). Augmentation: random
flips, 90-degree rotations and intensity changes, those of StarDist's training notebook.

Imported only by :func:`segmentation.benchmark.peers.load_peer`: importing it imports TensorFlow.
"""

from __future__ import annotations

import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from csbdeep.utils.tf import keras_import  # noqa: E402
from stardist import fill_label_holes, relabel_image_stardist  # noqa: E402
from stardist.geometry import polygons_to_label  # noqa: E402
from stardist.models import Config2D, StarDist2D  # noqa: E402
from stardist.nms import non_maximum_suppression  # noqa: E402

from segmentation.benchmark.peers.common import (  # noqa: E402
    Deadline,
    PeerBudget,
    check_crop_fits,
    peer_inputs,
)
from segmentation.datasets.sample_type import Sample  # noqa: E402

Callback = keras_import("callbacks", "Callback")

#: What training writes as it goes that the benchmark does not need.
_QUIET = {"train_tensorboard": False}


class StopAtDeadline(Callback):
    """Keras callback: stop ``fit`` after the batch during which ``deadline`` passes; counts the
    batches and epochs run."""

    def __init__(self, deadline: Deadline):
        super().__init__()
        self.deadline = deadline
        self.batches = 0
        self.epochs = 0
        self.stopped = False

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches += 1
        if self.deadline.passed():
            self.model.stop_training = True
            self.stopped = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs = epoch + 1


def augmenter(rng: np.random.Generator):
    """StarDist's notebook augmentation as ``augment(x, y) -> (x, y)``: random axis permutation
    and flips of the ``(h, w, 3)`` float32 crop ``x`` and its ``(h, w)`` int labels ``y``, then a
    random gain (0.6-2), offset (+-0.2) and a little Gaussian noise on ``x``; new arrays."""

    def augment(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() > 0.5:
            x, y = x.transpose(1, 0, 2), y.T
        for axis in (0, 1):
            if rng.random() > 0.5:
                x, y = np.flip(x, axis=axis), np.flip(y, axis=axis)
        x = x * rng.uniform(0.6, 2) + rng.uniform(-0.2, 0.2)
        x = x + 0.02 * rng.uniform(0, 1) * rng.normal(0, 1, x.shape)
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)

    return augment


def set_threads(threads: int, device: str) -> str:
    """Give TensorFlow ``threads`` intra-op threads (and one inter-op thread), and hide GPUs on a
    CPU run. Returns a note when TensorFlow had already started and kept its settings."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        if device == "cpu":
            tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        used = tf.config.threading.get_intra_op_parallelism_threads()
        return f"TensorFlow had started already: intra-op threads {used or 'all cores'}"
    return ""


class TrainedStarDist:
    """A trained ``StarDist2D`` with its thresholds (see :class:`~.common.TrainedPeer`)."""

    def __init__(self, model: StarDist2D, facts: dict[str, Any]):
        self.model = model
        self.facts = facts
        self.parameters = int(model.keras_model.count_params())

    def tune(self, images: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
        """``StarDist2D.optimize_thresholds`` on the validation images (its own search: NMS
        thresholds 0.3/0.4/0.5, probability threshold maximising its mean F1 at IoU 0.3/0.5/0.7);
        the thresholds stay in the model (and its folder's thresholds.json)."""
        self.model.optimize_thresholds(images, [fill_label_holes(y) for y in labels])
        return {"prob": float(self.model.thresholds.prob), "nms": float(self.model.thresholds.nms)}

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The network (``StarDist2D.predict``: probabilities and ray distances), then StarDist's
        post-processing (polygon NMS and rendering), timed apart; the same steps as
        ``predict_instances``. ``image``: ``(H, W, 3)`` float32; labels ``(H, W)`` int32."""
        started = time.perf_counter()
        prob, dist = self.model.predict(image, show_tile_progress=False)
        network = time.perf_counter()
        points, probi, disti = non_maximum_suppression(
            dist,
            prob,
            grid=self.model.config.grid,
            prob_thresh=self.model.thresholds.prob,
            nms_thresh=self.model.thresholds.nms,
        )
        labels = polygons_to_label(disti, points, prob=probi, shape=image.shape[:2])
        done = time.perf_counter()
        return labels.astype(np.int32, copy=False), network - started, done - network

    def oracle(self, labels: np.ndarray) -> np.ndarray:
        """Each nucleus replaced by its star-convex polygon of ``n_rays`` rays from its centre
        (StarDist's ``relabel_image_stardist``): the best StarDist's representation can do."""
        return relabel_image_stardist(labels, n_rays=self.model.config.n_rays).astype(np.int32)


def train(
    train_samples: list[Sample],
    val_samples: list[Sample],
    budget: PeerBudget,
    output: Path,
    options: dict[str, Any] | None = None,
) -> TrainedStarDist:
    """Build ``StarDist2D`` from scratch and train it with ``StarDist2D.train`` under ``budget``.

    Args:
        train_samples, val_samples: the benchmark's training and validation images (each at
            least ``budget.crop_size`` on a side).
        budget: the shared budget (wall minutes, epochs, crops, threads, seed).
        output: run folder; the model is saved in ``output/stardist`` (config, weights).
        options: ``Config2D`` keywords that replace its defaults (e.g. ``{"grid": [2, 2]}``).

    Returns:
        The trained model with its training facts.
    """
    unknown = sorted(k for k in (options or {}) if not hasattr(Config2D(), k))
    if unknown:
        raise ValueError(f"stardist: unknown Config2D option(s) {unknown}; see Config2D's fields")
    check_crop_fits(train_samples + val_samples, budget.crop_size, "stardist")
    note = set_threads(budget.threads, budget.device)
    tf.random.set_seed(budget.seed)  # StarDist2D.train seeds NumPy's global generator
    x_train = peer_inputs(train_samples, budget.stained_view)
    y_train = [fill_label_holes(s.labels) for s in train_samples]
    x_val = peer_inputs(val_samples, budget.stained_view)
    y_val = [fill_label_holes(s.labels) for s in val_samples]
    settings = {
        "n_channel_in": 3,
        "train_patch_size": (budget.crop_size, budget.crop_size),
        "train_batch_size": budget.batch_size,
        "train_epochs": budget.max_epochs,
        "train_steps_per_epoch": budget.steps_per_epoch,
        "use_gpu": False,  # gputools for the data generator, not TensorFlow's device
        **_QUIET,
        **(options or {}),
    }
    config = Config2D(**settings)
    output.mkdir(parents=True, exist_ok=True)
    model = StarDist2D(config, name="stardist", basedir=str(output))
    deadline = Deadline(None if budget.minutes is None else 60 * budget.minutes)
    model.prepare_for_training()
    stopper = StopAtDeadline(deadline)
    model.callbacks.append(stopper)
    model.train(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        augmenter=augmenter(np.random.default_rng(budget.seed)),
        seed=budget.seed,
        epochs=budget.max_epochs,
        steps_per_epoch=budget.steps_per_epoch,
    )
    facts = {
        "source": f"trained by stardist {version('stardist')} (StarDist2D.train, Config2D "
        f"defaults: {config.n_rays} rays, grid {tuple(config.grid)}), TensorFlow {tf.__version__}",
        "train_seconds": deadline.elapsed(),
        "train_crops": stopper.batches * budget.batch_size,
        "train_epochs": stopper.epochs,
        "stopped_at_deadline": stopper.stopped,
        "threads": budget.threads,
    }
    if note:
        facts["threads_note"] = note
    return TrainedStarDist(model, facts)
