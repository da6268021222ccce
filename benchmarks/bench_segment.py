"""Speed of ``segment()`` per family, split into network and post-processing, and the peak memory
of an 8192 x 8192 image.

Usage (repo root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segment.py [--size 1024] [--big 8192]

Networks are small and untrained (nothing can be downloaded here): ``unet`` (smp U-Net, resnet18,
3 encoder stages), ``fpn`` (smp FPN, resnet18, 3 stages), ``maskrcnn`` (configs/tiny_maskrcnn.yaml,
resnet18). Their speed is that of real networks of that size; their post-processing time is not
representative (untrained maps are not nucleus-like: U-Net's are nearly empty, FPN's one blob,
Mask R-CNN paints hundreds of random boxes). The ``*-reference`` rows run the fixed filter networks
of :mod:`segmentation.inference.reference_nets`, whose maps decode into realistic nuclei: their
post-processing time is the one to expect from trained models.

``--big N`` segments an ``N x N`` image (a 2048 x 2048 synthetic image with 5,000 nuclei, tiled)
in a child process per network, which loads the image from a ``.npy`` file, and reports the
child's resident memory before ``segment()`` (``VmRSS``: Python, torch, the model, the image) and
its peak (``VmHWM``) over the whole run. The ``:whole-decode`` row decodes the same maps in one
piece (``SegmentOptions(decode_limit=None)``), the baseline for the block decode.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segmentation.datasets.synthetic import synthetic_nuclei  # noqa: E402
from segmentation.inference import SegmentationModel, SegmentOptions, segment  # noqa: E402
from segmentation.inference.reference_nets import ReferenceFpn, ReferenceUnet  # noqa: E402
from segmentation.models.registry import get_family  # noqa: E402

SMALL = {
    "unet": {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [64, 32, 16]},
    "fpn": {
        "encoder": "resnet18",
        "encoder_depth": 3,
        "decoder_pyramid_channels": 64,
        "decoder_segmentation_channels": 32,
    },
}


def build(name: str, device: str) -> SegmentationModel:
    """A small untrained network of a family, or a reference filter network (``*-reference``)."""
    torch.manual_seed(0)
    if name == "unet-reference":
        return SegmentationModel("unet", [ReferenceUnet()], device=device)
    if name == "fpn-reference":
        return SegmentationModel("fpn", [ReferenceFpn()], device=device)
    if name == "maskrcnn":
        config = yaml.safe_load((REPO / "configs" / "tiny_maskrcnn.yaml").read_text())["model"]
    else:
        config = SMALL[name]
    return SegmentationModel(name, [get_family(name).build(config)], device=device)


def speed_table(size: int, tile: int, repeats: int, device: str) -> list[dict]:
    image = synthetic_nuclei((size, size), size * size // 1000, seed=0, radius_range=(5, 14)).image
    rows = []
    for name in ("unet", "fpn", "maskrcnn", "unet-reference", "fpn-reference"):
        model = build(name, device)
        segment(image[:256, :256], model, tile_size=256)  # warm-up
        best = None
        for _ in range(repeats):
            start = time.perf_counter()
            labels, details = segment(image, model, tile_size=tile, return_details=True)
            total = time.perf_counter() - start
            t = details.timings
            run = {"total": total, "network": t["network"], "post": t["decode"] + t["table"]}
            if best is None or run["total"] < best["total"]:
                best = {**run, "nuclei": int(labels.max()), "tiles": details.tiles}
        rows.append({"name": name, **best})
    return rows


def print_speed(rows: list[dict], size: int, tile: int) -> None:
    mp = size * size / 1e6
    base = rows[0]["total"]
    print(f"\nsegment() on a {size}x{size} synthetic image ({mp:.2f} MP), tile {tile}:")
    print(
        "| network | nuclei | tiles | network s | post-proc s | total s | MP/s | net MP/s "
        "| post MP/s | time / unet |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['nuclei']} | {r['tiles']} | {r['network']:.2f} | "
            f"{r['post']:.2f} | {r['total']:.2f} | {mp / r['total']:.2f} | "
            f"{mp / r['network']:.2f} | {mp / max(r['post'], 1e-9):.1f} | "
            f"{r['total'] / base:.2f} |"
        )


def big_image(size: int, path: Path) -> Path:
    """Write the big test image (a tiled 2048^2 synthetic image) to ``path`` (.npy)."""
    base = synthetic_nuclei((2048, 2048), 5000, seed=1, radius_range=(4, 10)).image
    reps = -(-size // 2048)
    np.save(path, np.ascontiguousarray(np.tile(base, (reps, reps, 1))[:size, :size]))
    return path


def _memory_gb(field: str) -> float:
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process in GiB, from /proc/self/status.

    ``ru_maxrss`` is not used: Linux carries it over from the parent across fork and exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def big_child(path: Path, name: str, tile: int, device: str) -> None:
    """Run in a child process: segment the image saved at ``path``, print one JSON line."""
    image = np.load(path)
    size = image.shape[0]
    network, _, variant = name.partition(":")
    options = SegmentOptions(decode_limit=None) if variant == "whole-decode" else None
    model = build(network, device)
    before = _memory_gb("VmRSS")
    start = time.perf_counter()
    labels, details = segment(image, model, tile_size=tile, return_details=True, options=options)
    total = time.perf_counter() - start
    peak = _memory_gb("VmHWM")
    t = details.timings
    result = {
        "name": name,
        "size": size,
        "tiles": details.tiles,
        "nuclei": int(labels.max()),
        "dtype": str(labels.dtype),
        "network": t["network"],
        "post": t["decode"] + t["table"],
        "total": total,
        "rss_before_gb": before,
        "peak_rss_gb": peak,
    }
    print(json.dumps(result))


def big_table(size: int, tile: int, device: str, names: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = big_image(size, Path(tmp) / "big.npy")
        for name in names:
            cmd = [sys.executable, __file__, "--child-big", str(path), "--child-name", name]
            cmd += ["--tile", str(tile), "--device", device]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{name} at {size}: {done.stderr[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def print_big(rows: list[dict], tile: int) -> None:
    print(f"\nsegment() on one {rows[0]['size']}^2 image, tile {tile}, each in its own process:")
    print(
        "| network | nuclei | labels | tiles | network s | post-proc s | total s | MP/s "
        "| RSS before GiB | peak RSS GiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mp = r["size"] ** 2 / 1e6
        print(
            f"| {r['name']} | {r['nuclei']} | {r['dtype']} | {r['tiles']} | {r['network']:.1f} | "
            f"{r['post']:.1f} | {r['total']:.1f} | {mp / r['total']:.2f} | "
            f"{r['rss_before_gb']:.2f} | {r['peak_rss_gb']:.2f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="side of the speed-table image")
    parser.add_argument("--tile", type=int, default=512, help="tile size")
    parser.add_argument("--repeats", type=int, default=2, help="runs per row (best kept)")
    parser.add_argument("--big", type=int, default=0, help="also run one N x N image (e.g. 8192)")
    parser.add_argument("--big-tile", type=int, default=1024, help="tile size of the big run")
    parser.add_argument(
        "--big-networks",
        nargs="+",
        default=["unet", "unet-reference", "unet-reference:whole-decode"],
        help="big-run networks; ':whole-decode' decodes without blocks (decode_limit=None)",
    )
    parser.add_argument("--skip-speed", action="store_true", help="only the big run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child-big", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-name", default="unet", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_big:
        big_child(Path(args.child_big), args.child_name, args.tile, args.device)
        return 0
    print(f"torch threads: {torch.get_num_threads()}, device: {args.device}")
    if not args.skip_speed:
        print_speed(
            speed_table(args.size, args.tile, args.repeats, args.device), args.size, args.tile
        )
    if args.big:
        print_big(big_table(args.big, args.big_tile, args.device, args.big_networks), args.big_tile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
