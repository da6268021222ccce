"""Model files prove their settings unedited: ``settings_sha256`` covers the post-processing
thresholds, normalisation, configs, recipe and routes (issue 27). One changed byte of them used to
load silently (``min_size`` 20 -> 200 found 18 of 40 nuclei); older files still load as before."""

import copy
import re
import warnings

import pytest
import torch

from segmentation.inference import default_model_path, load_model
from segmentation.modelfile import atomic_save, checksum, read_checkpoint, stamp

EDITED = "corrupt or edited: the settings{where} .*do not match their checksum"


@pytest.fixture(scope="module")
def shipped():
    """The shipped default model's dict, as stored (a route for stained tissue)."""
    return torch.load(default_model_path(), map_location="cpu", weights_only=True)


def _edit(ckpt, where, key, value):
    """A deep copy of ``ckpt`` with ``thresholds[key] = value`` in ``where`` (main or a route)."""
    out = copy.deepcopy(ckpt)
    target = out if where == "main" else out["routes"][where]
    target["thresholds"][key] = value
    return out


def test_the_shipped_default_model_carries_the_settings_checksum(shipped):
    assert shipped["settings_sha256"] == checksum.settings_sha256(shipped)
    route = shipped["routes"]["stained"]
    assert route["settings_sha256"] == checksum.settings_sha256(route)
    assert checksum.has_all_checksums(shipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_checkpoint(default_model_path())  # verifies


@pytest.mark.parametrize("where", ["main", "stained"])
@pytest.mark.parametrize(("key", "value"), [("mask", 0.85), ("min_size", 200)])
def test_an_edited_threshold_is_refused_by_name(shipped, where, key, value, tmp_path):
    stored = shipped if where == "main" else shipped["routes"][where]
    assert stored["thresholds"][key] not in (None, value)  # a real change of a stored setting
    path = tmp_path / "edited.pt"
    torch.save(_edit(shipped, where, key, value), path)  # stored digest not recomputed
    named = "" if where == "main" else f" of its {where} route"
    with pytest.raises(ValueError, match=EDITED.format(where=named)) as err:
        load_model(path, "cpu")
    message = str(err.value)
    assert str(path) in message and "post-processing thresholds" in message
    assert f"python -m segmentation.modelfile.stamp --accept-settings {path}" in message


def test_one_byte_of_min_size_changed_in_the_file_is_refused(tmp_path):
    data = bytearray(default_model_path().read_bytes())
    # the pickled thresholds: 'min_size', a memo entry, then BININT1 20 (main network first)
    found = list(re.finditer(rb"min_size(?:q.|r....)K\x14", bytes(data), re.DOTALL))
    assert len(found) == 2, "expected the main network's and the route's min_size"
    data[found[0].end() - 1] = 200
    path = tmp_path / "one_byte.pt"
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=True)["thresholds"]["min_size"] == 200  # torch: silent
    with pytest.raises(ValueError, match=EDITED.format(where="")):
        load_model(path, "cpu")


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["normalization"].update(high=99.0),
        lambda c: c["recipe"]["data"].update(stained_view="hematoxylin"),
        lambda c: c["members"][0]["config"].update(encoder_depth=5),
        lambda c: c["members"][0]["unused_keys"].pop(),
        lambda c: c.update(family="fpn"),
        lambda c: c.pop("routes"),
        lambda c: c["routes"].update(gray=c["routes"].pop("stained")),
    ],
    ids=["normalization", "recipe", "config", "unused-keys", "family", "route-gone", "route-kind"],
)
def test_every_setting_inference_reads_is_covered(shipped, change, tmp_path):
    edited = copy.deepcopy(shipped)
    change(edited)
    path = tmp_path / "edited.pt"
    torch.save(edited, path)
    with pytest.raises(ValueError, match=EDITED.format(where="")):
        read_checkpoint(path)


def test_an_unchanged_copy_and_an_edited_model_card_load(shipped, tmp_path):
    path = tmp_path / "copy.pt"
    torch.save(shipped, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(path, "cpu")
    assert model.thresholds.min_size == 20 and model.routes["stained"].thresholds.mask == 0.6
    carded = copy.deepcopy(shipped)
    carded["model_card"]["date"] = "1999-01-01"  # documentation: not covered
    torch.save(carded, path)
    assert read_checkpoint(path)["model_card"]["date"] == "1999-01-01"


def _without_settings_checksum(ckpt):
    out = {k: v for k, v in ckpt.items() if k != checksum.SETTINGS_KEY}
    out["routes"] = {
        kind: {k: v for k, v in route.items() if k != checksum.SETTINGS_KEY}
        for kind, route in ckpt["routes"].items()
    }
    return out


def test_older_files_without_the_settings_checksum_load_as_before(shipped, tmp_path):
    path = tmp_path / "older.pt"
    torch.save(_without_settings_checksum(_edit(shipped, "main", "min_size", 200)), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the weights checksum is there
        assert read_checkpoint(path)["thresholds"]["min_size"] == 200  # not detectable
    # the CLI adds the settings checksum, every weight and setting kept
    assert stamp.main([str(path)]) == 0
    stamped = torch.load(path, weights_only=True)
    assert stamped["settings_sha256"] == checksum.settings_sha256(stamped)
    assert stamped["routes"]["stained"]["settings_sha256"]
    assert stamped["thresholds"]["min_size"] == 200
    for name, tensor in shipped["members"][0]["state_dict"].items():
        assert torch.equal(stamped["members"][0]["state_dict"][name], tensor), name
    assert not stamp.add_checksum(path)  # already complete: untouched
    torch.save(_edit(stamped, "main", "min_size", 20), path)
    with pytest.raises(ValueError, match=EDITED.format(where="")):
        read_checkpoint(path)  # now protected


def test_accept_settings_stamps_a_deliberate_edit_weights_still_verified(shipped, tmp_path):
    path = tmp_path / "tuned.pt"
    torch.save(_edit(shipped, "stained", "mask", 0.5), path)
    with pytest.raises(ValueError, match=EDITED.format(where=" of its stained route")):
        read_checkpoint(path)
    assert stamp.main(["--accept-settings", str(path)]) == 0
    assert read_checkpoint(path)["routes"]["stained"]["thresholds"]["mask"] == 0.5

    damaged = _edit(shipped, "main", "mask", 0.5)
    state = damaged["members"][0]["state_dict"]
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 1
    torch.save(damaged, path)
    assert stamp.main(["--accept-settings", str(path)]) == 2  # weights: still refused
    with pytest.raises(ValueError, match=r"corrupt \(checksum mismatch\)"):
        read_checkpoint(path, verify_settings=False)


def test_the_writer_stamps_new_settings_and_drops_stale_ones(shipped, tmp_path):
    edited = _edit(shipped, "stained", "min_size", 30)  # stale digests inside
    path = atomic_save(edited, tmp_path / "saved.pt")
    stored = torch.load(path, weights_only=True)
    assert stored["settings_sha256"] != shipped["settings_sha256"]  # covers the route
    assert stored["routes"]["stained"]["settings_sha256"] == checksum.settings_sha256(
        stored["routes"]["stained"]
    )
    assert read_checkpoint(path)["routes"]["stained"]["thresholds"]["min_size"] == 30
    assert checksum.settings_sha256(edited) == stored["settings_sha256"]  # as written = as read
