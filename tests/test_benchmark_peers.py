"""Peers in benchmark files, their budget, deadline and inputs, and the errors when they are not
installed: all without StarDist or Cellpose (their run is in test_benchmark_peers_run.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from segmentation.benchmark.config import benchmark_from_dict, load_benchmark_config
from segmentation.benchmark.peers import (
    INSTALL_HINT,
    PEERS,
    PeerNotInstalledError,
    load_peer,
    require_peer,
)
from segmentation.benchmark.peers.common import (
    Deadline,
    PeerBudget,
    check_crop_fits,
    epochs_for,
    peer_input,
)
from segmentation.benchmark.peers.run import peer_budget, peer_options
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.training.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _raw(*architectures, **changes):
    raw = {
        "data": {"root": "sample", "val_fraction": 0.2, "test_fraction": 0.3, "crop_size": 64},
        "architectures": list(architectures) or [{"name": "S", "peer": "stardist"}],
    }
    raw.update(changes)
    return raw


@pytest.fixture
def peers_missing(monkeypatch):
    """Make every peer library look absent, whether or not this environment has them."""
    import importlib.util

    real = importlib.util.find_spec
    hidden = {"stardist", "csbdeep", "tensorflow", "cellpose"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a)
    )


@pytest.mark.parametrize("name", ["benchmark_peers_cpu.yaml", "benchmark_peers_tiny.yaml"])
def test_shipped_peer_benchmark_files_are_valid(name):
    config = load_benchmark_config(REPO / "configs" / name)
    peers = [a.peer for a in config.architectures if a.peer]
    assert sorted(peers) == sorted(PEERS)
    assert any(a.recipe for a in config.architectures)  # families in the same run
    assert config.train["max_minutes"] > 0


def test_peer_file_uses_the_cpu_benchmark_split():
    import yaml

    peers = load_benchmark_config(REPO / "configs" / "benchmark_peers_cpu.yaml")
    cpu = yaml.safe_load((REPO / "configs" / "benchmark_dsb2018_cpu.yaml").read_text())
    assert peers.data == cpu["data"]  # its checkpoints live outside the repo: compare the text
    assert peers.train == {**cpu["train"], "max_minutes": 45}


@pytest.mark.parametrize(
    ("architecture", "message"),
    [
        ({"name": "x", "peer": "ilastik"}, "unknown peer 'ilastik'; choose one of: stardist"),
        ({"name": "x", "peer": "stardist", "recipe": "a.yaml"}, "a peer takes no recipe"),
        ({"name": "x", "peer": "cellpose", "baseline": "otsu"}, "takes no"),
        ({"name": "x", "peer": "stardist", "overrides": ["grid"]}, "'grid' is not key=value"),
        ({"name": "x"}, "or a 'peer' \\(one of: stardist, cellpose\\)"),
    ],
)
def test_bad_peer_entries_name_the_problem(architecture, message):
    with pytest.raises(ConfigError, match=message):
        benchmark_from_dict(_raw(architecture))


def test_peer_entry_is_read():
    config = benchmark_from_dict(
        _raw({"name": "C", "peer": "cellpose", "overrides": ["learning_rate=0.01"]})
    )
    (arch,) = config.architectures
    assert (arch.peer, arch.recipe, arch.baseline) == ("cellpose", None, None)
    assert peer_options(arch.overrides) == {"learning_rate": 0.01}
    assert peer_options(["grid=[2, 2]", "n_rays = 64"]) == {"grid": [2, 2], "n_rays": 64}
    with pytest.raises(ValueError, match="expected key=value"):
        peer_options(["=3"])


def test_missing_peer_says_how_to_install(peers_missing):
    with pytest.raises(PeerNotInstalledError, match="stardist, csbdeep, tensorflow") as info:
        require_peer("stardist")
    assert INSTALL_HINT in str(info.value) and 'pip install -e ".[peers]"' in str(info.value)
    with pytest.raises(ValueError, match="unknown peer"):
        require_peer("ilastik")


def test_a_peer_that_fails_to_import_is_named(monkeypatch):
    import importlib

    def broken(name, *args):
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(PeerNotInstalledError, match="needs 'tensorflow'.*pip install -e"):
        load_peer("stardist")


def test_benchmark_with_a_missing_peer_stops_before_any_work(peers_missing, tmp_path, capsys):
    from segmentation.cli import main

    path = tmp_path / "b.yaml"
    out = tmp_path / "out"
    path.write_text(
        f"output: {out}\n"
        "data: {root: sample, test_fraction: 0.3}\n"
        "architectures: [{name: O, baseline: otsu}, {name: C, peer: cellpose}]\n"
    )
    assert main(["benchmark", str(path)]) == 2
    err = capsys.readouterr().err
    assert "peer 'cellpose' needs cellpose" in err and INSTALL_HINT in err
    assert not out.exists()  # nothing was trained or written


def test_importing_the_toolkit_imports_no_peer():
    code = (
        "import sys, segmentation, segmentation.benchmark.runner, segmentation.benchmark.peers.run; "
        "import segmentation.benchmark.peers.common; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'tensorflow', 'keras', 'stardist', 'csbdeep', 'cellpose'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_peer_budget_takes_the_shared_sections():
    raw = _raw(train={"epochs": 7, "max_minutes": 2.5, "batch_size": 6}, seed=3, device="cpu")
    raw["data"]["samples_per_epoch"] = 40
    budget = peer_budget(benchmark_from_dict(raw))
    assert (budget.minutes, budget.max_epochs, budget.batch_size) == (2.5, 7, 6)
    assert (budget.crop_size, budget.samples_per_epoch, budget.steps_per_epoch) == (64, 40, 6)
    assert (budget.seed, budget.device, budget.stained_view) == (3, "cpu", "rgb")
    assert budget.threads >= 1


def test_deadline_passes_after_its_seconds():
    started = time.perf_counter()
    assert not Deadline(60, started).passed() and Deadline(60, started).left() <= 60
    assert Deadline(0.5, started - 1).passed() and Deadline(0.5, started - 1).elapsed() >= 1
    assert Deadline(None).left() == float("inf") and not Deadline(None).passed()


@pytest.mark.parametrize(
    ("left", "probe", "times", "expected"),
    [
        # 4 steps 1 s apart -> 4 s epochs, probe 10 s -> 6 s of set-up; (100 - 6) / 4.08 -> 23
        (100.0, 10.0, [0.0, 1.0, 2.0, 3.0], (23, 4.0, 6.0)),
        (100.0, 10.0, [5.0], (9, 10.0, 0.0)),  # one step: the whole probe is the epoch
        (1.0, 10.0, [0.0, 1.0], (1, 2.0, 8.0)),  # never below one epoch
        (1e9, 10.0, [0.0, 1.0], (500, 2.0, 8.0)),  # never above the epoch cap
    ],
)
def test_epochs_from_a_one_epoch_probe(left, probe, times, expected):
    epochs, epoch, setup = epochs_for(left, probe, times, max_epochs=500)
    assert (epochs, pytest.approx(epoch), pytest.approx(setup)) == expected


def test_peer_input_is_the_families_normalised_image_channels_last():
    from segmentation.datasets.normalize import prepare_image

    gray = synthetic_nuclei((48, 64), 5, seed=1)
    x = peer_input(gray.image)
    assert x.shape == (48, 64, 3) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, prepare_image(gray.image).transpose(1, 2, 0))
    before = gray.image.copy()
    peer_input(gray.image, "hematoxylin")
    np.testing.assert_array_equal(gray.image, before)  # input not modified


def test_crop_size_larger_than_an_image_is_named():
    small = synthetic_nuclei((48, 64), 5, seed=1)
    small.name = "tiny-image"
    check_crop_fits([small], 32, "stardist")
    with pytest.raises(ValueError, match="stardist: 1 image.*tiny-image.*lower data.crop_size"):
        check_crop_fits([small], 64, "stardist")


def test_budget_defaults_are_sane():
    budget = PeerBudget(None, 3, 128, 8, 4, 1, 0)
    assert budget.steps_per_epoch == 1 and budget.device == "cpu"
