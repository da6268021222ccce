"""Training never corrupts a run folder: a second run is refused unless --resume or --overwrite,
--resume needs a last.pt of the same network, orphaned temporary files go, metrics.csv stays a
table."""

import csv
import shutil

import pytest
import torch

from segmentation.cli import main
from segmentation.training.fit import fit
from tests.paths import CONFIG_DIR
from tests.tiny_recipes import tiny_config, tiny_recipe_file

RECIPE = CONFIG_DIR / "tiny_unet.yaml"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run; tests that change it work on a copy."""
    out = tmp_path_factory.mktemp("finished")
    fit(tiny_config(RECIPE, out))
    return out


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_second_run_into_a_finished_run_is_refused_unless_overwrite(
    finished_run, tmp_path, capsys
):
    run = shutil.copytree(finished_run, tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    recipe = tiny_recipe_file(tmp_path / "tiny.yaml", run)
    before = {p: p.read_bytes() for p in (run / "model.pt", run / "member_0" / "metrics.csv")}
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--resume" in err and "--overwrite" in err
    assert all(p.read_bytes() == data for p, data in before.items())  # nothing touched

    assert main(["train", str(recipe), "--overwrite"]) == 0
    assert len(_rows(run / "member_0" / "metrics.csv")) == 1  # the new run's epoch only
    assert (run / "model.pt").read_bytes() != before[run / "model.pt"]
    assert (run / "notes.txt").read_text() == "mine"  # only the run's own files are removed


def test_resume_without_last_pt_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"--resume: .*holds no last.pt.*drop --resume"):
        fit(tiny_config(RECIPE, tmp_path), resume=True)
    assert not list(tmp_path.iterdir())  # nothing trained


def test_resume_with_another_network_names_the_changed_keys(finished_run):
    changed = tiny_config(RECIPE, finished_run, ["model.decoder_channels=[32,16,8]"])
    with pytest.raises(
        ValueError, match=r"model\.decoder_channels: \[64, 32, 16\] -> \[32, 16, 8\]"
    ):
        fit(changed, resume=True)


def test_resume_refuses_a_damaged_last_pt(finished_run, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    last = run / "member_0" / "last.pt"
    data = bytearray(last.read_bytes())
    weight = torch.load(last, weights_only=True)["members"][0]["state_dict"]
    raw = weight["encoder.layer1.0.conv1.weight"].contiguous().view(-1).view(torch.uint8)
    at = data.find(raw.numpy().tobytes())
    data[at : at + 64] = bytes(64)
    last.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt \(checksum mismatch\).*--overwrite"):
        fit(tiny_config(RECIPE, run), resume=True)


def test_orphaned_temporary_files_are_removed_at_the_next_start(finished_run, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    orphans = [run / ".model.pt.k3j_x9.tmp", run / "member_0" / ".last.pt.a1b2c3d4.tmp"]
    for path in orphans:
        path.write_bytes(b"half a checkpoint")  # a checkpoint write killed by SIGKILL
    kept = run / "member_0" / "mine.tmp"
    kept.write_text("not ours")
    fit(tiny_config(RECIPE, run), resume=True)
    assert not any(path.exists() for path in orphans)
    assert kept.exists()


def test_metrics_csv_keeps_its_columns_when_validation_skips_epochs(tmp_path):
    fit(tiny_config(RECIPE, tmp_path, ["train.epochs=2", "train.val_every=2"]))
    rows = _rows(tmp_path / "member_0" / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["val_score"] == "" and float(rows[1]["val_score"]) >= 0.0
    assert None not in rows[1]  # no value without a column


def test_one_member_of_an_ensemble_joins_the_others_run(finished_run, tmp_path):
    """train.member=1 into the folder of member 0: not a second run, no flag needed."""
    run = shutil.copytree(finished_run, tmp_path / "run")
    two = ["model.members=[{}, {}]", "train.member=1"]
    fit(tiny_config(RECIPE, run, two))
    assert (run / "member_1" / "best.pt").is_file() and (run / "member_0" / "best.pt").is_file()
    with pytest.raises(ValueError, match="already holds a training run"):
        fit(tiny_config(RECIPE, run, two))  # member 1 again: refused
