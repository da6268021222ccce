"""Model files prove they are whole: weights checksums written and verified, and files that are
not model files (random bytes, empty, YAML, a folder) refused with the toolkit's own message."""

import random
import warnings

import pytest
import torch

from segmentation.inference import default_model_path, load_model
from segmentation.modelfile import atomic_save, checksum, make_checkpoint, read_checkpoint, stamp
from segmentation.models.registry import get_family
from segmentation.training.fit import fit
from tests.paths import CONFIG_DIR
from tests.tiny_recipes import tiny_config

SMALL_UNET = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}


@pytest.fixture(scope="module")
def small_checkpoint():
    torch.manual_seed(0)
    net = get_family("unet").build(SMALL_UNET)
    return make_checkpoint(
        family="unet",
        members=[{"config": SMALL_UNET, "state_dict": net.state_dict()}],
        thresholds={},
        metrics={},
        recipe={},
    )


def change_64_weight_bytes(path, ckpt, name="encoder.layer1.0.conv1.weight"):
    """Overwrite 64 bytes inside the stored tensor ``name`` (same file size)."""
    data = bytearray(path.read_bytes())
    raw = ckpt["members"][0]["state_dict"][name].contiguous().view(-1).view(torch.uint8)
    at = data.find(raw.numpy().tobytes())
    assert at > 0, "tensor bytes not found in the file"
    data[at + 64 : at + 128] = bytes(255 - b for b in data[at + 64 : at + 128])
    size = path.stat().st_size
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


def test_a_file_with_64_bytes_changed_is_refused_as_corrupt(small_checkpoint, tmp_path):
    path = atomic_save(small_checkpoint, tmp_path / "model.pt")
    load_model(path, "cpu")  # whole: loads
    change_64_weight_bytes(path, small_checkpoint)
    # torch itself reads the damaged weights without complaint
    damaged = torch.load(path, weights_only=True)["members"][0]["state_dict"]
    assert not torch.equal(
        damaged["encoder.layer1.0.conv1.weight"],
        small_checkpoint["members"][0]["state_dict"]["encoder.layer1.0.conv1.weight"],
    )
    message = rf"model file '{path}' is corrupt \(checksum mismatch\): re-download or retrain it"
    with pytest.raises(ValueError, match=message):
        load_model(path, "cpu")


def test_checksum_is_canonical(small_checkpoint):
    members = small_checkpoint["members"]
    digest = checksum.weights_sha256(members)
    reordered = [{"state_dict": dict(reversed(list(members[0]["state_dict"].items())))}]
    assert checksum.weights_sha256(reordered) == digest
    changed = {k: v.clone() for k, v in members[0]["state_dict"].items()}
    changed["decoder.blocks.0.conv1.0.weight"].view(-1)[0] += 1
    assert checksum.weights_sha256([{"state_dict": changed}]) != digest
    as_half = {k: (v.half() if v.is_floating_point() else v) for k, v in changed.items()}
    assert checksum.weights_sha256([{"state_dict": as_half}]) != digest


def test_the_trainer_writes_checksums(tmp_path):
    fit(tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path))
    model = torch.load(tmp_path / "model.pt", weights_only=True)
    assert model["weights_sha256"] == checksum.weights_sha256(model["members"])
    last = torch.load(tmp_path / "member_0" / "last.pt", weights_only=True)
    assert last["weights_sha256"] == checksum.weights_sha256(last["members"])
    assert last["training_state_sha256"] == checksum.state_sha256(last["training_state"])
    read_checkpoint(tmp_path / "member_0" / "last.pt")  # verifies


def test_the_shipped_default_model_carries_a_verified_checksum():
    raw = torch.load(default_model_path(), weights_only=True)
    assert raw["weights_sha256"] == checksum.weights_sha256(raw["members"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no checksum" warning
        read_checkpoint(default_model_path())


def test_older_files_without_checksum_load_with_one_warning(small_checkpoint, tmp_path):
    path = tmp_path / "old.pt"
    torch.save(small_checkpoint, path)  # as written before checksums existed
    with pytest.warns(UserWarning, match="has no checksum.*segmentation.modelfile.stamp"):
        load_model(path, "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(path, "cpu")  # once per file and process

    assert stamp.main([str(path)]) == 0  # adds it, weights bit-identical
    after = torch.load(path, weights_only=True)
    assert after["weights_sha256"] == checksum.weights_sha256(small_checkpoint["members"])
    for name, value in small_checkpoint["members"][0]["state_dict"].items():
        assert torch.equal(after["members"][0]["state_dict"][name], value), name
    assert not stamp.add_checksum(path)  # already there: untouched


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (random.Random(0).randbytes(2048), "not a torch.save archive"),
        (b"", "empty"),
        (b"family: unet\nmodel: {encoder: resnet18}\n", "text file, starting 'family: unet'"),
    ],
    ids=["random-bytes", "empty", "yaml"],
)
def test_files_that_are_not_model_files_get_the_toolkits_message(content, why, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_model(path, "cpu")
    message = str(err.value)
    assert "is not a model file written by `segmentation train`" in message and why in message
    assert str(path) in message and "weights_only" not in message and "Unpickl" not in message


def test_a_truncated_file_or_a_folder_is_named(small_checkpoint, tmp_path):
    path = atomic_save(small_checkpoint, tmp_path / "model.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="is corrupt .*re-download or retrain it") as err:
        load_model(path, "cpu")
    assert "PytorchStreamReader" not in str(err.value)
    with pytest.raises(ValueError, match="is a folder; the model file of a run is its model.pt"):
        load_model(tmp_path, "cpu")
