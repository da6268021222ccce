"""Write the README's screenshot of the "Segment nuclei" widget on a bundled sample image.

Run in the napari environment, off screen::

    QT_QPA_PLATFORM=offscreen .venv-napari/bin/python -m segmentation.napari._screenshot \\
        docs/images/napari_widget.png

It opens the sample through the plugin's sample-data command, docks the widget through the
manifest, runs it (default model, automatic diameter), shows the nuclei as outlines and saves the
window, with the canvas drawn by napari's renderer in a Mesa EGL context (:mod:`._headless`), as an
RGB PNG.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

SAMPLE = "fluorescence_wide"  # 512 x 512, 106 annotated nuclei


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--sample", default=SAMPLE, help=f"sample key (default {SAMPLE})")
    parser.add_argument("--size", default="1400x820", help="window size WxH (default 1400x820)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    from segmentation.napari import _headless

    if _headless.offscreen():
        _headless.make_gl_context()
    import imageio.v3 as iio
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True, title="napari: Segment nuclei")
    viewer.window._qt_window.resize(width, height)
    _, widget = viewer.window.add_plugin_dock_widget("segmentation", "Segment nuclei")
    image, _annotation = viewer.open_sample("segmentation", args.sample)
    widget.image.value = image
    widget.run_button.clicked.emit()
    started = time.perf_counter()
    while widget.worker is None or not widget.run_button.enabled:
        QApplication.processEvents()
        time.sleep(0.05)
        if time.perf_counter() - started > 600:
            raise TimeoutError("the widget did not finish in 10 minutes")
    nuclei = viewer.layers[-1]
    nuclei.contour = 2  # outlines, so that the image shows through
    viewer.layers.selection.active = nuclei  # its controls in the left panel
    for _ in range(20):
        QApplication.processEvents()
    if _headless.offscreen():
        _headless.sync_canvas_size(viewer)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
    picture = (
        _headless.window_screenshot(viewer)
        if _headless.offscreen()
        else viewer.screenshot(canvas_only=False, flash=False)[..., :3]
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(args.output, picture, optimize=True)
    print(
        f"wrote {args.output} ({picture.shape[1]} x {picture.shape[0]}, "
        f"{os.path.getsize(args.output) / 1024:.0f} KB): {widget.status.value}"
    )
    viewer.close()
    return args.output


if __name__ == "__main__":
    main()
