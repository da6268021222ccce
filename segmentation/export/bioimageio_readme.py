"""The ``README.md`` of a BioImage Model Zoo package (see :mod:`.bioimageio_rdf` for rdf.yaml)."""

from __future__ import annotations

import textwrap
from typing import Any

from segmentation.export.bioimageio_rdf import (
    INPUT_ID,
    OUTPUT_ID,
    WEIGHTS_LICENSE,
    PackageFacts,
    input_view,
    model_name,
    postprocessing,
    training_data,
)

_WIDTH = 100


def _scores(card: dict[str, Any]) -> str:
    validation = card.get("validation") or {}
    row = validation.get("float32") or next(iter(validation.values()), None)
    if not row or "score" not in row:
        return "No validation scores recorded (the model file has no model card)."
    text = f"DSB2018 score {row['score']:.3f}"
    if "f1_0.7" in row:
        text += f", F1@0.7 {row['f1_0.7']:.3f}"
    n = (card.get("split") or {}).get("validation_images")
    text += f" on {n} validation images" if n else " on its validation split"
    baseline = card.get("baseline") or {}
    if "score" in baseline:
        text += f" ({baseline.get('name', 'baseline')}: {baseline['score']:.3f})"
    return text + ", measured by the toolkit with its own decoding and the thresholds above."


def _markdown(blocks: list[str]) -> str:
    """Blocks (headings, paragraphs, ``- `` list items) wrapped to 100 columns, blank-separated."""
    out = []
    for block in blocks:
        if block.startswith("#"):
            out.append(block)
        elif block.startswith("- "):
            items = [
                textwrap.fill(item, _WIDTH, subsequent_indent="  ") for item in block.split("\n")
            ]
            out.append("\n".join(items))
        else:
            out.append(textwrap.fill(block, _WIDTH, break_on_hyphens=False))
    return "\n\n".join(out) + "\n"


def readme_text(facts: PackageFacts) -> str:
    """The package's ``README.md``: input, output, what the zoo runs and cannot, data, licences."""
    sets = training_data(facts.card)
    data = "\n".join(f"- {s['name']}: {s['licence']}" for s in sets)
    thresholds = ", ".join(f"{k} = {v}" for k, v in facts.thresholds.items())
    maps = ", ".join(facts.channels)
    others = [kind for kind in facts.routes if kind != facts.network]
    routes = (
        f" The toolkit sends {', '.join(others)} images to a network of their own, not in this "
        f"package (`segmentation export-bioimageio MODEL --network {others[0]}` exports it)."
        if others
        else ""
    )
    blocks = [
        f"# {model_name(facts)}",
        f"The {facts.network} network ({facts.family} family) of the model `{facts.title}`, "
        f"exported by the segmentation toolkit {facts.versions['toolkit']}. It predicts "
        f"per-pixel maps ({maps}) from which the toolkit draws the outline of every nucleus.",
        "## Input",
        f"`{INPUT_ID}`: `(batch, 3, y, x)` float32, {input_view(facts)}; sides of "
        f"{facts.min_size} + n * {facts.step} pixels. Preprocessing, run by the zoo: "
        f"`scale_range` maps the {facts.low:g} and {facts.high:g} percentiles of each image "
        f"(all channels together) to 0 and 1, then `clip` to [{facts.clip[0]:g}, "
        f"{facts.clip[1]:g}], as the toolkit normalises (where the two percentiles coincide, the "
        "toolkit falls back to the min..max range, the zoo divides by a small epsilon). The "
        f"toolkit also resizes images so that nuclei are about {facts.reference_diameter:g} px "
        "across (automatic size estimate, or `--diameter`): resize your images likewise before "
        f"running the package.{routes}",
        "## Output",
        f"`{OUTPUT_ID}`: `(batch, {len(facts.channels)}, y, x)` float32 maps ({maps}), averaged "
        f"over the model's ensemble members. When predicting tile by tile, crop {facts.halo} px "
        "(the halo) from each side of a tile.",
        "## What the zoo runs, and what it cannot",
        "The zoo's tools (bioimageio.core, deepImageJ, ilastik...) run the preprocessing and the "
        "network and give the maps. Labelled nuclei need the toolkit's instance decoding, a "
        f"post-processing step that the zoo cannot run: {postprocessing(facts)}. Thresholds: "
        f"{thresholds}; the same values are in `config.segmentation` of rdf.yaml. With the "
        "toolkit installed, `segmentation segment IMAGE --output DIR` (or "
        "`segmentation.segment(image, model=...)`) runs the whole pipeline on the model file "
        "this package came from.",
        "## Validation",
        f"{_scores(facts.card)} When the package was written, the TorchScript weights were "
        "checked to reproduce the toolkit's own network on the test input "
        f"(`test_input.npy` -> `test_output.npy`, to {1e-4:g}), and the zoo's preprocessing to "
        "match the toolkit's normalisation on it (largest difference "
        f"{facts.preprocessing_difference:.1e}). The toolkit's tests validate such packages "
        "with `bioimageio.spec`.",
        "## Training data and licences",
        f"The weights are released under the {WEIGHTS_LICENSE} licence (the toolkit's). "
        "Training data:",
        data or "- not recorded (the model file has no model card)",
        f"As stated in the model card: {facts.card.get('licence') or 'no model card'}.",
        "## Files",
        "`weights_torchscript.pt` (TorchScript, CPU, float32); `weights_state_dict.pt` with "
        "`architecture.py` (`NucleusMaps`, which needs torch and segmentation-models-pytorch "
        f"{facts.versions['smp']}: `environment.yaml`); `test_input.npy` and `test_output.npy` "
        "(also as `sample_input.tif` and `sample_output.tif`); `cover.png` (the test image | "
        "the outlines the toolkit decodes from `test_output.npy`).",
        "## Cite",
        "Caicedo et al., Nucleus segmentation across imaging experiments: the 2018 Data Science "
        "Bowl. Nature Methods 16, 1247-1253 (2019), doi:10.1038/s41592-019-0612-7; and the "
        "papers of the training data above.",
    ]
    return _markdown(blocks)
