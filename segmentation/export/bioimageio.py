"""A trained model as a BioImage Model Zoo package: :func:`to_bioimageio` -> ``PACKAGE.zip``.

The package (format 0.5) holds one network of the model (the main one, or a route such as the
stained-tissue network) as TorchScript and as a PyTorch state dict with its architecture file
(:mod:`segmentation.export.bioimageio_net`), the preprocessing the toolkit applies (percentile
normalisation and clipping), a test input and the output the TorchScript weights compute from it,
a cover image, a README and an ``rdf.yaml`` (:mod:`segmentation.export.bioimageio_rdf`). The zoo
runs the network; the instance decoding (a seeded watershed of the maps) is post-processing it
cannot run, recorded with its thresholds in ``config.segmentation``.

Exports call nothing above ``datasets/`` but the public model loading of
:mod:`segmentation.inference` (imported inside the functions that need a model).
"""

from __future__ import annotations

import os
import warnings
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW
from segmentation.export.bioimageio_files import (
    cover_png,
    environment_yaml,
    npy,
    saved,
    tiff,
    write_zip,
    yaml_bytes,
)
from segmentation.export.bioimageio_rdf import PackageFacts, build_rdf
from segmentation.export.bioimageio_readme import readme_text

if TYPE_CHECKING:
    import torch

    from segmentation.inference import SegmentationModel

#: Pixels to crop from each side of an output tile (half the toolkit's tile overlap of 96 px).
HALO = 48
#: Largest side of the test input cut from the sample image.
MAX_TEST_SIDE = 512
#: Bundled sample image used as test input, per network (``segmentation/sample/images``).
DEFAULT_SAMPLES = {"main": "fluo-small-a-2227fd9b.png", "stained": "histo-small-2246874c.png"}
#: Output channels squashed by tanh, per family (the rest by a sigmoid).
TANH_CHANNELS = {"unet": 0, "fpn": 2}
#: How far the TorchScript output may stray from the toolkit's network output.
TOLERANCE = 1e-4


