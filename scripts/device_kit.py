"""Fill ``.kit/`` with what a lent GPU machine needs and does not have, and print its size.

The GPU machine receives only the working tree (64 MiB at most) and has no network: its Python
(3.12, x86-64) holds torch, torchvision, scikit-image and tifffile but not
segmentation-models-pytorch or albumentations. The kit holds:

* ``.kit/dsb2018_stage1_train.npz``, ``.kit/bbbc039.npz``, ``.kit/gbm40_tcga.npz`` and
  ``.kit/koyuncu_fluo.npz``: the training data in the compact encoding (``segmentation pack
  --codec webp``: normalised 8-bit WebP images, zlib labels); the last two hold the held-out
  sources too (TCGA tiles, Huh7 images), which a recipe keeps out with ``data.holdout``;
* ``.kit/wheels/``: wheels of the missing packages for CPython 3.12 on manylinux x86-64, pinned
  to the versions of ``constraints.txt``.

``scripts/device_run.sh`` installs the wheels there and trains from the packed data. Usage::

    make device-kit          # or: .venv/bin/python scripts/device_kit.py [--dsb DIR] [--bbbc039 DIR]

Exits 1 when the kit plus the working tree exceed ``--limit-mib`` (60).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / ".kit"
#: Packages the GPU machine lacks (with their own missing dependencies), pinned below.
WHEELS = (
    "segmentation_models_pytorch",
    "timm",  # the machine's own timm may predate smp's needs: carry the tested one
    "albumentations",
    "albucore",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_inspection",
    "typing_extensions",
    "simsimd",
    "stringzilla",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pinned_versions(constraints: Path = REPO / "constraints.txt") -> dict[str, str]:
    """``{normalised name: version}`` of the ``name==version`` lines of ``constraints.txt``."""
    pins = {}
    for line in constraints.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "_", match.group(1)).lower()] = match.group(2)
    return pins


def download_wheels(folder: Path) -> None:
    """``pip download`` each of :data:`WHEELS` (no dependencies) for CPython 3.12, x86-64."""
    pins = pinned_versions()
    missing = [name for name in WHEELS if name not in pins]
    if missing:
        raise SystemExit(f"constraints.txt pins no version of {missing}: add them there")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):
        old.unlink()
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", "3.12", "--implementation", "cp", "-d", str(folder), "-q"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += [f"{name.replace('_', '-')}=={pins[name]}" for name in WHEELS]
    subprocess.run(command, check=True)


def pack(source: Path, output: Path) -> None:
    """``segmentation pack SOURCE --codec webp`` into ``output`` (skipped when up to date)."""
    if output.is_file() and output.stat().st_mtime > source.stat().st_mtime:
        print(f"{output.relative_to(REPO)} exists, kept")
        return
    if not source.is_dir():
        raise SystemExit(f"data set not found: {source}; pass its folder (see --help)")
    command = [sys.executable, "-m", "segmentation", "pack", str(source), "-o", str(output)]
    subprocess.run([*command, "--codec", "webp", "-q"], check=True)


def tree_bytes() -> int:
    """Bytes of the files that travel with the working tree: tracked and untracked-not-ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    files = [REPO / p for p in out.decode().split("\0") if p]
    return sum(f.stat().st_size for f in files if f.is_file())


def main(argv: list[str] | None = None) -> int:
    """Build the kit, print its size; returns 1 when it is over the limit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsb", type=Path, default=REPO.parent / "shared/data/dsb2018/stage1_train"
    )
    parser.add_argument("--bbbc039", type=Path, default=REPO.parent / "shared/data/bbbc039")
    parser.add_argument("--gbm40-tcga", type=Path, default=REPO.parent / "shared/data/gbm40_tcga")
    parser.add_argument("--koyuncu", type=Path, default=REPO.parent / "shared/data/koyuncu_fluo")
    parser.add_argument("--limit-mib", type=float, default=60.0)
    parser.add_argument("--no-wheels", action="store_true", help="skip the wheel download")
    args = parser.parse_args(argv)
    KIT.mkdir(exist_ok=True)
    pack(args.dsb, KIT / "dsb2018_stage1_train.npz")
    pack(args.bbbc039, KIT / "bbbc039.npz")
    pack(args.gbm40_tcga, KIT / "gbm40_tcga.npz")
    pack(args.koyuncu, KIT / "koyuncu_fluo.npz")
    if not args.no_wheels:
        download_wheels(KIT / "wheels")
    kit = sum(f.stat().st_size for f in KIT.rglob("*") if f.is_file())
    tree = tree_bytes()
    for f in sorted(KIT.rglob("*")):
        if f.is_file():
            print(f"  {f.relative_to(REPO)}  {f.stat().st_size / 2**20:.2f} MiB")
    total = (kit + tree) / 2**20
    print(
        f"kit {kit / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = {total:.1f} MiB "
        f"(limit {args.limit_mib:g} MiB)"
    )
    if total > args.limit_mib:
        print("over the limit: the device would refuse the working tree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
