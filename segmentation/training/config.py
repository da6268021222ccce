"""Training recipes: YAML files validated into typed objects, with ``key=value`` overrides.

A recipe has four sections::

    family: unet                 # a registered family (segmentation.models.registry)
    model: {...}                 # handed to the family's build(); its keys are the family's
    data: {...}                  # DataConfig
    train: {...}                 # TrainConfig

An unknown key, a wrong type or a missing data path raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segmentation.training.config_checks import ConfigError, parse_section


@dataclass
class DataConfig:
    """Where the training images come from and how they are cut.

    Attributes:
        root: a DSB2018 Kaggle-layout folder, a packed cache file (``.npz``), a folder of images
            (with ``labels``), ``"sample"`` (the bundled sample) or ``"synthetic"``.
        labels: folder of label images matching ``root``'s image stems (folder layout only).
        val_fraction: share of images held out for validation (stratified by image type).
        test_fraction: share of images held out as a test split that training never sees (used
            by ``segmentation benchmark``); 0 for none. The held-out set (validation + test) is the
            one ``val_fraction + test_fraction`` alone would hold out, then cut in two.
        split_seed: seed of the train/validation/test split.
        crop_size: side of the square random training crops, a multiple of 32.
        samples_per_epoch: random crops drawn per epoch.
        workers: data-loader worker processes.
        max_images: use only the first N images (after sorting by name); None for all.
        synthetic_images: number of images when ``root`` is ``"synthetic"``.
        extra_train: more annotated data sets used for training only, never split into
            validation or test (packed ``.npz`` files, DSB2018 folders, or folders holding
            ``images/`` and ``labels/``), e.g. BBBC039 beside DSB2018.
        pipeline: ``loader`` (a DataLoader of :class:`CropDataset` crops, targets computed per crop
            on the CPU) or ``tensor`` (targets computed once per image, crops cut and augmented in
            batches on the training device: :mod:`segmentation.training.tensor_crops`; U-Net family).
        type_balance: (``tensor`` pipeline) images drawn with weight ``n_type ** -type_balance``:
            0 = every image alike, 1 = every image type alike.
        aug_grayscale: (``tensor`` pipeline) probability of turning a colour crop gray.
        aug_stain: (``tensor`` pipeline) half-width of the per-channel gain jitter of colour crops.
        aug_invert_colour: (``tensor`` pipeline) probability of inverting a colour crop.
        stained_view: how the network sees stained tissue (colour images on a bright
            background): ``rgb`` as they are, or ``hematoxylin``, their haematoxylin density from
            colour deconvolution (:mod:`segmentation.datasets.nuclear_view`). Recorded in the
            model file; inference applies the same view.
        split: ``random`` (stratified by image type) or ``group``: the test split holds out whole
            acquisition groups (:mod:`segmentation.datasets.groups`; needs ``test_fraction``).
        groups: CSV table of the acquisition groups (``name,group``) for ``split: group``; None
            computes them from the images.
        holdout: ``fnmatch`` patterns of image names never read for training or validation, in
            ``root`` and ``extra_train`` alike: held-out sources
            (:mod:`segmentation.evaluation.heldout`), e.g. ``["TCGA-*", "Huh7_*"]``.
    """

    root: str = "sample"
    labels: str | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.0
    split_seed: int = 0
    crop_size: int = 256
    samples_per_epoch: int = 1000
    workers: int = 2
    max_images: int | None = None
    synthetic_images: int = 16
    extra_train: list[str] = field(default_factory=list)
    pipeline: str = "loader"
    type_balance: float = 0.0
    aug_grayscale: float = 0.0
    aug_stain: float = 0.0
    aug_invert_colour: float = 0.0
    stained_view: str = "rgb"
    split: str = "random"
    groups: str | None = None
    holdout: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping.

    Attributes:
        epochs: passes of ``samples_per_epoch`` crops.
        batch_size: crops per step (per process under DDP).
        optimizer: ``adamw`` or ``sgd``.
        lr, weight_decay, momentum: optimiser settings (momentum for sgd).
        schedule: ``cosine``, ``step`` or ``constant``, after a linear warm-up.
        warmup_epochs: length of the linear warm-up, in epochs (may be fractional).
        step_epochs, step_gamma: the step schedule's period and factor.
        grad_clip: max gradient norm, or None.
        amp: mixed precision (bfloat16 autocast) on CUDA and on CPUs with native bfloat16 (AMX,
            AVX512-BF16; :mod:`segmentation.training.precision`); float32 on other CPUs.
        channels_last: channels-last memory format on CUDA, and on a CPU with bfloat16 autocast.
        seed: seeds Python, NumPy and torch, and the crops.
        val_every: validate every N epochs (and always after the last).
        max_minutes: stop training after this wall time (checked each epoch), or None.
        tune_thresholds: search post-processing thresholds on the validation split at the end.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        output: run folder (checkpoints, logs).
        member: train only this ensemble member (index), or None for all.
        progress: show progress bars.
        init: start from the weights of a model file (fine-tuning): its path, or ``default``
            for the shipped default model; None trains from scratch (or from the encoder's
            published weights). See :mod:`segmentation.training.init_weights`.
        init_route: start from the network of that file's route instead of its main network
            (``stained``: the default model's network for stained tissue).
    """

    epochs: int = 50
    batch_size: int = 8
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    step_epochs: int = 30
    step_gamma: float = 0.1
    grad_clip: float | None = 1.0
    amp: bool = True
    channels_last: bool = True
    seed: int = 0
    val_every: int = 1
    max_minutes: float | None = None
    tune_thresholds: bool = True
    device: str = "auto"
    output: str = "runs/model"
    member: int | None = None
    progress: bool = True
    init: str | None = None
    init_route: str | None = None


