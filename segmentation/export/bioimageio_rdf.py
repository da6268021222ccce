"""The text of a BioImage Model Zoo package: ``rdf.yaml`` (format 0.5) and its ``README.md``.

Pure functions from a :class:`PackageFacts` (plain values gathered by
:func:`segmentation.export.bioimageio.to_bioimageio`) to a dict ready for ``yaml.safe_dump`` and
a Markdown string. No URL appears anywhere in the description, so that validating the package
needs no network (citations carry DOIs; data-set sources are named in free text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: ``format_version`` written: every field used exists since 0.5.4, which consumers of any 0.5
#: release read (``bioimageio.spec`` 0.5.14 validates it as 0.5.14, unchanged).
FORMAT_VERSION = "0.5.4"
#: Licence of the exported weights: the toolkit's own (``pyproject.toml``).
WEIGHTS_LICENSE = "MIT"
INPUT_ID = "image"
OUTPUT_ID = "maps"

#: The DSB2018 paper: cited by every package (the families reproduce its winners).
DSB2018_CITATION = {
    "text": "Caicedo et al., Nucleus segmentation across imaging experiments: the 2018 Data "
    "Science Bowl. Nature Methods 16, 1247-1253 (2019)",
    "doi": "10.1038/s41592-019-0612-7",
}

#: Training data sets a model card may name: key found in ``card["data"]`` -> what they are.
TRAINING_SETS: dict[str, dict[str, Any]] = {
    "dsb2018": {
        "name": "DSB2018 stage-1 training set (BBBC038, Broad Institute), with the community "
        "annotation fixes",
        "licence": "CC0 1.0 (public domain)",
        "cite": DSB2018_CITATION,
    },
    "bbbc039": {
        "name": "BBBC039 v1, nuclei of U2OS cells (Broad Institute)",
        "licence": "CC0 1.0 (public domain)",
        "cite": {
            "text": "Caicedo et al., Evaluation of deep learning strategies for nucleus "
            "segmentation in fluorescence images. Cytometry A 95(9), 952-965 (2019) (BBBC039)",
            "doi": "10.1002/cyto.a.23863",
        },
    },
    "gbm40": {
        "name": "GBM40 and TCGA glioma H&E tiles (Kong, Zhang et al., Emory University)",
        "licence": "no licence stated: research use; cite Kong et al., ISBI 2016, 1041-1045 and "
        "Zhang et al., ISBI 2017, 718-722",
    },
    "koyuncu": {
        "name": "HepG2/Huh7 Hoechst nuclei (Koyuncu, Cetin-Atalay, Gunduz-Demir, Bilkent "
        "University)",
        "licence": "no licence stated: research use with attribution; cite Koyuncu et al., "
        "Cytometry A 89A, 338-349 (2016)",
    },
}

_TAGS = ["2d", "nuclei", "pytorch", "semantic-segmentation", "instance-segmentation", "dsb2018"]
_NETWORK_TAGS = {"unet": ["unet"], "fpn": ["fpn"]}


@dataclass
class PackageFacts:
    """What the rdf.yaml and README say about one exported network (plain values).

    Attributes:
        title: model name (from its card, or the model file's stem).
        network: ``"main"`` or a route kind (``"stained"``).
        family: ``"unet"`` or ``"fpn"``.
        channels: names of the output maps, e.g. ``("body", "border", "contact")``.
        view: how the network sees stained tissue (``"rgb"`` or ``"hematoxylin"``).
        low, high: percentile normalisation of the model.
        clip: the ``(low, high)`` range normalised values are clipped to.
        step: the input's sides must be ``min_size + n * step`` pixels.
        min_size: smallest input side.
        halo: pixels to crop from each side of an output tile.
        thresholds: the decode's thresholds (dict).
        card: the model card (may be empty).
        versions: ``{"toolkit", "torch", "smp"}`` version strings.
        files: package file name -> sha256, for ``rdf.yaml``'s file references.
        members: the architecture's constructor arguments (``NucleusMaps(members, ...)``).
        tanh_channels: ``NucleusMaps``'s ``tanh_channels``.
        reference_diameter: nucleus diameter (pixels) the model was trained at.
        routes: the model's routes (kinds of image with a network of their own).
        preprocessing_difference: largest difference, on the test input, between the zoo's
            preprocessing and the toolkit's normalisation.
    """

    title: str
    network: str
    family: str
    channels: tuple[str, ...]
    view: str
    low: float
    high: float
    clip: tuple[float, float]
    step: int
    min_size: int
    halo: int
    thresholds: dict[str, Any]
    card: dict[str, Any]
    versions: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)
    tanh_channels: int = 0
    reference_diameter: float = 18.0
    routes: tuple[str, ...] = ()
    preprocessing_difference: float = 0.0


def training_data(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The training sets a model card names (``card["data"]``), each with its licence."""
    text = str(card.get("data") or "").lower()
    return [dict(entry) for key, entry in TRAINING_SETS.items() if key in text]


def input_view(facts: PackageFacts) -> str:
    """One sentence: what the input tensor must hold (the toolkit's nuclear view)."""
    if facts.view == "hematoxylin":
        return (
            "the haematoxylin optical density of an RGB image of stained tissue (colour "
            "deconvolution, Ruifrok & Johnston, as skimage.color.rgb2hed channel 0, minus its "
            "1st percentile, clipped at 0), repeated in the 3 channels"
        )
    return (
        "an RGB image, or a gray one (fluorescence, brightfield) repeated in the 3 channels; "
        "for a fluorescence composite, its nuclear (blue) channel repeated in the 3 channels"
    )


def model_name(facts: PackageFacts) -> str:
    """The package's ``name``: letters, digits, ``_+-()`` and spaces only, 5..64 characters."""
    text = f"{facts.title} nuclei {facts.family} ({facts.network} network)"
    return re.sub(r"[^A-Za-z0-9_+\- ()]", "-", text)[:64]


def postprocessing(facts: PackageFacts) -> str:
    """How the toolkit turns the maps into labelled nuclei (what the zoo cannot run)."""
    if facts.family == "unet":
        return (
            "seeded watershed (segmentation.models.unet.decode): mask = body > mask; seeds = "
            "connected components of body > seed_body, border < seed_border, contact < "
            "seed_contact (at least min_seed_size px); watershed from the seeds on 1 - body + "
            "contact inside the mask; regions whose shared boundary has a mean contact below "
            "merge_contact merged; holes filled; objects under min_size px dropped"
        )
    return (
        "seeded watershed (segmentation.models.fpn.decode): mask = foreground > mask; seeds = "
        "connected components of energy > seed_energy inside the mask (at least min_seed_size "
        "px); watershed of -energy + flow_barrier * max(div(cos, sin), 0) from the seeds inside "
        "the mask; neighbouring regions that the direction field shows to be halves of one "
        "nucleus merged (merge_flow, merge_region_flow); holes filled; objects under min_size px "
        "dropped"
    )


def _file(facts: PackageFacts, name: str) -> dict[str, str]:
    return {"source": name, "sha256": facts.files[name]}


def _space_axes(facts: PackageFacts, output: bool) -> list[dict[str, Any]]:
    axes = []
    for axis in ("y", "x"):
        if output:
            size = {"tensor_id": INPUT_ID, "axis_id": axis}
            axes.append({"type": "space", "id": axis, "size": size, "halo": facts.halo})
        else:
            size = {"min": facts.min_size, "step": facts.step}
            axes.append({"type": "space", "id": axis, "size": size})
    return axes


def build_rdf(facts: PackageFacts) -> dict[str, Any]:
    """The ``rdf.yaml`` content (format 0.5) of one exported network.

    Inputs: ``image`` ``(batch, channel=3, y, x)`` float32, the nuclear view before
    normalisation; preprocessing ``scale_range`` (percentiles ``low``/``high`` over channel, y
    and x jointly, per sample) then ``clip`` to the training range. Outputs: ``maps``
    ``(batch, channel=len(channels), y, x)`` float32 with a halo. Weights: TorchScript and a
    PyTorch state dict with its architecture file. ``config.segmentation`` holds the instance
    decoding (post-processing outside the zoo), its thresholds and the training data licences.
    """
    sets = training_data(facts.card)
    cites = [DSB2018_CITATION]
    cites += [s["cite"] for s in sets if s.get("cite") not in (None, DSB2018_CITATION)]
    value_range = [-1.0, 1.0] if facts.tanh_channels else [0.0, 1.0]
    channel_names = ["red", "green", "blue"]
    if facts.view != "rgb":  # the haematoxylin density, repeated
        channel_names = [f"hematoxylin_{i}" for i in range(3)]
    torch_version = facts.versions["torch"].split("+")[0]
    description = (
        f"Nucleus {facts.family} of the segmentation toolkit ({facts.network} network): "
        f"{', '.join(facts.channels)} maps of 2-D microscopy images. Instances come "
        "from a seeded watershed of the maps, post-processing the zoo cannot run: use the "
        "toolkit (segmentation segment) or config.segmentation for labelled nuclei."
    )
    return {
        "format_version": FORMAT_VERSION,
        "type": "model",
        "name": model_name(facts),
        "description": description,
        "version": facts.versions["toolkit"],
        "authors": [{"name": "segmentation toolkit developers"}],
        "cite": cites,
        "license": WEIGHTS_LICENSE,
        "tags": _TAGS + _NETWORK_TAGS.get(facts.family, []) + _modality_tags(facts),
        "documentation": _file(facts, "README.md"),
        "covers": [_file(facts, "cover.png")],
        "inputs": [
            {
                "id": INPUT_ID,
                "description": "nuclear view of the image before normalisation (see README)",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": channel_names},
                    *_space_axes(facts, output=False),
                ],
                "data": {"type": "float32"},
                "test_tensor": _file(facts, "test_input.npy"),
                "sample_tensor": _file(facts, "sample_input.tif"),
                "preprocessing": [
                    {
                        "id": "scale_range",
                        "kwargs": {
                            "axes": ["channel", "y", "x"],
                            "min_percentile": facts.low,
                            "max_percentile": facts.high,
                        },
                    },
                    {"id": "clip", "kwargs": {"min": facts.clip[0], "max": facts.clip[1]}},
                ],
            }
        ],
        "outputs": [
            {
                "id": OUTPUT_ID,
                "description": f"{facts.family} maps: {', '.join(facts.channels)}",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": list(facts.channels)},
                    *_space_axes(facts, output=True),
                ],
                "data": {"type": "float32", "range": value_range},
                "test_tensor": _file(facts, "test_output.npy"),
                "sample_tensor": _file(facts, "sample_output.tif"),
            }
        ],
        "weights": {
            "pytorch_state_dict": {
                **_file(facts, "weights_state_dict.pt"),
                "architecture": {
                    **_file(facts, "architecture.py"),
                    "callable": "NucleusMaps",
                    "kwargs": {"members": facts.members, "tanh_channels": facts.tanh_channels},
                },
                "pytorch_version": torch_version,
                "dependencies": _file(facts, "environment.yaml"),
            },
            "torchscript": {
                **_file(facts, "weights_torchscript.pt"),
                "pytorch_version": torch_version,
                "parent": "pytorch_state_dict",
            },
        },
        "config": {"segmentation": _toolkit_config(facts, sets)},
    }


