"""The plugin's dock widgets, magicgui containers; imported only when napari builds one.

Both widgets read their settings and the chosen layers' data on the GUI thread, run the work
(:func:`._layers.run_segment`, :func:`._layers.run_finetune`) in a napari worker thread, show a
busy bar meanwhile (and napari's activity progress), and report the outcome in a status line and a
notification. Input a user can fix (no image layer, a multi-channel layer without a channel, too
few nuclei to fine-tune on...) is reported with ``show_error`` and its message, not a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
)
from napari.layers import Image, Labels
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from segmentation.napari._layers import (
    ALL_CHANNELS,
    FinetuneJob,
    SegmentJob,
    channel_count,
    layer_image,
    run_finetune,
    run_segment,
)

#: Errors of the user's input (shown as a message); anything else is a bug (napari shows the
#: traceback).
_USER_ERRORS = (ValueError, FileNotFoundError)

_NO_IMAGE = (
    "no image layer chosen: open an image (File > Open, or File > Open Sample > "
    "Nucleus segmentation) and choose it under 'image'"
)


def _guarded(function):
    """``function(job)`` -> ``("ok", result)``, or ``("error", message)`` for a user error."""

    def run(job: Any) -> tuple[str, Any]:
        try:
            return "ok", function(job)
        except _USER_ERRORS as err:
            return "error", str(err)

    return run


def _layer_choices(viewer: Any, kind: type):
    """ComboBox choices: ``(name, layer)`` of the viewer's layers of ``kind``, top layer last."""

    def choices(_widget: Any = None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, kind)]

    return choices


class _LayerWidget(Container):
    """A container that picks an image layer (and its channel) from ``viewer``."""

    def __init__(self, viewer: Any, widgets: list, button: str) -> None:
        self._viewer = viewer
        self.image = ComboBox(label="image", choices=_layer_choices(viewer, Image))
        self.channel = ComboBox(
            label="channel",
            choices=self._channels,
            tooltip="the nuclear stain of a colour or multi-channel layer; 'as is' keeps gray "
            "or colour images whole",
        )
        self.run_button = PushButton(text=button)
        self.progress = ProgressBar(value=0, min=0, max=0, visible=False, label="")
        self.status = Label(value="", label="")
        super().__init__(
            widgets=[self.image, self.channel, *widgets, self.run_button, self.progress]
            + [self.status],
            labels=True,
        )
        self.image.changed.connect(self.channel.reset_choices)
        self.run_button.changed.connect(self._run)
        self.worker: Any = None  # the last run's worker (tests wait on it)

    def _channels(self, _widget: Any = None) -> list[tuple[str, int]]:
        layer = self.image.value if hasattr(self, "image") else None
        count = 0
        if layer is not None and not layer.multiscale:
            count = channel_count(tuple(layer.data.shape), bool(layer.rgb))
        return [("as is (gray or colour)", ALL_CHANNELS)] + [(str(c), c) for c in range(count)]

    def _image_array(self) -> tuple[Any, Any]:
        """The chosen image layer and its 2-D image; ``ValueError`` with the fix otherwise."""
        layer = self.image.value
        if layer is None:
            raise ValueError(_NO_IMAGE)
        if layer.multiscale:
            raise ValueError(
                f"layer {layer.name!r} is multiscale (a pyramid): segment whole slides with "
                "segmentation.segment_large or `segmentation segment-large`"
            )
        channel = ALL_CHANNELS if self.channel.value is None else self.channel.value
        return layer, layer_image(layer.data, rgb=layer.rgb, channel=channel, name=layer.name)

    def _run(self) -> None:
        try:
            function, job, what = self._job()
        except _USER_ERRORS as err:
            self._report_error(str(err))
            return
        worker = thread_worker(_guarded(function), progress={"total": 0, "desc": what})(job)
        worker.returned.connect(self._returned)
        worker.errored.connect(lambda err: self._report_error(f"failed: {err}", notify=False))
        worker.finished.connect(lambda: self._busy(False))
        self.worker = worker
        self._started = time.perf_counter()
        self.status.value = f"{what}..."
        self._busy(True)
        worker.start()

    def _returned(self, outcome: tuple[str, Any]) -> None:
        kind, value = outcome
        if kind == "error":
            self._report_error(value)
        else:
            self._done(value, time.perf_counter() - self._started)

    def _busy(self, busy: bool) -> None:
        self.run_button.enabled = not busy
        self.progress.visible = busy

    def _report_error(self, message: str, notify: bool = True) -> None:
        self.status.value = _wrap(message)
        if notify:
            show_error(message)

    def _job(self) -> tuple[Any, Any, str]:  # pragma: no cover - each widget has its own
        raise NotImplementedError

    def _done(self, result: Any, seconds: float) -> None:  # pragma: no cover
        raise NotImplementedError