@dataclass
class Config:
    """A whole recipe. ``model`` is family-specific and checked by the family's ``build``."""

    family: str
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (what checkpoints store)."""
        return dataclasses.asdict(self)

    def members(self) -> list[dict[str, Any]]:
        """Model configs of the ensemble members (one when ``model.members`` is absent)."""
        base = {k: v for k, v in self.model.items() if k != "members"}
        overrides = self.model.get("members") or [{}]
        return [{**base, **dict(m)} for m in overrides]


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Validate a recipe given as a dict (the parsed YAML) into a :class:`Config`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a recipe must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"family", "model", "data", "train"})
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; valid top-level keys: family, model, data, train"
        )
    if "family" not in raw:
        raise ConfigError("missing key 'family' (one of: unet, fpn, maskrcnn)")
    from segmentation.models.registry import available_families

    if raw["family"] not in available_families():
        raise ConfigError(
            f"family: unknown model family {raw['family']!r}; choose one of: "
            f"{', '.join(available_families())}"
        )
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"model: expected a mapping of keys, got {type(model).__name__}")
    config = Config(
        family=raw["family"],
        model=dict(model),
        data=parse_section(DataConfig, raw.get("data"), "data"),
        train=parse_section(TrainConfig, raw.get("train"), "train"),
    )
    for key in ("type_balance", "aug_grayscale", "aug_invert_colour"):
        if not 0.0 <= getattr(config.data, key) <= 1.0:
            raise ConfigError(f"data.{key} must lie in [0, 1], got {getattr(config.data, key)}")
    if not 0.0 <= config.data.aug_stain < 1.0:
        raise ConfigError(f"data.aug_stain must lie in [0, 1), got {config.data.aug_stain}")
    if config.data.pipeline == "tensor" and config.family != "unet":
        raise ConfigError(
            f"data.pipeline tensor needs targets that are plain maps (family unet), not "
            f"{config.family!r}; use data.pipeline loader"
        )
    if config.train.init_route is not None and config.train.init is None:
        raise ConfigError(
            f"train.init_route {config.train.init_route!r} names a route of the train.init "
            "model file: set train.init (e.g. default) or drop train.init_route"
        )
    if config.data.split == "group" and config.data.test_fraction <= 0:
        raise ConfigError(
            "data.split group holds out whole acquisition groups as the test split: set "
            "data.test_fraction (e.g. 0.25)"
        )
    if config.data.crop_size % 32:
        raise ConfigError(f"data.crop_size must be a multiple of 32, got {config.data.crop_size}")
    if not 0.0 <= config.data.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {config.data.val_fraction}")
    held_out = config.data.val_fraction + config.data.test_fraction
    if config.data.test_fraction < 0 or held_out >= 1.0:
        raise ConfigError(
            f"data.test_fraction must be >= 0 and leave training images: val_fraction + "
            f"test_fraction = {held_out:g} must be below 1"
        )
    return config


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a raw recipe dict."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} must look like section.key=value, e.g. train.epochs=3"
            )
        path, value = item.split("=", 1)
        parts = path.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override {item!r}: the value {value!r} is not valid YAML ({_yaml_problem(err)}); "
                "quote strings that hold YAML syntax, e.g. model.encoder='name: x'"
            ) from None
    return raw


def _yaml_problem(err: yaml.YAMLError) -> str:
    """``"line L, column C: problem"`` from a PyYAML error, without its traceback-like dump."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + problem


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The parsed YAML of a recipe file, checked to be a mapping (an empty file gives ``{}``).

    Raises:
        ConfigError: the file is missing, is not valid YAML (the line, column and problem are
            named), or its top level is not a mapping of sections.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file {str(path)!r} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"recipe file {str(path)!r} is not a text (YAML) file") from None
    except yaml.YAMLError as err:
        raise ConfigError(
            f"recipe file {str(path)!r} is not valid YAML ({_yaml_problem(err)}); fix the syntax "
            "there (indentation, a missing ':' or an unclosed bracket or quote)"
        ) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"recipe file {str(path)!r} holds a {type(raw).__name__} at its top level; a recipe "
            "is a mapping of sections: family: ..., model: {...}, data: {...}, train: {...}"
        )
    return raw


def resolve_data_path(config: Config, config_dir: Path | None = None) -> Config:
    """Check that ``data.root``, ``data.labels``, ``data.groups`` and ``data.extra_train`` exist;
    relative paths are tried from the working directory, then from ``config_dir``. Returns the
    config with absolute paths."""

    def resolve(key: str, value: str | None) -> str | None:
        if value is None or value in ("sample", "synthetic"):
            return value
        candidates = [Path(value).expanduser()]
        if config_dir is not None and not Path(value).is_absolute():
            candidates.append(config_dir / value)
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise ConfigError(
                f"data.{key}: path {value!r} does not exist (tried {', '.join(map(str, candidates))}); "
                f"point it at a DSB2018 stage1_train folder, a packed .npz cache, or use 'sample'"
            )
        return str(found.resolve())

    d = config.data
    d.root, d.labels, d.groups = (resolve(k, getattr(d, k)) for k in ("root", "labels", "groups"))
    d.extra_train = [resolve(f"extra_train[{i}]", p) for i, p in enumerate(d.extra_train)]
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML recipe, apply overrides, validate, and check the data paths."""
    path = Path(path)
    raw = apply_overrides(read_recipe(path), overrides or [])
    return resolve_data_path(config_from_dict(raw), path.parent)
