"""The napari plugin (segmentation/napari/): manifest, widgets in a real off-screen viewer, reader,
sample data and the fine-tune action.

The tests marked ``napari`` need the optional extra and run in their own environment::

    make napari-test   # .venv-napari, QT_QPA_PLATFORM=offscreen

and are skipped (with the reason) where napari is not installed, as in ``make test``. The first
two tests need no napari: the manifest's commands import without any GUI library, and the
napari-free core refuses what it cannot segment.

Off screen, Qt creates no OpenGL context and napari cannot add an image layer without one; the
``viewer`` fixture makes a Mesa EGL context current first (:mod:`segmentation.napari._headless`).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml

from segmentation.napari._layers import ALL_CHANNELS, channel_count, labels_features, layer_image
from segmentation.napari._sample_data import SAMPLES

if os.environ.get("QT_QPA_PLATFORM") == "offscreen":  # before anything imports PyOpenGL
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "segmentation" / "napari" / "napari.yaml"
GUI_MODULES = {"napari", "magicgui", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy"}
FLUO = SAMPLES["fluorescence"]  # 256 x 256, 60 annotated nuclei

napari_test = pytest.mark.napari


def test_manifest_commands_import_without_a_gui():
    manifest = yaml.safe_load(MANIFEST.read_text())
    contributions = manifest["contributions"]
    before = set(sys.modules)
    ids = set()
    for command in contributions["commands"]:
        module, _, name = command["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module), name)), command["python_name"]
        ids.add(command["id"])
    loaded = {m.split(".")[0] for m in set(sys.modules) - before}
    assert not loaded & GUI_MODULES, f"the commands' modules imported {loaded & GUI_MODULES}"
    named = [
        c["command"] for kind in ("widgets", "readers", "sample_data") for c in contributions[kind]
    ]
    assert set(named) <= ids
    assert {w["display_name"] for w in contributions["widgets"]} == {
        "Segment nuclei",
        "Fine-tune on these labels",
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["napari.manifest"]
    assert entry == {"segmentation": "segmentation.napari:napari.yaml"}
    assert manifest["name"] == "segmentation"  # the distribution's name, as npe2 requires
    assert "napari/*.yaml" in project["tool"]["setuptools"]["package-data"]["segmentation"]


def test_layer_data_the_widget_cannot_segment_is_refused_with_the_fix():
    gray, rgb, planes = np.zeros((8, 8)), np.zeros((8, 8, 3)), np.zeros((2, 8, 8))
    assert layer_image(gray, rgb=False).shape == (8, 8)
    assert layer_image(rgb, rgb=True).shape == (8, 8, 3)
    assert layer_image(rgb, rgb=True, channel=2).shape == (8, 8)
    assert layer_image(planes, rgb=False, channel=1).shape == (8, 8)
    assert [channel_count(a.shape, r) for a, r in ((gray, 0), (rgb, 1), (planes, 0))] == [0, 3, 2]
    with pytest.raises(ValueError, match="holds 2 planes .* choose the nuclear channel"):
        layer_image(planes, rgb=False, channel=ALL_CHANNELS, name="dapi+actin")
    with pytest.raises(ValueError, match="has channels 0..2, not channel 3"):
        layer_image(rgb, rgb=True, channel=3)
    with pytest.raises(ValueError, match=r"shape \(2, 2, 8, 8\): the widget segments a 2-D"):
        layer_image(np.zeros((2, 2, 8, 8)), rgb=False, channel=0)
    import pandas as pd

    table = pd.DataFrame({"image": ["a", "a"], "label": [1, 2], "area": [5, 7]})
    features = labels_features(table)
    assert list(features.columns) == ["index", "label", "area"]
    assert features["index"].tolist() == [1, 2]


# --- in a viewer (the napari extra) ------------------------------------------------------------


@pytest.fixture
def viewer(request):
    """An off-screen napari viewer (napari's ``make_napari_viewer``), with GL when off screen."""
    pytest.importorskip(
        "napari", reason="needs the optional napari extra: make napari-test (.venv-napari)"
    )
    from segmentation.napari import _headless

    if _headless.offscreen():
        try:
            _headless.make_gl_context()
        except RuntimeError as err:  # no Mesa EGL: napari cannot add an image layer
            pytest.skip(f"no OpenGL off screen: {err}")
    return request.getfixturevalue("make_napari_viewer")()


@pytest.fixture
def warm_default_model(viewer):
    """The default model loaded (cached by the package), so that the widget's run time is the
    segmentation's; after ``viewer``, so that it is skipped with it."""
    from segmentation import load_default_model

    return load_default_model()


def _wait_for(qtbot, widget, timeout_s: float = 120.0) -> None:
    qtbot.waitUntil(
        lambda: widget.worker is not None and widget.run_button.enabled, timeout=timeout_s * 1000
    )


@napari_test
def test_the_manifest_is_valid_and_registered(viewer):
    from npe2 import PluginManager, PluginManifest

    manifest = PluginManifest.from_file(MANIFEST)
    assert manifest.name == "segmentation"
    registered = PluginManager.instance().get_manifest("segmentation")  # via the entry point
    assert {w.display_name for w in registered.contributions.widgets} == {
        "Segment nuclei",
        "Fine-tune on these labels",
    }


@napari_test
def test_segment_nuclei_widget_adds_labels_with_one_feature_row_per_nucleus(
    viewer, warm_default_model, qtbot
):
    from napari.layers import Labels

    _, widget = viewer.window.add_plugin_dock_widget("segmentation", "Segment nuclei")
    assert widget.image.value is None
    image, annotation = viewer.open_sample("segmentation", "fluorescence")
    assert widget.image.value is image and image.data.shape == (256, 256)
    assert not annotation.visible
    started = time.perf_counter()
    widget.run_button.clicked.emit()
    _wait_for(qtbot, widget)
    seconds = time.perf_counter() - started
    layer = viewer.layers[f"{FLUO} nuclei"]
    assert isinstance(layer, Labels) and layer.data.shape == (256, 256)
    n = int(layer.data.max())
    assert 40 <= n <= 80, n  # 60 annotated
    features = layer.features
    assert len(features) == n == len(np.unique(layer.data)) - 1
    assert features["index"].tolist() == list(range(1, n + 1))
    assert (features["area"] > 0).all() and {"centroid_y", "mean_intensity"} <= set(features)
    assert f"{n} nuclei" in widget.status.value
    assert seconds < 60, f"the default model took {seconds:.1f} s on a 256 x 256 crop"


@napari_test
def test_segment_nuclei_widget_refuses_bad_input_with_a_message(viewer, monkeypatch):
    from segmentation.napari import _gui
    from segmentation.napari._widgets import segment_nuclei_widget

    errors = []
    monkeypatch.setattr(_gui, "show_error", errors.append)
    widget = segment_nuclei_widget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.run_button.clicked.emit()
    assert errors[-1].startswith("no image layer chosen")
    viewer.add_image(np.zeros((3, 64, 64), np.uint16), name="stack")
    assert widget.image.value.name == "stack"
    assert list(widget.channel.choices) == [ALL_CHANNELS, 0, 1, 2]
    widget.run_button.clicked.emit()
    assert "holds 3 planes" in errors[-1]
    assert "choose the nuclear channel" in " ".join(widget.status.value.split())
    assert widget.worker is None  # nothing started


@napari_test
def test_reader_opens_the_labels_and_table_of_segmentation_segment(viewer, tmp_path):
    from napari.layers import Labels

    from segmentation.cli import main
    from segmentation.datasets.sample_data import sample_dir
    from segmentation.napari._reader import get_reader

    image = sample_dir() / "images" / f"{FLUO}.png"
    assert main(["segment", str(image), "--output", str(tmp_path), "--no-progress"]) == 0
    path = tmp_path / f"{FLUO}_labels.tif"
    assert get_reader(str(path)) is not None and get_reader(str(image)) is None
    (layer,) = viewer.open(path, plugin="segmentation")
    assert isinstance(layer, Labels) and layer.name == f"{FLUO} nuclei"
    n = int(layer.data.max())
    assert n > 20 and len(layer.features) == n and "image" not in layer.features
    assert layer.features["index"].tolist() == list(range(1, n + 1))


@napari_test
def test_every_sample_opens_as_an_image_and_its_annotation(viewer):
    for key, name in SAMPLES.items():
        image, annotation = viewer.open_sample("segmentation", key)
        assert image.name == name and annotation.name == f"{name} annotation"
        assert image.data.shape[:2] == annotation.data.shape and annotation.data.max() > 10
        assert image.rgb == (key == "histology")


@napari_test
@pytest.mark.slow  # one epoch of 256 crops: ~20 s with the small U-Net (~40 s from the default)
def test_finetune_widget_writes_a_model_file_from_a_labels_layer(
    viewer, qtbot, tmp_path, model_file
):
    from segmentation import load_model
    from segmentation.napari import _gui

    image, annotation = viewer.open_sample("segmentation", "fluorescence")
    _, widget = viewer.window.add_plugin_dock_widget("segmentation", "Fine-tune on these labels")
    assert widget.image.value is image and widget.labels_layer.value is annotation
    few = viewer.add_labels(annotation.data * (annotation.data <= 5), name="few")
    widget.labels_layer.value = few
    widget.model.value = model_file  # conftest's small U-Net: a quicker epoch than the default
    widget.output.value = tmp_path / "mine.pt"
    widget.minutes.value = 0.01
    errors = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_gui, "show_error", errors.append)
        widget.run_button.clicked.emit()
        _wait_for(qtbot, widget)
    assert "annotate at least 20" in errors[-1]  # refused before training
    widget.labels_layer.value = annotation
    widget.run_button.clicked.emit()
    _wait_for(qtbot, widget)
    out = tmp_path / "mine.pt"
    assert out.is_file() and "wrote" in widget.status.value
    card = load_model(out, "cpu").model_card
    assert card["finetuned_from"] == str(model_file) and card["images"] == ["image_0"]
    assert card["nuclei"] == int(annotation.data.max())
