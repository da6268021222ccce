"""Cast a model file's weights to float16 (half the size; loading casts them back to float32).

Usage: python scripts/shrink_model.py IN.pt OUT.pt
"""

import sys

from segmentation.training.checkpoint import atomic_save, read_checkpoint


def main(src: str, dst: str) -> None:
    ckpt = read_checkpoint(src)
    for member in ckpt["members"]:
        member["state_dict"] = {
            k: (v.half() if v.is_floating_point() else v) for k, v in member["state_dict"].items()
        }
    ckpt["training_state"] = None
    atomic_save(ckpt, dst)


if __name__ == "__main__":
    main(*sys.argv[1:3])
