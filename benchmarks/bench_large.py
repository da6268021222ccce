"""Whole-slide speed and memory of ``segment_large`` on Dask, against whole-image ``segment()``.

Usage (repo root)::

    .venv/bin/python benchmarks/bench_large.py --size 4096 --block 2048 --workers 1 2 \\
        --threads 1 --crop 4096 --work /tmp/bl4k --repeat 2 --json /tmp/bl4k.json

1. A synthetic ``size x size`` fluorescence image is written to a Zarr array (or a tiled TIFF with
   ``--format tiff``) without ever being held whole: it is tiled from a pool of distinct 2048 x
   2048 synthetic samples (rotated and mirrored), band by band. Kept in ``--work`` for later runs.
2. Whole-image ``segment()`` on the top-left ``--crop`` pixels square, in a child process: the
   reference (wall time, CPU time, peak memory ``ru_maxrss``).
3. For each ``--block``, ``--workers`` and ``--threads`` value, ``segment_large`` on a fresh
   local cluster (``workers`` x ``threads``) in a child process: wall time and its ratio to the
   ``segment()`` run just before it, CPU time (the child and its worker processes: less
   sensitive than wall time to other jobs on a shared machine), the time of each pass
   (``LargeResult.timings``: setup, cluster start and close, statistics, first blocks, other
   blocks, stitching), the block pipeline's steps added up over the blocks (model, read,
   network, decode, table, save), each worker's peak resident memory and the client's.

``--repeat N`` runs the whole sequence N times, interleaved, and prints the median ratios;
``--before PATH`` also runs ``segment_large`` from the package at PATH (another checkout, e.g.
the previous version), in the same sequence, for a before/after ratio. Each row records the
load average (``os.getloadavg``) and the time. The model is the default one shipped in the
package (``--model reference`` for the fixed filter network); the automatic nucleus size is on,
as for users. ``--block 0`` uses ``segment_large``'s default block size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

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


def _usage() -> tuple[float, int]:
    """CPU seconds (user + system) of this process and its finished children; its peak RSS."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, int(own.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)


def child_large(args: argparse.Namespace) -> dict:
    from segmentation.large import segment_large

    tag = "before" if args.root else "after"
    block, workers, threads = args.block[0], args.workers[0], args.threads[0]
    output = Path(args.work) / f"labels_{tag}_b{block}_w{workers}_t{threads}.zarr"
    for old in (output, output.with_suffix(".parts")):  # a finished job would not run again
        shutil.rmtree(old, ignore_errors=True)
    began, cpu = time.perf_counter(), _usage()[0]
    sizes = {"block_size": block} if block else {}
    result = segment_large(
        args.source, output, _model(args.model), workers=workers, threads_per_worker=threads,
        progress=False, **sizes,
    )  # fmt: skip
    wall = time.perf_counter() - began
    used, peak = _usage()
    return {
        "run": f"segment_large{' (before)' if args.root else ''}, blocks of "
        f"{block or 'default'}, {workers} worker(s) x {threads} thread(s)",
        "pixels": args.size**2,
        "wall_s": wall,
        "cpu_s": used - cpu,
        "passes_s": {k: round(v, 1) for k, v in result.timings.items()},
        "steps_s": {k: round(v, 1) for k, v in getattr(result, "block_steps", {}).items()},
        "nuclei": result.nuclei,
        "blocks": result.blocks,
        "diameter": result.diameter,
        "worker_peak_gib": sorted(v / 2**30 for v in result.memory.values()),
        "client_peak_gib": peak / 2**30,
    }


def child_whole(args: argparse.Namespace) -> dict:
    from segmentation.inference import segment
    from segmentation.large import open_image_source

    source = open_image_source(args.source)
    crop = min(args.crop, source.height, source.width)
    image = source.read(0, crop, 0, crop)
    before = _usage()[1]
    began, cpu = time.perf_counter(), _usage()[0]
    labels = segment(image, _model(args.model))
    wall = time.perf_counter() - began
    used, peak = _usage()
    return {
        "run": f"segment(), whole {crop} x {crop} image in one process",
        "pixels": crop * crop,
        "wall_s": wall,
        "cpu_s": used - cpu,
        "nuclei": int(labels.max()),
        "peak_gib_before": before / 2**30,
        "client_peak_gib": peak / 2**30,
    }


