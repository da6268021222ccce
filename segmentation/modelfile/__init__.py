"""Model files: one self-describing file per trained model (or ensemble), a room of its own.

Training writes model files and inference reads them; this package holds the format and
nothing above it (it imports ``models/`` only to prune unused weights):

- :mod:`.format`: the layout below, :func:`make_checkpoint`, :func:`add_route`,
  :func:`half_precision`;
- :mod:`.write`: :func:`atomic_save` (checksums stamped, atomic rename);
- :mod:`.read`: :func:`read_checkpoint` (every check, errors that name the fix);
- :mod:`.checksum`: the digests of weights, settings, size model and training state;
  :mod:`.stamp` adds missing ones to old files (``python -m segmentation.modelfile.stamp``);
- :mod:`.card`: the model card (keys, plain-value check, its printed summary);
- :mod:`.prune`: :func:`drop_unused_weights`.

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
its own (:func:`~segmentation.modelfile.format.add_route`). Toolkits older than routes load such a file and ignore them.

A member's optional ``unused_keys`` lists weights left out of its ``state_dict`` because the
network never runs them (e.g. the encoder stages past ``encoder_depth`` that smp keeps); loading
accepts exactly those as missing (:func:`~segmentation.modelfile.prune.drop_unused_weights`).

The optional ``model_card`` (format_version stays 1; older files simply lack it) describes a model
that is handed to other people, such as the default model inside the package
(``segmentation/weights/default_unet.pt``, written by ``scripts/ship_default_model.py``). It is a
dict of plain values (str, int, float, bool, None, and lists/dicts of those) with the keys of
:data:`~segmentation.modelfile.card.MODEL_CARD_KEYS`::

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
next start of the run (:func:`~segmentation.modelfile.write.orphaned_temporary_files`).

Every file carries checksums of its weights, of its settings (thresholds, normalisation, configs,
recipe, routes) and of its training state, verified at load: a file whose bytes changed is refused
as corrupt instead of segmenting badly (:mod:`segmentation.modelfile.checksum`). Files written before the settings
checksum existed are checked on their weights only; files written before checksums existed still
load, with one warning per file.
"""

from __future__ import annotations

from segmentation.modelfile.card import MODEL_CARD_KEYS, ModelCard, check_model_card
from segmentation.modelfile.format import (
    FORMAT,
    FORMAT_VERSION,
    ROUTE_KINDS,
    add_route,
    half_precision,
    make_checkpoint,
)
from segmentation.modelfile.prune import drop_unused_weights
from segmentation.modelfile.read import read_checkpoint
from segmentation.modelfile.write import atomic_save, orphaned_temporary_files

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_CARD_KEYS",
    "ROUTE_KINDS",
    "ModelCard",
    "add_route",
    "atomic_save",
    "check_model_card",
    "drop_unused_weights",
    "half_precision",
    "make_checkpoint",
    "orphaned_temporary_files",
    "read_checkpoint",
]
