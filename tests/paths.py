"""Paths the tests share."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"

#: The training recipes (``configs/benchmark_*.yaml`` are benchmark files, not recipes).
RECIPES = sorted(p for p in CONFIG_DIR.glob("*.yaml") if not p.name.startswith("benchmark_"))