def _modality_tags(facts: PackageFacts) -> list[str]:
    if facts.view == "hematoxylin":
        return ["transmission-light-microscopy", "tissue"]
    return ["fluorescence-light-microscopy", "transmission-light-microscopy"]


def _toolkit_config(facts: PackageFacts, sets: list[dict[str, Any]]) -> dict[str, Any]:
    card = facts.card
    return {
        "toolkit_version": facts.versions["toolkit"],
        "family": facts.family,
        "network": facts.network,
        "input_view": input_view(facts),
        "stained_view": facts.view,
        "nucleus_diameter_px": facts.reference_diameter,
        "normalization": {
            "low_percentile": facts.low,
            "high_percentile": facts.high,
            "clip": list(facts.clip),
            "max_abs_difference_zoo_vs_toolkit_on_test_input": facts.preprocessing_difference,
        },
        "routes_not_in_this_package": [kind for kind in facts.routes if kind != facts.network],
        "postprocessing": {
            "runs_in_zoo": False,
            "method": postprocessing(facts),
            "thresholds": facts.thresholds,
        },
        "training_data": sets,
        "training_data_as_stated_in_model_card": str(card.get("data") or "unknown: no model card"),
        "training_data_licences_as_stated_in_model_card": str(
            card.get("licence") or "unknown: no model card"
        ),
        "weights_license": WEIGHTS_LICENSE,
        "model_card": {k: card[k] for k in ("name", "description", "date") if k in card},
    }
