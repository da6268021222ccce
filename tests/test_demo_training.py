"""`segmentation demo --train` shows its training progress."""

import csv
import sys

from tests.tiny_recipes import tiny_recipe_file


def test_demo_training_shows_progress_and_replaces_its_last_run(tmp_path, capsys, monkeypatch):
    from segmentation.cli_demo import train_demo_model

    out = tmp_path / "model"
    (out / "member_0").mkdir(parents=True)  # an earlier demo run
    (out / "member_0" / "metrics.csv").write_text("member,epoch\n0,1\n0,2\n0,3\n")
    recipe = tiny_recipe_file(tmp_path / "demo.yaml", out, ["train.epochs=2"])
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    path = train_demo_model(out, recipe=recipe)
    captured = capsys.readouterr()
    assert captured.out.startswith("training demo.yaml on sample (cpu): 2 epochs of 4 crops")
    assert "member 0 epoch 1/2" in captured.out and "member 0 epoch 2/2" in captured.out
    # a tqdm bar over each epoch's steps (how far it got before closing depends on the refresh
    # interval, so only its start is checked)
    assert "member 0 epoch 1/2:   0%" in captured.err and "member 0 epoch 2/2:" in captured.err
    assert path == out / "model.pt" and path.is_file()
    with (out / "member_0" / "metrics.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2  # this run's epochs only
