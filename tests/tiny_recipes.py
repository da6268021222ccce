"""Tiny CPU training runs shared by the trainer's tests."""

from pathlib import Path

import yaml

from segmentation.training.config import apply_overrides, config_from_dict

# Shrinks any recipe to a 2-step CPU run on two bundled sample images.
TINY = [
    "data.root=sample",
    "data.max_images=2",
    "data.crop_size=64",
    "data.samples_per_epoch=4",
    "data.workers=0",
    "train.batch_size=2",
    "train.epochs=1",
    "train.device=cpu",
    "train.amp=false",
    "train.progress=false",
    "train.tune_thresholds=false",
    "data.split=random",  # the bundled sample is not in the recipes' group tables
    "data.test_fraction=0",
    "data.extra_train=[]",
]


def tiny_config(path: Path, out: Path, extra: list[str] = ()):
    """The recipe at ``path`` shrunk by :data:`TINY`, training into ``out``."""
    raw = yaml.safe_load(path.read_text())
    return config_from_dict(apply_overrides(raw, [*TINY, f"train.output={out}", *extra]))


def tiny_recipe_file(path: Path, out: Path, extra: list[str] = ()) -> Path:
    """``configs/tiny_unet.yaml`` shrunk by :data:`TINY`, written as the YAML file ``path``."""
    from tests.paths import CONFIG_DIR

    config = tiny_config(CONFIG_DIR / "tiny_unet.yaml", out, extra)
    path.write_text(yaml.safe_dump(config.to_dict()))
    return path
