"""Whole-slide speed and memory of ``segment_large`` on Dask, against whole-image ``segment()``.

Usage (repo root)::

    .venv/bin/python benchmarks/bench_large.py --size 20000 --block 2048 --workers 1 2 \\
        --threads 1 --crop 8192 --work /tmp/bench_large --json docs/bench_large.json

1. A synthetic ``size x size`` fluorescence image is written to a Zarr array (or a tiled TIFF with
   ``--format tiff``) without ever being held whole: it is tiled from a pool of distinct 2048 x
   2048 synthetic samples (rotated and mirrored), band by band. Kept in ``--work`` for later runs.
2. For each ``--workers`` count, ``segment_large`` runs on a fresh local cluster (``workers``
   processes x ``--threads`` threads) in a child process: wall time, megapixels per second, the
   time of each pass, each worker's peak resident memory (``LargeResult.memory``) and the client
   process's peak (``ru_maxrss`` of the child, which holds only the client).
3. Whole-image ``segment()`` on the top-left ``--crop`` pixels square, in a child process: wall
   time, megapixels per second and peak memory (``ru_maxrss``), the reference.

The model is the default one shipped in the package (``--model reference`` for the fixed filter
network, seconds instead of minutes); the automatic nucleus size is on, as for users.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segmentation.large.run import peak_rss  # noqa: E402

POOL_TILE = 2048


def _pool(count: int = 4) -> list[np.ndarray]:
    """Distinct 2048 x 2048 synthetic fluorescence samples (about 3,000 nuclei each)."""
    from segmentation.datasets.synthetic import synthetic_nuclei

    return [
        synthetic_nuclei((POOL_TILE, POOL_TILE), 3000, seed=s, radius_range=(5, 14)).image[..., 0]
        for s in range(count)
    ]


def _band(pool: list[np.ndarray], row: int, size: int) -> np.ndarray:
    """Rows ``row * 2048 ...`` of the image: pool tiles turned and mirrored, cut to ``size``."""
    height = min(POOL_TILE, size - row * POOL_TILE)
    tiles = []
    for col in range(-(-size // POOL_TILE)):
        k = (row * 7 + col * 3) % (4 * len(pool))
        tile = np.rot90(pool[k % len(pool)], k // len(pool) % 4)
        tiles.append(tile[:, ::-1] if (row + col) % 2 else tile)
    return np.ascontiguousarray(np.concatenate(tiles, axis=1)[:height, :size])


def make_image(path: Path, size: int, fmt: str) -> None:
    """Write the synthetic image to ``path`` (Zarr array or tiled TIFF), one band at a time."""
    pool = _pool()
    bands = -(-size // POOL_TILE)
    if fmt == "zarr":
        import zarr

        array = zarr.create_array(
            store=str(path), shape=(size, size), chunks=(1024, 1024), dtype="uint8", overwrite=True
        )
        for row in range(bands):
            array[row * POOL_TILE : (row + 1) * POOL_TILE] = _band(pool, row, size)
        return
    import tifffile

    def tiles():
        for row in range(bands):
            band = _band(pool, row, size)
            for y in range(0, band.shape[0], 256):
                for x in range(0, size, 256):
                    tile = np.zeros((256, 256), np.uint8)
                    part = band[y : y + 256, x : x + 256]
                    tile[: part.shape[0], : part.shape[1]] = part
                    yield tile

    tifffile.imwrite(
        path, tiles(), shape=(size, size), dtype=np.uint8, tile=(256, 256), compression="zlib",
        bigtiff=True,
    )  # fmt: skip


def _model(name: str):
    if name == "default":
        return None
    from segmentation.inference import SegmentationModel
    from segmentation.inference.reference_nets import ReferenceUnet

    return SegmentationModel("unet", [ReferenceUnet()], device="cpu")


def child_large(args: argparse.Namespace) -> dict:
    from segmentation.large import segment_large

    output = Path(args.work) / f"labels_w{args.workers[0]}.zarr"
    began = time.perf_counter()
    result = segment_large(
        args.source, output, _model(args.model), block_size=args.block, workers=args.workers[0],
        threads_per_worker=args.threads, progress=True,
    )  # fmt: skip
    wall = time.perf_counter() - began
    return {
        "run": f"segment_large, {args.workers[0]} worker(s) x {args.threads} thread(s)",
        "pixels": args.size**2,
        "wall_s": wall,
        "mp_per_s": args.size**2 / 1e6 / wall,
        "passes_s": {k: round(v, 1) for k, v in result.timings.items()},
        "nuclei": result.nuclei,
        "blocks": result.blocks,
        "worker_peak_gib": sorted(v / 2**30 for v in result.memory.values()),
        "client_peak_gib": peak_rss() / 2**30,
    }


def child_whole(args: argparse.Namespace) -> dict:
    from segmentation.inference import segment
    from segmentation.large import open_image_source

    source = open_image_source(args.source)
    crop = min(args.crop, source.height, source.width)
    image = source.read(0, crop, 0, crop)
    before = peak_rss()
    began = time.perf_counter()
    labels = segment(image, _model(args.model))
    wall = time.perf_counter() - began
    return {
        "run": f"segment(), whole {crop} x {crop} image in one process",
        "pixels": crop * crop,
        "wall_s": wall,
        "mp_per_s": crop * crop / 1e6 / wall,
        "nuclei": int(labels.max()),
        "peak_gib_before": before / 2**30,
        "client_peak_gib": peak_rss() / 2**30,
    }


def _child(args: argparse.Namespace, kind: str, workers: int | None = None) -> dict:
    argv = [sys.executable, __file__, "--child", kind, "--source", str(args.source)]
    argv += ["--size", str(args.size), "--block", str(args.block), "--threads", str(args.threads)]
    argv += ["--crop", str(args.crop), "--model", args.model, "--work", str(args.work)]
    argv += ["--workers", str(workers or 1)]
    done = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(r: dict) -> str:
    workers = ", ".join(f"{v:.2f}" for v in r.get("worker_peak_gib", [])) or "-"
    return (
        f"| {r['run']} | {r['pixels'] / 1e6:.0f} | {r['wall_s']:.0f} | {r['mp_per_s']:.3f} | "
        f"{workers} | {r['client_peak_gib']:.2f} | {r['nuclei']} |"
    )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20000, help="image side (pixels)")
    parser.add_argument("--block", type=int, default=2048, help="segment_large block_size")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--crop", type=int, default=8192, help="side of the segment() crop")
    parser.add_argument("--model", choices=("default", "reference"), default="default")
    parser.add_argument("--format", choices=("zarr", "tiff"), default="zarr")
    parser.add_argument("--work", default="/tmp/bench_large", help="folder for image and labels")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--source", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("large", "whole"), help=argparse.SUPPRESS)
    return parser


def main(args: argparse.Namespace) -> None:
    if args.child:
        result = child_large(args) if args.child == "large" else child_whole(args)
        print(json.dumps(result))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    args.source = work / f"image_{args.size}.{'zarr' if args.format == 'zarr' else 'tif'}"
    if not args.source.exists():
        began = time.perf_counter()
        make_image(args.source, args.size, args.format)
        print(f"wrote {args.source} in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    rows = []  # the whole-image baseline first; each row printed as it is measured
    for kind, workers in [("whole", None)] + [("large", w) for w in args.workers]:
        rows.append(_child(args, kind) if workers is None else _child(args, kind, workers))
        print(_row(rows[-1]), file=sys.stderr, flush=True)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, {platform.python_version()}")
    print("| run | megapixels | wall (s) | MP/s | worker peak (GiB) | client peak (GiB) | nuclei |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(_row(row))
    for row in rows:
        if "passes_s" in row:
            print(f"{row['run']}: passes {row['passes_s']}, {row['blocks']} blocks")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(get_args_parser().parse_args())
