"""Cast a model file's weights to float16 (half the size; loading casts them back to float32).

Usage: python scripts/shrink_model.py IN.pt OUT.pt

The cast is :func:`segmentation.modelfile.half_precision`; to ship the default model
(re-scored in both precisions, with a model card) use ``scripts/ship_default_model.py``.
"""

import sys

from segmentation.modelfile import atomic_save, half_precision, read_checkpoint


def main(src: str, dst: str) -> None:
    """Write ``src`` with float16 weights and no training state to ``dst``."""
    atomic_save(half_precision(read_checkpoint(src)), dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/shrink_model.py IN.pt OUT.pt")
    main(*sys.argv[1:3])