def _child(
    args: argparse.Namespace, kind: str, block: int, workers: int, threads: int, root: str
) -> dict:
    argv = [sys.executable, __file__, "--child", kind, "--source", str(args.source)]
    argv += ["--size", str(args.size), "--block", str(block), "--threads", str(threads)]
    argv += ["--crop", str(args.crop), "--model", args.model, "--work", str(args.work)]
    argv += ["--workers", str(workers), "--root", root]
    load = os.getloadavg()[0]
    started = time.strftime("%H:%M:%S")
    done = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["load"] = (round(load, 2), round(os.getloadavg()[0], 2))
    row["clock"] = f"{started}-{time.strftime('%H:%M:%S')}"
    return row


def _row(r: dict, reference: dict | None) -> str:
    workers = ", ".join(f"{v:.2f}" for v in r.get("worker_peak_gib", [])) or "-"
    ratio = cpu_ratio = "-"
    if reference is not None and r is not reference:
        ratio = f"{r['wall_s'] / reference['wall_s']:.2f}"
        cpu_ratio = f"{r['cpu_s'] / reference['cpu_s']:.2f}"
    return (
        f"| {r['run']} | {r['clock']} | {r['load'][0]:.1f}-{r['load'][1]:.1f} | "
        f"{r['wall_s']:.1f} | {ratio} | {r['cpu_s']:.0f} | {cpu_ratio} | {workers} | "
        f"{r['client_peak_gib']:.2f} | {r['nuclei']} |"
    )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20000, help="image side (pixels)")
    parser.add_argument(
        "--block", type=int, nargs="+", default=[0], help="block sizes (0: the default)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1], help="threads per worker (each count)"
    )
    parser.add_argument("--crop", type=int, default=8192, help="side of the segment() crop")
    parser.add_argument("--model", choices=("default", "reference"), default="default")
    parser.add_argument("--format", choices=("zarr", "tiff"), default="zarr")
    parser.add_argument("--work", default="/tmp/bench_large", help="folder for image and labels")
    parser.add_argument("--repeat", type=int, default=1, help="run the sequence this many times")
    parser.add_argument(
        "--before", default="", help="also run segment_large from the package at this path"
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--source", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("large", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--root", default="", help=argparse.SUPPRESS)
    return parser


def main(args: argparse.Namespace) -> None:
    if args.child:
        sys.path.insert(0, args.root or str(REPO))
        result = child_large(args) if args.child == "large" else child_whole(args)
        print(json.dumps(result))
        return
    sys.path.insert(0, str(REPO))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    args.source = work / f"image_{args.size}.{'zarr' if args.format == 'zarr' else 'tif'}"
    if not args.source.exists():
        began = time.perf_counter()
        make_image(args.source, args.size, args.format)
        print(f"wrote {args.source} in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    sizes = [(b, w, t) for b in args.block for w in args.workers for t in args.threads]
    runs = [("whole", 0, 1, 1, "")] + [("large", *size, "") for size in sizes]
    if args.before:
        runs += [("large", *size, str(Path(args.before).resolve())) for size in sizes]
    rows: list[dict] = []  # the whole-image reference first in each round
    for round_ in range(args.repeat):
        reference = None
        for kind, block, workers, threads, root in runs:
            row = _child(args, kind, block, workers, threads, root)
            row["round"] = round_
            reference = row if kind == "whole" else reference
            row["ratio"] = row["wall_s"] / reference["wall_s"]
            row["cpu_ratio"] = row["cpu_s"] / reference["cpu_s"]
            rows.append(row)
            print(_row(row, reference), file=sys.stderr, flush=True)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, ", end="")
    print(time.strftime("%Y-%m-%d %H:%M %Z"))
    print(
        "| run | time | load | wall (s) | wall / segment() | CPU (s) | CPU / segment() | "
        "worker peak (GiB) | client peak (GiB) | nuclei |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        reference = next(r for r in rows if r["round"] == row["round"] and "passes_s" not in r)
        print(_row(row, reference))
    for row in rows:
        if "passes_s" in row:
            print(f"{row['run']} (round {row['round']}): {row['blocks']} blocks, diameter ", end="")
            print(f"{row['diameter']}, passes {row['passes_s']}, block steps {row['steps_s']}")
    for name in dict.fromkeys(r["run"] for r in rows if "passes_s" in r):
        mine = [r for r in rows if r["run"] == name]
        wall = statistics.median(r["ratio"] for r in mine)
        cpu = statistics.median(r["cpu_ratio"] for r in mine)
        print(f"median over {len(mine)} round(s), {name}: wall {wall:.2f}x, CPU {cpu:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(get_args_parser().parse_args())
