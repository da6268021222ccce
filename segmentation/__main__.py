"""``python -m segmentation ...`` (and ``torchrun -m segmentation train ...``)."""

import sys

from segmentation.cli import main

sys.exit(main())