def to_bioimageio(
    model: Any,
    path: str | os.PathLike,
    *,
    sample: np.ndarray | str | os.PathLike | None = None,
    network: str = "main",
) -> Path:
    """Write one network of a model as a BioImage Model Zoo package (format 0.5 zip).

    Args:
        model: a model file (``.pt`` written by ``segmentation train``), ``"default"`` (the
            model shipped with the package) or a loaded ``SegmentationModel``. Dense families
            only (``unet``, ``fpn``).
        path: the ``.zip`` to write (atomically; an existing file is replaced).
        sample: the test image: an ``(H, W)`` or ``(H, W, C)`` array (``C`` in 1, 3, 4) or an
            image file; ``None`` takes a bundled sample image suited to ``network``. Its
            top-left corner, at most 512 px a side and cut to a size the network takes, becomes
            ``test_input.npy``.
        network: ``"main"``, or a route of the model (``"stained"`` for the default model's
            stained-tissue network, which sees the haematoxylin density).

    Returns:
        ``path`` as a ``Path``. The zip holds ``rdf.yaml``, ``README.md``, ``cover.png``,
        ``test_input.npy`` (``(1, 3, h, w)`` float32, the nuclear view before normalisation),
        ``test_output.npy`` (``(1, C, h, w)`` float32 maps), the same as ``sample_input.tif``
        and ``sample_output.tif`` (``(3, h, w)`` and ``(C, h, w)``), ``weights_torchscript.pt``,
        ``weights_state_dict.pt``, ``architecture.py`` and ``environment.yaml``.

    Raises:
        ValueError: ``path`` does not end in ``.zip``, an unknown ``network``, a Mask R-CNN
            model, or a sample smaller than the network's smallest input.
        FileNotFoundError: no such model file or sample image.
        RuntimeError: the TorchScript weights do not reproduce the toolkit's network (a bug).

    Example:
        >>> to_bioimageio("default", "nuclei.zip")  # doctest: +SKIP
    """
    import torch

    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise ValueError(f"the package must be a .zip file, got {str(path)!r}; e.g. nuclei.zip")
    loaded, title = _load(model)
    net_model = _network(loaded, network)
    wrapper, members = _wrapper(net_model)
    step = 2 ** max(int(m["kwargs"].get("encoder_depth", 5)) for m in members)
    min_size = -(-(2 * HALO + step) // step) * step  # a multiple of step with room for the halo
    crop, test_input = _test_input(net_model, sample, network, step, min_size)
    normalized = zoo_preprocess(test_input, net_model.normalization)
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated in torch >= 2.10 but is the zoo's format for torch weights
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        traced = torch.jit.trace(wrapper, torch.from_numpy(normalized), check_trace=False)
        test_output = traced(torch.from_numpy(normalized)).numpy().astype(np.float32)
    if test_output.shape[2:] != normalized.shape[2:]:
        raise ValueError(
            f"the network's maps ({test_output.shape[2]} x {test_output.shape[3]}) differ in size "
            f"from its input ({normalized.shape[2]} x {normalized.shape[3]}): only networks whose "
            "maps match their input can be described as a zoo package"
        )
    toolkit_maps = net_model.forward(torch.from_numpy(normalized))[0][0]
    if float(np.abs(test_output[0] - toolkit_maps).max()) > TOLERANCE:
        raise RuntimeError(
            "the TorchScript network does not reproduce the toolkit's maps on the test input; "
            "please report this with the model file"
        )
    labels = net_model.family.decode(test_output[0], net_model.thresholds)
    files = {
        "README.md": b"",  # written last, from the facts
        "cover.png": cover_png(crop, labels),
        "test_input.npy": npy(test_input),
        "test_output.npy": npy(test_output),
        "sample_input.tif": tiff(test_input[0]),
        "sample_output.tif": tiff(test_output[0]),
        "weights_torchscript.pt": saved(lambda f: _jit_save(traced, f)),
        "weights_state_dict.pt": saved(lambda f: torch.save(wrapper.state_dict(), f)),
        "architecture.py": Path(__file__).with_name("bioimageio_net.py").read_bytes(),
    }
    facts = _facts(loaded, net_model, title, network, (step, min_size), members)
    facts.preprocessing_difference = float(np.abs(normalized - net_model.prepare(crop)).max())
    files["environment.yaml"] = environment_yaml(facts.versions).encode()
    files["README.md"] = readme_text(facts).encode()
    facts.files = {name: sha256(data).hexdigest() for name, data in files.items()}
    return write_zip(path, {"rdf.yaml": yaml_bytes(build_rdf(facts)), **files})


def zoo_preprocess(image: np.ndarray, normalization: dict[str, float]) -> np.ndarray:
    """The package's preprocessing as the zoo runs it (``scale_range`` then ``clip``).

    Args:
        image: ``(B, 3, H, W)`` array, any real dtype (the nuclear view).
        normalization: the model's ``{"low", "high"}`` percentiles.

    Returns:
        New ``(B, 3, H, W)`` float32: per sample, ``(x - p_low) / (p_high - p_low + 1e-6)``
        with the percentiles taken over channels, rows and columns together, clipped to
        ``[CLIP_LOW, CLIP_HIGH]``; what the toolkit's normalisation gives, but for its fallback
        to ``min .. max`` when the two percentiles coincide.
    """
    x = np.asarray(image, np.float32)
    out = np.empty_like(x)
    for i, one in enumerate(x):
        lo, hi = np.percentile(one, [normalization["low"], normalization["high"]])
        out[i] = (one - np.float32(lo)) / np.float32(hi - lo + 1e-6)
    return np.clip(out, CLIP_LOW, CLIP_HIGH)


def _load(model: Any) -> tuple[SegmentationModel, str]:
    """The model (on the CPU when loaded here) and its title."""
    from segmentation.inference import SegmentationModel, load_default_model, load_model

    if isinstance(model, SegmentationModel):
        return model, str(model.model_card.get("name") or "model")
    if isinstance(model, str) and model == "default":
        loaded = load_default_model("cpu")
        return loaded, str(loaded.model_card.get("name") or "default")
    if not isinstance(model, str | os.PathLike):
        raise TypeError(f"model must be a path, 'default' or a SegmentationModel, got {model!r}")
    file = Path(model)
    if not file.is_file():
        raise FileNotFoundError(
            f"model file {str(file)!r} not found: pass a model file written by `segmentation "
            "train` (e.g. runs/unet/model.pt), or 'default' for the model shipped with the toolkit"
        )
    loaded = load_model(file, "cpu")
    return loaded, str(loaded.model_card.get("name") or file.stem)


def _network(model: SegmentationModel, network: str) -> SegmentationModel:
    """The model's main network (``"main"``) or one of its routes."""
    if network == "main":
        net_model = model
    elif network in model.routes:
        net_model = model.routes[network]
    else:
        valid = ", ".join(["main", *model.routes])
        raise ValueError(f"the model has no network {network!r}; choose one of: {valid}")
    if net_model.family.name not in TANH_CHANNELS:
        raise ValueError(
            f"only dense families ({', '.join(TANH_CHANNELS)}) can be exported to the BioImage "
            f"Model Zoo; this model is {net_model.family.name!r}, whose instance painting the "
            "zoo cannot run"
        )
    return net_model


def _wrapper(net_model: SegmentationModel) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """The members as one float32 CPU ``NucleusMaps`` in eval mode, and its ``members`` argument
    (constructor arguments, and the submodules that never run)."""
    import segmentation_models_pytorch as smp

    from segmentation.export.bioimageio_net import NucleusMaps

    members = []
    for net in net_model.members:
        name = type(net).__name__
        if getattr(smp, name, None) is not type(net) or not hasattr(net, "config"):
            raise ValueError(f"cannot describe network {name} by its constructor arguments")
        kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(net.config).items()}
        members.append({"architecture": name, "kwargs": kwargs, "unused": _unused(net)})
    wrapper = NucleusMaps(members, TANH_CHANNELS[net_model.family.name])
    for target, net in zip(wrapper.members, net_model.members, strict=True):
        state = {k: v.float().cpu() for k, v in net.state_dict().items()}
        target.load_state_dict({k: state[k] for k in target.state_dict()})
    return wrapper.float().eval(), members


