"""A tiny benchmark with StarDist and Cellpose beside a family and Otsu (configs/
benchmark_peers_tiny.yaml): each peer trained by its own code under the shared split and budget,
tuned, tested and tabulated like every row.

Needs the optional peers, so it runs only in an environment that has them (a few minutes on 2
loaded cores; see docs/benchmarks.md, 'Peers')::

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install -c constraints-peers.txt -e ".[peers,dev]"
    /work/peers-venv/bin/python -m pytest -m peers
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from segmentation.benchmark.peers import PEERS, PeerNotInstalledError, require_peer


def _missing() -> str:
    missing = []
    for name in PEERS:
        try:
            require_peer(name)
        except PeerNotInstalledError:
            missing.append(name)
    if not missing:
        return ""
    return (
        f"the optional peers ({', '.join(missing)}) are not installed here; "
        'pip install -e ".[peers]" in a separate environment, then python -m pytest -m peers'
    )


MISSING = _missing()
pytestmark = [pytest.mark.peers, pytest.mark.skipif(bool(MISSING), reason=MISSING)]

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "benchmark_peers_tiny.yaml"


@pytest.fixture(scope="module")
def peer_run(tmp_path_factory):
    from segmentation.benchmark import load_benchmark_config, run_benchmark
    from segmentation.benchmark.runner import make_split

    out = tmp_path_factory.mktemp("peers")
    config = load_benchmark_config(TINY, [f"output={out}"])
    run_benchmark(config)
    payload = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in payload["rows"]}
    return config, out, rows, payload["record"], make_split(config)


def test_peers_and_families_share_the_tables(peer_run):
    config, out, rows, _, _ = peer_run
    names = [a.name for a in config.architectures]
    with (out / "results.csv").open(newline="") as fh:
        assert [r["name"] for r in csv.DictReader(fh)] == names
    markdown = (out / "results.md").read_text()
    for name in names:
        assert markdown.count(f"| {name} |") == 3
    for name in ("StarDist", "Cellpose"):
        row = rows[name]
        for key in ("score", "f1_0.5", "f1_0.7", "f1_0.9"):
            assert 0.0 <= row[key] <= 1.0
        assert row["network_ms_per_image"] > 0 and row["post_ms_per_image"] > 0
        assert row["peak_cpu_mb"] > 0 and row["parameters"] > 100_000
        assert sum(row[f"images_{k}"] for k in ("fluorescence", "brightfield", "histology")) == 4
    for name in ("threshold_curves.png", "speed_accuracy.png", "examples.png"):
        assert (out / name).stat().st_size > 1000


def test_peers_train_under_the_shared_budget(peer_run):
    config, _, rows, _, _ = peer_run
    budget = 60 * config.train["max_minutes"]
    stardist, cellpose = rows["StarDist"], rows["Cellpose"]
    assert stardist["family"] == "stardist" and cellpose["family"] == "cellpose"
    for row in (stardist, cellpose):
        assert row["train_crops"] >= config.train["batch_size"]  # at least one step
        assert row["train_crops"] % config.train["batch_size"] == 0
        assert row["train_epochs"] <= config.train["epochs"]
        # stopped at the deadline (one step late at most: StarDist's first compiles its graph)
        assert row["stopped_at_deadline"] or row["train_epochs"] == config.train["epochs"]
        assert row["train_seconds"] < budget + 90
    assert cellpose["planned_epochs"] >= 1 and cellpose["probe_epoch_seconds"] > 0
    assert "stardist 0.9" in stardist["source"] and "cellpose 3." in cellpose["source"]


def test_peers_are_tuned_on_the_validation_split(peer_run):
    _, _, rows, _, _ = peer_run
    assert set(rows["StarDist"]["thresholds"]) == {"prob", "nms"}
    assert set(rows["Cellpose"]["thresholds"]) == {"flow_threshold", "cellprob_threshold"}
    # the best each representation can do on these nuclei (star-convex polygons, flows)
    assert rows["StarDist"]["oracle"] > 0.9 and rows["Cellpose"]["oracle"] > 0.9


def test_run_record_names_the_peer_versions(peer_run):
    _, out, _, record, _ = peer_run
    for name in ("stardist", "csbdeep", "keras", "cellpose"):
        assert name in record["versions"]
    assert record["versions"]["cellpose"].startswith("3.")
    assert "cellpose 3." in (out / "results.md").read_text()


def test_stardist_timed_split_equals_predict_instances(peer_run):
    from stardist.models import StarDist2D

    from segmentation.benchmark.peers.common import peer_input
    from segmentation.benchmark.peers.stardist_peer import TrainedStarDist

    _, out, rows, _, split = peer_run
    model = StarDist2D(None, name="stardist", basedir=str(out / "runs" / "stardist"))
    assert model.thresholds.prob == pytest.approx(rows["StarDist"]["thresholds"]["prob"])
    x = peer_input(split.test[0].image)
    labels, network, post = TrainedStarDist(model, {}).predict(x)
    expected, _ = model.predict_instances(x, show_tile_progress=False)
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int32 and network > 0 and post > 0


def test_cellpose_timed_split_equals_eval(peer_run):
    import torch
    from cellpose import models

    from segmentation.benchmark.peers.cellpose_peer import CHANNELS, TrainedCellpose
    from segmentation.benchmark.peers.common import peer_input

    config, out, rows, _, split = peer_run
    path = out / "runs" / "cellpose" / "models" / "cellpose"
    model = models.CellposeModel(pretrained_model=str(path), device=torch.device("cpu"))
    peer = TrainedCellpose(model, {}, config.data["crop_size"])
    peer.thresholds = rows["Cellpose"]["thresholds"]
    x = peer_input(split.test[0].image)
    labels, network, post = peer.predict(x)
    expected = model.eval(
        x,
        channels=CHANNELS,
        diameter=float(model.diam_mean),
        bsize=config.data["crop_size"],
        **peer.thresholds,
    )[0]
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int32 and network > 0 and post > 0


@pytest.mark.parametrize(
    ("peer", "options", "message"),
    [
        ("stardist", {"n_ray": 16}, "unknown Config2D option"),
        ("cellpose", {"n_epochs": 3}, "set by the benchmark"),
        ("cellpose", {"learning_rat": 0.1}, "unknown or set by the benchmark"),
    ],
)
def test_bad_peer_options_are_named_before_training(peer, options, message, tmp_path):
    from segmentation.benchmark.peers import load_peer
    from segmentation.benchmark.peers.common import PeerBudget
    from segmentation.datasets.synthetic import synthetic_nuclei

    samples = [synthetic_nuclei((64, 64), 4, seed=i) for i in range(2)]
    budget = PeerBudget(0.01, 1, 64, 2, 2, 1, 0)
    with pytest.raises(ValueError, match=message):
        load_peer(peer).train(samples, samples, budget, tmp_path, options)
    assert not any(tmp_path.iterdir())  # nothing was built or written
