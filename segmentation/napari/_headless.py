"""An OpenGL context for napari under ``QT_QPA_PLATFORM=offscreen`` (tests, the docs screenshot).

Qt's offscreen platform creates no OpenGL context (napari's canvas widget logs "QOpenGLWidget:
Failed to create context"), and napari cannot add an image layer without one (vispy reads the GL
extensions: ``AttributeError: 'NoneType' object has no attribute 'decode'``). On a machine with
Mesa's EGL (``libEGL``, the ``surfaceless`` platform, software rendering by llvmpipe), a pbuffer
context made current on the GUI thread before the viewer starts serves every GL call of napari's
vispy canvas: layers are created with real texture limits, and :func:`render_canvas` draws the
scene into a framebuffer object of that context, as napari's own renderer draws it. Only Qt's
``grabFramebuffer`` (napari's ``screenshot(canvas_only=True)``) stays empty, since the canvas widget
has no context of its own; :func:`window_screenshot` pastes the canvas rendering into a grab of
the window instead.

Uses napari internals (``window._qt_window``, ``_qt_viewer.canvas``) and PyOpenGL's EGL bindings;
for tests and documentation only, never for the widgets.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

_CONTEXT: tuple | None = None


def offscreen() -> bool:
    """Whether Qt renders offscreen (``QT_QPA_PLATFORM=offscreen``), where GL needs this module."""
    return os.environ.get("QT_QPA_PLATFORM", "") == "offscreen"


def prepare_environment() -> None:
    """Select EGL for PyOpenGL and Mesa's surfaceless platform; call before ``import napari``
    (PyOpenGL fixes its platform at its first import)."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")


def make_gl_context(width: int = 16, height: int = 16) -> str:
    """Make a Mesa EGL pbuffer OpenGL context current on this thread (once per process).

    Returns:
        The context's ``GL_RENDERER`` string (e.g. ``"llvmpipe (LLVM 15.0.6, 256 bits)"``).

    Raises:
        RuntimeError: no EGL library, no display, no config or context (the message names the
            step); or PyOpenGL was imported with another platform before
            :func:`prepare_environment`.
    """
    global _CONTEXT
    prepare_environment()
    from OpenGL import GL, platform

    if "EGL" not in type(platform.PLATFORM).__name__:
        raise RuntimeError(
            f"PyOpenGL runs on {type(platform.PLATFORM).__name__}, not EGL: set "
            "PYOPENGL_PLATFORM=egl before anything imports OpenGL"
        )
    if _CONTEXT is None:
        from OpenGL import EGL

        display = EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)
        major, minor = EGL.EGLint(), EGL.EGLint()
        if not display or not EGL.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor)):
            raise RuntimeError("EGL: no display (is Mesa's libEGL installed?)")
        attributes = [EGL.EGL_SURFACE_TYPE, EGL.EGL_PBUFFER_BIT, EGL.EGL_RENDERABLE_TYPE]
        attributes += [EGL.EGL_OPENGL_BIT, EGL.EGL_RED_SIZE, 8, EGL.EGL_GREEN_SIZE, 8]
        attributes += [EGL.EGL_BLUE_SIZE, 8, EGL.EGL_DEPTH_SIZE, 24, EGL.EGL_NONE]
        config, count = EGL.EGLConfig(), EGL.EGLint()
        chosen = EGL.eglChooseConfig(
            display,
            (EGL.EGLint * len(attributes))(*attributes),
            ctypes.byref(config),
            1,
            ctypes.byref(count),
        )
        if not chosen or count.value < 1:
            raise RuntimeError("EGL: no config with a pbuffer and desktop OpenGL")
        size = (EGL.EGLint * 5)(EGL.EGL_WIDTH, width, EGL.EGL_HEIGHT, height, EGL.EGL_NONE)
        surface = EGL.eglCreatePbufferSurface(display, config, size)
        EGL.eglBindAPI(EGL.EGL_OPENGL_API)
        context = EGL.eglCreateContext(display, config, EGL.EGL_NO_CONTEXT, None)
        if not surface or not context:
            raise RuntimeError("EGL: could not create a pbuffer surface and context")
        _CONTEXT = (display, surface, context)
    display, surface, context = _CONTEXT
    from OpenGL import EGL

    if not EGL.eglMakeCurrent(display, surface, surface, context):
        raise RuntimeError("EGL: could not make the context current")
    from segmentation.napari._layers import avoid_llvm_clash

    avoid_llvm_clash()  # llvmpipe's LLVM is loaded now: a later `import triton` would crash
    return GL.glGetString(GL.GL_RENDERER).decode()


def sync_canvas_size(viewer: Any) -> tuple[int, int]:
    """Tell napari's canvas the size its widget has; returns ``(width, height)`` in pixels.

    Without a Qt GL context the canvas widget never gets ``resizeGL``, so vispy keeps its first
    size (800 x 600) and napari fits the camera to that. Call after resizing the window, then
    ``viewer.reset_view()``.
    """
    native = viewer.window._qt_viewer.canvas.native
    width, height = native.width(), native.height()
    native._vispy_set_physical_size(width, height)
    native._vispy_canvas.events.resize(size=(width, height), physical_size=(width, height))
    return width, height


def render_canvas(viewer: Any) -> np.ndarray:
    """The viewer's canvas drawn by napari's vispy scene: ``(h, w, 3)`` uint8, the canvas widget's
    size in pixels."""
    canvas = viewer.window._qt_viewer.canvas
    canvas.on_draw(None)  # bring the scene up to date, as napari's screenshot does
    return np.asarray(canvas._scene_canvas.render(alpha=False))[..., :3]


def window_screenshot(viewer: Any) -> np.ndarray:
    """The whole window (menus, layer controls, dock widgets) with the canvas filled in.

    Returns:
        ``(H, W, 3)`` uint8: Qt's grab of the main window (widgets are drawn in software) with
        :func:`render_canvas` pasted where the canvas widget sits.
    """
    from qtpy.QtCore import QPoint

    window = viewer.window._qt_window
    grab = np.array(viewer.screenshot(canvas_only=False, flash=False))[..., :3]
    native = viewer.window._qt_viewer.canvas.native
    corner = native.mapTo(window, QPoint(0, 0))
    scene = render_canvas(viewer)
    y, x = corner.y(), corner.x()
    h = min(scene.shape[0], grab.shape[0] - y)
    w = min(scene.shape[1], grab.shape[1] - x)
    grab[y : y + h, x : x + w] = scene[:h, :w]
    return grab
