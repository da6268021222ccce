"""napari sample data: images of the bundled sample (:mod:`segmentation.datasets.sample_data`).

Each command returns the image and its expert annotation (hidden, as a Labels layer named
``"<name> annotation"``), so that a result can be compared with it, or the annotation used to try
"Fine-tune on these labels". Gray images (three equal channels in the PNG) open as one 2-D gray
plane; colour ones (H&E) as RGB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The sample images the manifest offers: command function name -> sample name.
SAMPLES = {
    "fluorescence": "fluo-small-a-2227fd9b",
    "fluorescence_wide": "fluo-wide-aaa52100",
    "brightfield": "bright-small-1a115525",
    "histology": "histo-small-2246874c",
}


def load_sample_layers(name: str) -> list[tuple[Any, dict[str, Any], str]]:
    """One bundled sample as napari layer data.

    Args:
        name: a sample name (``segmentation/sample/manifest.csv``), e.g.
            ``"fluo-small-a-2227fd9b"``.

    Returns:
        ``[(image, {"name": name, "rgb": ...}, "image"), (labels, {...}, "labels")]``: the image
        as ``(H, W)`` uint8 (gray) or ``(H, W, 3)`` uint8 (colour), and its ``(H, W)`` int32
        annotation, hidden.

    Raises:
        FileNotFoundError: no such sample (the message lists the names), or a broken install.
    """
    from segmentation.datasets.io import read_image, read_labels
    from segmentation.datasets.sample_data import sample_dir

    folder = sample_dir()
    image_path = folder / "images" / f"{name}.png"
    if not image_path.is_file():
        names = sorted(p.stem for p in (folder / "images").glob("*.png"))
        raise FileNotFoundError(f"no bundled sample named {name!r}; there are {names}")
    image = read_image(image_path)
    if image.ndim == 3 and all(np.array_equal(image[..., 0], image[..., c]) for c in (1, 2)):
        image = image[..., 0]  # gray stored as RGB
    labels = read_labels(folder / "labels" / f"{name}.png")
    return [
        (image, {"name": name, "rgb": image.ndim == 3}, "image"),
        (labels, {"name": f"{name} annotation", "visible": False}, "labels"),
    ]


def _command(name: str):
    def load() -> list[tuple[Any, dict[str, Any], str]]:
        return load_sample_layers(name)

    load.__doc__ = f"Bundled sample {name!r}: the image and its (hidden) expert annotation."
    return load


fluorescence = _command(SAMPLES["fluorescence"])
fluorescence_wide = _command(SAMPLES["fluorescence_wide"])
brightfield = _command(SAMPLES["brightfield"])
histology = _command(SAMPLES["histology"])
