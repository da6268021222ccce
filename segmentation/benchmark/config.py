"""Benchmark configurations: which architectures to compare, on which data, under which budget.

A benchmark file (YAML)::

    output: runs/benchmark            # results, plots and each architecture's training run
    seed: 0                           # train.seed of every architecture
    device: auto                      # where training and inference run
    examples: 4                       # test images in the example grid
    data: {root: ..., val_fraction: 0.05, test_fraction: 0.10, split_seed: 0, crop_size: 128, ...}
    train: {epochs: 45, ...}          # the shared budget (epochs and/or max_minutes)
    test: {images: DIR, labels: DIR_OR_CSV}   # optional: a test set given by path
    architectures:
      - {name: Otsu + watershed, baseline: otsu}
      - {name: U-Net, recipe: configs/unet_ensemble.yaml, overrides: ["model.members=[{encoder: resnet18}]"]}
      - {name: Mask R-CNN, checkpoint: runs/maskrcnn/model.pt, note: "trained elsewhere"}
      - {name: StarDist, peer: stardist}    # a peer, trained by its own code (extras: peers)
      - {name: Cellpose, peer: cellpose, overrides: ["learning_rate=0.01"]}

``data`` and ``train`` override every recipe's own sections, so each architecture sees the same
split, crops, augmentation and budget. The budget is per architecture: an ensemble of ``k`` members
gets ``epochs / k`` epochs and ``max_minutes / k`` minutes per member. ``overrides``
(``section.key=value``) apply last, e.g. for a family's batch size. A peer (StarDist, Cellpose:
:mod:`segmentation.benchmark.peers`) takes the shared split, crops, batch size, crops per epoch,
wall minutes and thread count; its ``overrides`` are ``key=value`` keywords of its own config
(StarDist's ``Config2D``, Cellpose's ``train_seg``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segmentation.benchmark.peers import PEERS
from segmentation.training.config import (
    ConfigError,
    DataConfig,
    TrainConfig,
    apply_overrides,
    parse_section,
)

#: Classical baselines a benchmark can name (``baseline: otsu``).
BASELINES = ("otsu",)


def slug(name: str) -> str:
    """File-system-safe form of an architecture name (``"U-Net (single)"`` -> ``u-net_single``),
    the name of its run folder."""
    return re.sub(r"[^a-z0-9.-]+", "_", name.lower()).strip("_") or "architecture"


@dataclass
class Architecture:
    """One row of the benchmark.

    Attributes:
        name: label in tables and plots (unique).
        recipe: a training recipe (``configs/*.yaml``) to train under the shared budget.
        overrides: ``section.key=value`` applied to the recipe after the shared sections.
        checkpoint: an already-trained model file used instead of training.
        baseline: a classical method instead of a network (``"otsu"``).
        peer: another tool trained by its own code (``"stardist"``, ``"cellpose"``).
        note: free text shown in the table (e.g. how a checkpoint was trained).
    """

    name: str
    recipe: str | None = None
    overrides: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    baseline: str | None = None
    peer: str | None = None
    note: str = ""


@dataclass
class TestSet:
    """A test set given by path: ``images`` (a folder of images, flat or in the Kaggle layout) and
    ``labels`` (a folder of label images with the same stems, or a Kaggle solution CSV)."""

    images: str
    labels: str


@dataclass
class BenchmarkConfig:
    """A whole benchmark (see the module docstring)."""

    architectures: list[Architecture]
    data: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    test: TestSet | None = None
    output: str = "runs/benchmark"
    seed: int = 0
    device: str = "auto"
    examples: int = 4
    source: str | None = None

    def data_config(self) -> DataConfig:
        """The shared data section as a validated :class:`DataConfig`."""
        return parse_section(DataConfig, self.data, "data")


_TOP_KEYS = {"architectures", "data", "train", "test", "output", "seed", "device", "examples"}


def _architecture(raw: Any, index: int) -> Architecture:
    where = f"architectures[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with a name, got {raw!r}")
    keys = {"name", "recipe", "overrides", "checkpoint", "baseline", "peer", "note"}
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise ConfigError(
            f"unknown key {where}.{unknown[0]}; valid keys: name, recipe, overrides, checkpoint, "
            "baseline, peer, note"
        )
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise ConfigError(f"{where}: needs a 'name' (text shown in the tables)")
    sources = [k for k in ("recipe", "checkpoint", "baseline", "peer") if raw.get(k) is not None]
    for alone in ("baseline", "peer"):
        if raw.get(alone) is not None and len(sources) > 1:
            others = ", ".join(k for k in sources if k != alone)
            raise ConfigError(f"{where} ({raw['name']}): a {alone} takes no {others}")
    if not sources:
        raise ConfigError(
            f"{where} ({raw['name']}): give a 'recipe' to train, a 'checkpoint' to evaluate, "
            f"a 'baseline' (one of: {', '.join(BASELINES)}) or a 'peer' (one of: "
            f"{', '.join(PEERS)})"
        )
    for key, valid in (("baseline", BASELINES), ("peer", PEERS)):
        if raw.get(key) is not None and raw[key] not in valid:
            raise ConfigError(
                f"{where}.{key}: unknown {key} {raw[key]!r}; choose one of: {', '.join(valid)}"
            )
    overrides = raw.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{where}.overrides: expected a list of 'section.key=value' strings")
    if raw.get("peer") is not None:
        bad = [o for o in overrides if "=" not in o or not o.partition("=")[0].strip()]
        if bad:
            raise ConfigError(
                f"{where}.overrides: {bad[0]!r} is not key=value; a peer's overrides are keywords "
                "of its own config, e.g. grid=[2, 2] (StarDist) or learning_rate=0.01 (Cellpose)"
            )
    return Architecture(
        name=raw["name"].strip(),
        recipe=raw.get("recipe"),
        overrides=list(overrides),
        checkpoint=raw.get("checkpoint"),
        baseline=raw.get("baseline"),
        peer=raw.get("peer"),
        note=str(raw.get("note") or ""),
    )


def benchmark_from_dict(raw: dict[str, Any], source: str | None = None) -> BenchmarkConfig:
    """Validate a parsed benchmark file; errors name the key and the fix."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a benchmark file must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; valid top-level keys: {', '.join(sorted(_TOP_KEYS))}"
        )
    archs = raw.get("architectures")
    if not isinstance(archs, list) or not archs:
        raise ConfigError("architectures: give a non-empty list of architectures to compare")
    architectures = [_architecture(a, i) for i, a in enumerate(archs)]
    names = [a.name for a in architectures]
    if len(set(names)) != len(names):
        raise ConfigError(f"architecture names must be unique, got {names}")
    data = raw.get("data")
    if not isinstance(data, dict) or "root" not in data:
        raise ConfigError(
            "data: give the shared data section with at least 'root' (a DSB2018 folder, a packed "
            ".npz, 'sample' or 'synthetic')"
        )
    shared = parse_section(DataConfig, data, "data")  # validates keys and types
    if shared.test_fraction < 0 or shared.val_fraction + shared.test_fraction >= 1:
        raise ConfigError(
            "data.val_fraction + data.test_fraction must be below 1 (and each >= 0) to leave "
            "training images"
        )
    train = raw.get("train") or {}
    parse_section(TrainConfig, train, "train")
    test = raw.get("test")
    if test is not None:
        if not isinstance(test, dict) or set(test) != {"images", "labels"}:
            raise ConfigError("test: expected {images: DIR, labels: DIR_OR_SOLUTION_CSV}")
        if data.get("test_fraction", 0):
            raise ConfigError("give either data.test_fraction or a test set by path, not both")
        test = TestSet(str(test["images"]), str(test["labels"]))
    config = BenchmarkConfig(
        architectures=architectures,
        data=dict(data),
        train=dict(train),
        test=test,
        output=str(raw.get("output", "runs/benchmark")),
        seed=int(raw.get("seed", 0)),
        device=str(raw.get("device", "auto")),
        examples=int(raw.get("examples", 4)),
        source=source,
    )
    if test is None and not config.data_config().test_fraction > 0:
        raise ConfigError(
            "no test images: set data.test_fraction (e.g. 0.1) or give test: {images, labels}"
        )
    return config


def load_benchmark_config(path: str | Path, overrides: list[str] | None = None) -> BenchmarkConfig:
    """Read a benchmark YAML file and apply ``key=value`` overrides (``train.epochs=3``,
    ``output=runs/b``); relative recipe and checkpoint paths are taken from the working
    directory, then from the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark file {str(path)!r} not found")
    raw = yaml.safe_load(path.read_text()) or {}
    raw = apply_overrides(raw, overrides or [])
    config = benchmark_from_dict(raw, str(path))
    for arch in config.architectures:
        for key in ("recipe", "checkpoint"):
            value = getattr(arch, key)
            if value is None:
                continue
            candidates = [Path(value), path.parent / value]
            found = next((c for c in candidates if c.exists()), None)
            if found is None:
                raise ConfigError(
                    f"{arch.name}: {key} {value!r} does not exist (tried "
                    f"{', '.join(map(str, candidates))})"
                )
            setattr(arch, key, str(found))
    return config


def select_architectures(config: BenchmarkConfig, names: list[str]) -> BenchmarkConfig:
    """Keep only the architectures named in ``names`` (exact names, in the file's order).

    Used to split one benchmark over several processes or machines: the split, budget and
    every shared setting stay those of the file, so the rows of the parts are comparable.

    Raises:
        ConfigError: a name is not in the file (the message lists the file's names).
    """
    known = [arch.name for arch in config.architectures]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"--only {unknown[0]!r} is not an architecture of this benchmark file; its names: "
            + ", ".join(repr(name) for name in known)
        )
    config.architectures = [arch for arch in config.architectures if arch.name in names]
    return config
