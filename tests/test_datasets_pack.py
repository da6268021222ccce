"""The packed cache: exact round trip, gray compaction, and the `pack` subcommand."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from segmentation.datasets import cli_pack
from segmentation.datasets.io import write_labels
from segmentation.datasets.pack import load_packed, pack_samples
from segmentation.datasets.sample_type import Sample

RNG = np.random.default_rng(5)


def _samples():
    gray = RNG.integers(0, 256, (20, 30, 1), dtype=np.uint8)
    return [
        Sample(
            "rgb8",
            RNG.integers(0, 256, (16, 12, 3), dtype=np.uint8),
            RNG.integers(0, 9, (16, 12)).astype(np.int32),
        ),
        Sample(
            "grayrgb", np.repeat(gray, 3, axis=2), RNG.integers(0, 70000, (20, 30)).astype(np.int32)
        ),
        Sample("gray16", RNG.integers(0, 65536, (7, 5, 1), dtype=np.uint16), None),
        Sample(
            "rgb16", RNG.integers(0, 65536, (9, 4, 3), dtype=np.uint16), np.zeros((9, 4), np.int32)
        ),
    ]


def _assert_same(a: Sample, b: Sample):
    assert a.name == b.name
    assert a.image.dtype == b.image.dtype and a.image.shape == b.image.shape
    np.testing.assert_array_equal(a.image, b.image)
    if a.labels is None:
        assert b.labels is None
    else:
        assert b.labels.dtype == np.int32
        np.testing.assert_array_equal(a.labels, b.labels)


def test_round_trip_is_exact(tmp_path):
    samples = _samples()
    path = pack_samples(samples, tmp_path / "cache" / "data")
    assert path.name == "data.npz" and path.is_file()
    for a, b in zip(samples, load_packed(path, restore_channels=True), strict=True):
        _assert_same(a, b)


def test_gray_rgb_is_stored_and_loaded_as_one_channel(tmp_path):
    samples = _samples()
    loaded = load_packed(pack_samples(samples, tmp_path / "d.npz"))
    assert loaded[1].image.shape == (20, 30, 1)
    np.testing.assert_array_equal(loaded[1].image[..., 0], samples[1].image[..., 0])
    assert loaded[0].image.shape == (16, 12, 3)  # real colour stays colour


def test_inputs_are_not_modified(tmp_path):
    samples = _samples()
    copies = [(s.image.copy(), None if s.labels is None else s.labels.copy()) for s in samples]
    pack_samples(samples, tmp_path / "d.npz")
    for s, (image, labels) in zip(samples, copies, strict=True):
        np.testing.assert_array_equal(s.image, image)
        if labels is not None:
            np.testing.assert_array_equal(s.labels, labels)


def test_bad_samples_and_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        pack_samples([], tmp_path / "x.npz")
    with pytest.raises(ValueError, match="unique"):
        pack_samples([_samples()[0], _samples()[0]], tmp_path / "x.npz")
    bad = Sample("f", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="uint8/uint16"):
        pack_samples([bad], tmp_path / "x.npz")
    mismatch = Sample("m", np.zeros((4, 4, 1), np.uint8), np.zeros((4, 5), np.int32))
    with pytest.raises(ValueError, match="shape"):
        pack_samples([mismatch], tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="segmentation pack"):
        load_packed(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="pack format"):
        load_packed(tmp_path / "other.npz")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="segmentation")
    cli_pack.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_pack_subcommand_on_a_dsb_layout(tmp_path, capsys):
    root = tmp_path / "stage1"
    for name in ("id1", "id2"):
        (root / name / "images").mkdir(parents=True)
        (root / name / "masks").mkdir()
        Image.fromarray(np.full((6, 6, 4), 50, np.uint8)).save(
            root / name / "images" / f"{name}.png"
        )
        mask = np.zeros((6, 6), np.uint8)
        mask[1:3, 1:3] = 255
        Image.fromarray(mask).save(root / name / "masks" / "m1.png")
    args = _parse(["pack", str(root), "--output", str(tmp_path / "out.npz"), "--quiet"])
    assert args.func(args) == 0
    assert "packed 2 images (2 labelled objects)" in capsys.readouterr().out
    loaded = load_packed(tmp_path / "out.npz")
    assert [s.name for s in loaded] == ["id1", "id2"]
    assert loaded[0].image.shape == (6, 6, 1) and loaded[0].labels.sum() == 4


def test_pack_subcommand_on_image_and_label_folders(tmp_path):
    (tmp_path / "data" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "data" / "images" / "a.png")
    write_labels(tmp_path / "data" / "labels" / "a.png", np.eye(5, dtype=np.int32))
    args = _parse(["pack", str(tmp_path / "data"), "-o", str(tmp_path / "f.npz"), "-q"])
    assert args.func(args) == 0
    (sample,) = load_packed(tmp_path / "f.npz")
    np.testing.assert_array_equal(sample.labels, np.eye(5))


def test_pack_subcommand_refuses_an_unknown_layout(tmp_path):
    (tmp_path / "loose").mkdir()
    args = _parse(["pack", str(tmp_path / "loose"), "-o", str(tmp_path / "f.npz")])
    with pytest.raises(ValueError, match="--labels"):
        args.func(args)


def test_webp_codec_is_compact_normalised_and_keeps_labels_and_colour_order(tmp_path):
    from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW, normalize_image
    from segmentation.datasets.synthetic import synthetic_nuclei

    fluo = synthetic_nuclei((96, 128), 12, seed=1)
    fluo16 = Sample("fluo16", fluo.image.astype(np.uint16) * 16, fluo.labels)  # 12-bit range
    histo = synthetic_nuclei((96, 96), 10, seed=2, modality="histology")
    red = np.zeros((40, 40, 3), np.uint8)  # smooth red-to-orange ramp
    red[..., 0] = 220
    red[..., 1] = np.linspace(0, 120, 40, dtype=np.uint8)[None, :]
    red[..., 2] = 20
    samples = [fluo16, histo, Sample("red", red, np.zeros((40, 40), np.int32))]
    lossless = pack_samples(samples, tmp_path / "png.npz")
    compact = pack_samples(samples, tmp_path / "webp.npz", codec="webp")
    assert compact.stat().st_size < lossless.stat().st_size / 2
    for a, b in zip(samples, load_packed(compact), strict=True):
        assert b.image.dtype == np.uint8 and b.image.shape[:2] == a.image.shape[:2]
        np.testing.assert_array_equal(b.labels, a.labels)  # labels stay lossless
        # normalising the stored image gives back the original's normalised values, closely
        error = np.abs(normalize_image(b.image) - normalize_image(a.image))
        assert error.mean() < 0.02 * (CLIP_HIGH - CLIP_LOW)
    red_back = load_packed(compact)[2].image
    assert red_back[..., 0].mean() > red_back[..., 2].mean() + 100  # R and B not swapped
    with pytest.raises(ValueError, match="codec"):
        pack_samples(samples, tmp_path / "x.npz", codec="jpeg")


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 4, b"PK\x03\x04" + bytes(200), b""],
    ids=["random-bytes", "broken-zip", "empty"],
)
def test_a_garbage_npz_is_named_with_the_fix(content, tmp_path):
    path = tmp_path / "cache.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not a packed data set written by `segmentation pack`"):
        load_packed(path)


def test_training_on_a_garbage_npz_names_it(tmp_path):
    from segmentation.training.config import load_config
    from segmentation.training.fit import fit

    path = tmp_path / "cache.npz"
    path.write_bytes(bytes(range(256)) * 4)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"family: unet\ndata: {{root: {path}}}\ntrain: {{output: {tmp_path / 'run'}}}\n"
    )
    with pytest.raises(ValueError, match=rf"{path} is not a packed data set.*segmentation pack"):
        fit(load_config(recipe))
