"""The manifest's widget commands: build the dock widgets of :mod:`._gui` on demand.

napari calls a widget command with no arguments (it passes the viewer only to classes whose
``__init__`` asks for ``napari_viewer``), so each factory takes the viewer when given and
``napari.current_viewer()`` otherwise. Importing this module imports no GUI library: the
manifest's ``python_name`` entries resolve in an environment without napari.
"""

from __future__ import annotations

from typing import Any


def _viewer(napari_viewer: Any) -> Any:
    if napari_viewer is not None:
        return napari_viewer
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        raise RuntimeError("no napari viewer is open: open one (napari.Viewer()) first")
    return viewer


def segment_nuclei_widget(napari_viewer: Any = None) -> Any:
    """The "Segment nuclei" dock widget (a magicgui ``Container``) for ``napari_viewer``."""
    from segmentation.napari._gui import SegmentNucleiWidget

    return SegmentNucleiWidget(_viewer(napari_viewer))


def finetune_widget(napari_viewer: Any = None) -> Any:
    """The "Fine-tune on these labels" dock widget (a magicgui ``Container``)."""
    from segmentation.napari._gui import FinetuneWidget

    return FinetuneWidget(_viewer(napari_viewer))
