"""The one record that flows through the data layer: an image with its label image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sample:
    """An image and its instance label image.

    Attributes:
        name: identifier (the DSB image id, or the file stem).
        image: ``(H, W, C)`` array, ``uint8`` or ``uint16``, ``C`` in ``{1, 3}`` (gray or RGB, alpha
            dropped), as read from disk; never normalised.
        labels: ``(H, W)`` ``int32`` label image, 0 = background, 1..N = nuclei; ``None`` when the
            image has no annotation.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray | None = None
