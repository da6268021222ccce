"""Acquisition groups and the held-out-group split."""

import numpy as np
import pytest

from segmentation.datasets.groups import (
    acquisition_groups,
    group_split,
    read_group_table,
    write_group_table,
)
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.training.config import ConfigError, config_from_dict
from segmentation.training.data import split_three
from tests.paths import REPO


def _experiments():
    """Three look-alike 'experiments' of fluorescence (dim small nuclei, bright large nuclei, a
    different size) and one of histology."""
    out = []
    for i in range(6):
        s = synthetic_nuclei((96, 96), 20, seed=i, radius_range=(3, 5))
        s.image = (s.image // 4).astype(np.uint8)
        s.name = f"dim-{i}"
        out.append(s)
    for i in range(5):
        s = synthetic_nuclei((96, 96), 6, seed=10 + i, radius_range=(14, 18))
        s.name = f"bright-{i}"
        out.append(s)
    for i in range(3):
        s = synthetic_nuclei((64, 80), 8, seed=20 + i)
        s.name = f"wide-{i}"
        out.append(s)
    for i in range(4):
        s = synthetic_nuclei((96, 96), 12, seed=30 + i, modality="histology", radius_range=(9, 11))
        s.name = f"histo-{i}"
        out.append(s)
    return out


def test_groups_follow_type_size_and_appearance():
    samples = _experiments()
    groups = acquisition_groups(samples)
    by_prefix = {}
    for s in samples:
        by_prefix.setdefault(s.name.split("-")[0], set()).add(groups[s.name])
    assert all(len(ids) == 1 for ids in by_prefix.values())  # each experiment is one group
    assert len({next(iter(ids)) for ids in by_prefix.values()}) == 4  # and no two share one
    assert groups["wide-0"].startswith("fluorescence-64x80-")
    assert groups["histo-0"].startswith("histology-96x96-")


def test_group_split_holds_out_whole_groups_and_keeps_single_group_types():
    samples = _experiments()
    groups = acquisition_groups(samples)
    kept, held = group_split(samples, 0.4, seed=0, groups=groups)
    held_groups = {groups[s.name] for s in held}
    assert held and not held_groups & {groups[s.name] for s in kept}  # no group on both sides
    assert not any(s.name.startswith("histo") for s in held)  # histology has a single group
    assert sorted(s.name for s in kept + held) == sorted(s.name for s in samples)
    # a kept group is never held out
    for group in held_groups:
        _, held2 = group_split(samples, 0.4, seed=0, groups=groups, keep=[group])
        assert group not in {groups[s.name] for s in held2}
    # deterministic, and another seed may choose other groups but always whole ones
    assert [s.name for s in group_split(samples, 0.4, 0, groups)[1]] == [s.name for s in held]
    with pytest.raises(ValueError, match="test_fraction"):
        group_split(samples, 1.0)


def test_group_table_round_trip_and_errors(tmp_path):
    groups = {"b": "fluorescence-8x8-1", "a": "histology-8x8-2"}
    path = write_group_table(groups, tmp_path / "g.csv")
    assert path.read_text().splitlines()[:2] == ["name,group", "a,histology-8x8-2"]
    assert read_group_table(path) == groups
    (tmp_path / "bad.csv").write_text("x,y,z\n")
    with pytest.raises(ValueError, match="not a group table"):
        read_group_table(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError):
        read_group_table(tmp_path / "missing.csv")


def test_stored_table_covers_dsb2018_and_bbbc039():
    groups = read_group_table(REPO / "configs/groups/dsb2018_bbbc039.csv")
    assert len(groups) == 664 + 157
    assert {g.split("-")[0] for g in groups.values()} == {
        "fluorescence",
        "histology",
        "brightfield",
    }


def test_group_split_in_the_recipe(tmp_path):
    samples = _experiments()
    raw = {"family": "unet", "data": {"root": "sample", "split": "group", "test_fraction": 0.4}}
    config = config_from_dict(raw)
    train, val, test = split_three(samples, config.data, extra=[])
    assert test and val and not {s.name for s in test} & {s.name for s in train + val}
    test_groups = {s.name.split("-")[0] for s in test}
    assert not test_groups & {s.name.split("-")[0] for s in train + val}
    with pytest.raises(ConfigError, match="test_fraction"):
        config_from_dict({"family": "unet", "data": {"root": "sample", "split": "group"}})
    table = write_group_table({s.name: "fluorescence-1x1-1" for s in samples[:3]}, tmp_path / "t")
    config.data.groups = str(table)
    with pytest.raises(ValueError, match="no group for"):
        split_three(samples, config.data, extra=[])