def _unused(net: torch.nn.Module, side: int = 64) -> list[str]:
    """Names of the outermost submodules of ``net`` that do not run (on a ``side``-pixel input,
    a multiple of 32: any encoder depth takes it)."""
    import torch

    from segmentation.models.dense import modules_run

    x = torch.zeros(1, 3, side, side, device=next(net.parameters()).device)
    _, called = modules_run(net, x)
    ran = {""}  # the modules that ran, or hold one that ran (a ModuleList is never called)
    for name in called:
        parts = name.split(".")
        ran.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return [
        name
        for name, _ in net.named_modules()
        if name not in ran and name.rpartition(".")[0] in ran
    ]


def _test_input(
    net_model: SegmentationModel, sample: Any, network: str, step: int, min_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The cropped sample ``(h, w, C)`` and the test input ``(1, 3, h, w)`` float32 (its view)."""
    from segmentation.datasets.nuclear_view import nuclear_view, recipe_stained_view
    from segmentation.datasets.sample_data import sample_dir
    from segmentation.inference import as_image_array

    if sample is None:
        sample = sample_dir() / "images" / DEFAULT_SAMPLES.get(network, DEFAULT_SAMPLES["main"])
    image = as_image_array(sample)
    height, width = (min(side, MAX_TEST_SIDE) // step * step for side in image.shape[:2])
    if min(height, width) < min_size:
        raise ValueError(
            f"the sample image ({image.shape[0]} x {image.shape[1]} px) is smaller than the "
            f"network's smallest input ({min_size} x {min_size} px); pass a larger sample"
        )
    crop = image[:height, :width]
    view = nuclear_view(crop, recipe_stained_view(net_model.recipe)).astype(np.float32)
    chw = np.moveaxis(view, 2, 0)
    return crop, np.ascontiguousarray(np.broadcast_to(chw, (3, height, width))[None])


def _facts(
    loaded: SegmentationModel,
    net_model: SegmentationModel,
    title: str,
    network: str,
    sizes: tuple[int, int],
    members: list[dict[str, Any]],
) -> PackageFacts:
    """The plain values the rdf.yaml and README are written from (``sizes``: step, min_size)."""
    import segmentation_models_pytorch as smp
    import torch

    from segmentation._version import __version__
    from segmentation.datasets.nuclear_view import recipe_stained_view
    from segmentation.inference import REFERENCE_DIAMETER

    card = {k: v for k, v in loaded.model_card.items() if k != "held_out_groups"}
    split = card.get("split") or {}  # without its long lists of image names
    if network != "main":  # a route: its own training metrics, the model's data and licences
        metrics = ((card.get("routes") or {}).get(network) or {}).get("training", {})
        metrics = metrics.get("metrics") or {}
        card.pop("baseline", None)
        card["validation"] = {}
        split = {"validation_images": metrics.get("val_images")}
        if "val_score" in metrics:
            row = {"score": metrics["val_score"], "f1_0.7": metrics.get("val_f1_0.7", 0.0)}
            card["validation"] = {"float32": row}
    return PackageFacts(
        title=title,
        network=network,
        family=net_model.family.name,
        channels=tuple(net_model.channels),
        view=recipe_stained_view(net_model.recipe),
        low=float(net_model.normalization["low"]),
        high=float(net_model.normalization["high"]),
        clip=(CLIP_LOW, CLIP_HIGH),
        step=sizes[0],
        min_size=sizes[1],
        halo=HALO,
        thresholds=net_model.thresholds_dict(),
        card={**card, "split": {"validation_images": split.get("validation_images")}},
        versions={"toolkit": __version__, "torch": torch.__version__, "smp": smp.__version__},
        members=members,
        tanh_channels=TANH_CHANNELS[net_model.family.name],
        reference_diameter=REFERENCE_DIAMETER,
        routes=tuple(loaded.routes),
    )


def _jit_save(traced: Any, f: Any) -> None:
    """``torch.jit.save`` without its deprecation warning (the zoo's format, see above)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        torch.jit.save(traced, f)
