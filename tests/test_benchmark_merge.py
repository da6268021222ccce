"""Parts of a benchmark run with ``--only`` are joined into one table, and parts that did not
run the same split or shared sections are refused."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from segmentation.benchmark import load_benchmark_config, run_benchmark
from segmentation.benchmark.config import select_architectures
from segmentation.benchmark.merge import merge_parts

TINY = Path(__file__).resolve().parents[1] / "configs" / "benchmark_tiny.yaml"


@pytest.fixture(scope="module")
def otsu_part(tmp_path_factory):
    """A real part: the tiny benchmark file run ``--only "Otsu + watershed"``."""
    out = tmp_path_factory.mktemp("part_a")
    config = load_benchmark_config(TINY, [f"output={out}", "examples=1"])
    run_benchmark(select_architectures(config, ["Otsu + watershed"]))
    return out


def _copy_part(source: Path, target: Path, change) -> Path:
    """A second part: ``source``'s results with its row renamed, then ``change(payload)``."""
    shutil.copytree(source, target)
    payload = json.loads((target / "results.json").read_text())
    payload["rows"][0]["name"] = "Otsu again"
    payload["curves"] = {"Otsu again": payload["curves"]["Otsu + watershed"]}
    change(payload)
    (target / "results.json").write_text(json.dumps(payload))
    return target


def test_parts_join_into_one_table(otsu_part, tmp_path):
    other = _copy_part(otsu_part, tmp_path / "b", lambda p: None)
    out = merge_parts([otsu_part, other], tmp_path / "merged")
    with (out / "results.csv").open(newline="") as fh:
        names = [row["name"] for row in csv.DictReader(fh)]
    assert names == ["Otsu + watershed", "Otsu again"]
    merged = json.loads((out / "results.json").read_text())
    assert set(merged["curves"]) == set(names)
    assert set(merged["record"]["parts"]) == {str(otsu_part), str(other)}
    assert (out / "results.md").read_text().count("| Otsu again |") == 3
    assert (out / "speed_accuracy.png").stat().st_size > 0


def _another_split(payload):
    payload["record"]["split"] = "another split"


def _another_budget(payload):
    payload["record"]["config"]["train"]["max_minutes"] = 99


def _same_name(payload):
    payload["rows"][0]["name"] = "Otsu + watershed"


@pytest.mark.parametrize(
    "change, message",
    [
        (_another_split, "another split"),
        (_another_budget, "'train' section"),
        (_same_name, "is in both"),
    ],
)
def test_parts_that_are_not_comparable_are_refused(otsu_part, tmp_path, change, message):
    other = _copy_part(otsu_part, tmp_path / "b", change)
    with pytest.raises(ValueError, match=message):
        merge_parts([otsu_part, other], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