class SegmentNucleiWidget(_LayerWidget):
    """The "Segment nuclei" widget: the chosen image layer -> a Labels layer ``"<image> nuclei"``.

    The labels are ``(H, W)`` int32 (0 = background) with the per-nucleus table as the layer's
    ``features`` (``index`` = label, ``area``, ``centroid_y``/``centroid_x``, bounding box,
    ``mean_intensity``, ``score``; one row per nucleus) and the image layer's scale and
    translation. Settings: the model file (empty: the default model), the nucleus diameter in
    pixels (0: estimated), the channel, test-time augmentation, and how stained tissue is shown to
    the network.
    """

    def __init__(self, viewer: Any) -> None:
        self.model = FileEdit(
            label="model file",
            mode="r",
            filter="Model files (*.pt)",
            nullable=True,
            tooltip="a model file written by `segmentation train` or `finetune`; empty: the "
            "default model shipped with the toolkit",
        )
        self.diameter = FloatSpinBox(
            label="diameter (px, 0: auto)",
            value=0.0,
            min=0.0,
            max=576.0,
            step=1.0,
            tooltip="typical nucleus diameter in pixels; 0: estimated from a first pass",
        )
        self.tta = CheckBox(text="test-time augmentation (8 views, ~8x slower)", value=False)
        self.stained_view = ComboBox(
            label="stained view",
            choices=[("the model's", None), ("rgb", "rgb"), ("hematoxylin", "hematoxylin")],
            tooltip="how H&E/IHC tissue is shown to the network: as RGB, or as its "
            "haematoxylin density (useful when brown DAB hides the nuclei)",
        )
        super().__init__(
            viewer, [self.model, self.diameter, self.tta, self.stained_view], "Segment"
        )

    def _job(self) -> tuple[Any, SegmentJob, str]:
        layer, image = self._image_array()
        job = SegmentJob(
            image=image,
            name=layer.name,
            model=str(self.model.value) if self.model.value else None,
            diameter=float(self.diameter.value) or None,
            tta=bool(self.tta.value),
            stained_view=self.stained_view.value,
            scale=tuple(float(s) for s in layer.scale[-2:]),
            translate=tuple(float(t) for t in layer.translate[-2:]),
        )
        return run_segment, job, f"segmenting {layer.name}"

    def _done(self, result: tuple, seconds: float) -> None:
        labels, kwargs, _ = result
        layer = self._viewer.add_labels(labels, **kwargs)
        n = len(kwargs["features"])
        message = f"{n} nuclei in {kwargs['name'][: -len(' nuclei')]} ({seconds:.1f} s)"
        self.status.value = message
        show_info(f"{message}: layer {layer.name!r}")


class FinetuneWidget(_LayerWidget):
    """The "Fine-tune on these labels" widget: an image and its corrected labels -> a model file.

    Calls :func:`segmentation.finetune` on the one image (its last fifth along the longer side is
    held out to choose the best state) from the base model (empty: the default model) for the
    given minutes, and writes the model file chosen under "save model as" (``.pt``); segment with
    it by choosing it under "model file" in "Segment nuclei". Fine-tuning needs at least 20
    annotated nuclei.
    """

    def __init__(self, viewer: Any) -> None:
        self.labels_layer = ComboBox(
            label="labels",
            choices=_layer_choices(viewer, Labels),
            tooltip="the corrected nuclei of this image (0 = background, one value per nucleus)",
        )
        self.model = FileEdit(
            label="base model",
            mode="r",
            filter="Model files (*.pt)",
            nullable=True,
            tooltip="the U-Net model file to start from; empty: the default model",
        )
        self.minutes = FloatSpinBox(label="minutes", value=5.0, min=0.01, max=600.0, step=0.5)
        self.output = FileEdit(
            label="save model as", mode="w", filter="Model files (*.pt)", nullable=True
        )
        super().__init__(
            viewer, [self.labels_layer, self.model, self.minutes, self.output], "Fine-tune"
        )

    def _job(self) -> tuple[Any, FinetuneJob, str]:
        layer, image = self._image_array()
        labels = self.labels_layer.value
        if labels is None:
            raise ValueError(
                "no Labels layer chosen: segment the image (or open its _labels.tif), correct "
                "the nuclei with napari's label tools and choose that layer under 'labels'"
            )
        if not self.output.value:
            raise ValueError("choose where to save the model under 'save model as' (a .pt file)")
        job = FinetuneJob(
            image=image,
            labels=labels.data.copy(),  # the user may paint on while it trains
            output=Path(self.output.value),
            model=str(self.model.value) if self.model.value else None,
            minutes=float(self.minutes.value),
        )
        return run_finetune, job, f"fine-tuning on {layer.name} ({job.minutes:g} min)"

    def _done(self, card: dict, seconds: float) -> None:
        parts = card.get("held_out_parts") or {}
        scores = (
            f"; held-out score {parts['score_before']:.3f} -> {parts['score_after']:.3f}"
            if {"score_before", "score_after"} <= set(parts)
            else ""
        )
        message = f"wrote {card['path']} ({seconds:.0f} s{scores})"
        self.status.value = _wrap(message)
        show_info(message)


def _wrap(text: str, width: int = 60) -> str:
    """Break a long status line into lines of about ``width`` characters."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
