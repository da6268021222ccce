"""The DSB2018 Kaggle layout: label images from mask files, overlaps, and the full data set."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segmentation.datasets.dsb import default_dsb_root, load_dsb, read_dsb_sample
from segmentation.datasets.io import read_image

DSB_ROOT = default_dsb_root()
needs_dsb = pytest.mark.skipif(
    not DSB_ROOT.is_dir(),
    reason=f"DSB2018 stage1_train not found at {DSB_ROOT} (set $SEGMENTATION_DSB_ROOT)",
)


def _write_sample(root, image_id, image, masks):
    """Write one image folder in the Kaggle layout; masks is a list of (file stem, bool mask)."""
    (root / image_id / "images").mkdir(parents=True)
    Image.fromarray(image).save(root / image_id / "images" / f"{image_id}.png")
    if masks is not None:
        (root / image_id / "masks").mkdir()
        for stem, mask in masks:
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                root / image_id / "masks" / f"{stem}.png"
            )


def _box(shape, y0, y1, x0, x1):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_masks_become_labels_in_sorted_file_order_and_overlaps_are_counted(tmp_path):
    shape = (10, 12)
    rgba = np.zeros(shape + (4,), np.uint8)
    rgba[..., :3], rgba[..., 3] = 40, 255
    masks = [
        ("ccc", _box(shape, 5, 9, 5, 9)),
        ("aaa", _box(shape, 0, 4, 0, 4)),
        ("bbb", _box(shape, 2, 6, 2, 6)),  # overlaps aaa on 2x2 and ccc on 1x1
    ]
    _write_sample(tmp_path, "img1", rgba, masks)
    sample, overlap = read_dsb_sample(tmp_path / "img1")
    assert sample.name == "img1" and sample.image.shape == (10, 12, 3)
    assert sample.labels.dtype == np.int32 and overlap == 4 + 1
    # aaa (label 1) keeps its shared pixels, bbb (label 2) keeps what ccc (label 3) would share
    assert sample.labels[3, 3] == 1 and sample.labels[5, 5] == 2 and sample.labels[8, 8] == 3
    assert sorted(np.unique(sample.labels)) == [0, 1, 2, 3]


def test_a_mask_fully_covered_warns_and_labels_stay_sequential(tmp_path):
    shape = (8, 8)
    masks = [("a", _box(shape, 0, 6, 0, 6)), ("b", _box(shape, 1, 3, 1, 3))]
    _write_sample(tmp_path, "img2", np.zeros(shape, np.uint8), masks)
    with pytest.warns(UserWarning, match=r"img2.*b\.png"):
        sample, overlap = read_dsb_sample(tmp_path / "img2")
    assert overlap == 4 and sample.labels.max() == 1


def test_image_without_masks_folder_has_no_labels(tmp_path):
    _write_sample(tmp_path, "test1", np.zeros((6, 6), np.uint8), None)
    sample, overlap = read_dsb_sample(tmp_path / "test1")
    assert sample.labels is None and overlap == 0


def test_mask_of_wrong_shape_is_refused_naming_the_file(tmp_path):
    _write_sample(tmp_path, "img3", np.zeros((6, 6), np.uint8), [("m", np.ones((5, 6), bool))])
    with pytest.raises(ValueError, match=r"m\.png.*\(5, 6\)"):
        read_dsb_sample(tmp_path / "img3")


def test_load_dsb_reports_only_images_with_overlaps(tmp_path):
    shape = (6, 6)
    _write_sample(tmp_path, "b_img", np.zeros(shape, np.uint8), [("x", _box(shape, 0, 2, 0, 2))])
    _write_sample(
        tmp_path,
        "a_img",
        np.zeros(shape, np.uint8),
        [("x", _box(shape, 0, 3, 0, 3)), ("y", _box(shape, 2, 4, 2, 4))],
    )
    samples, report = load_dsb(tmp_path)
    assert [s.name for s in samples] == ["a_img", "b_img"]
    assert report == {"a_img": 1}
    samples, _ = load_dsb(tmp_path, ids=["b_img"])
    assert [s.name for s in samples] == ["b_img"]
    with pytest.raises(FileNotFoundError, match="nope"):
        load_dsb(tmp_path, ids=["nope"])
    with pytest.raises(FileNotFoundError, match="SEGMENTATION_DSB_ROOT"):
        load_dsb(tmp_path / "missing")


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGMENTATION_DSB_ROOT", str(tmp_path))
    assert default_dsb_root() == tmp_path
    monkeypatch.delenv("SEGMENTATION_DSB_ROOT")
    assert default_dsb_root().parts[-4:] == ("shared", "data", "dsb2018", "stage1_train")


@pytest.mark.dsb
@pytest.mark.slow
@needs_dsb
def test_full_stage1_train_labels_match_mask_files_and_overlaps():
    samples, report = load_dsb(DSB_ROOT)
    n_mask_files = sum(1 for _ in DSB_ROOT.glob("*/masks/*.png"))
    print(
        f"\n{len(samples)} images, {n_mask_files} mask files; overlapping pixels: "
        f"{len(report)} images, {sum(report.values())} pixels: {report}"
    )
    assert len(samples) == 664
    assert all(s.labels is not None and s.labels.shape == s.image.shape[:2] for s in samples)
    assert sum(len(np.unique(s.labels)) - 1 for s in samples) == n_mask_files == 28986
    assert len(report) == 6 and sum(report.values()) == 9


@pytest.mark.dsb
@needs_dsb
def test_dsb_images_are_rgb_uint8_with_alpha_dropped():
    first = sorted(DSB_ROOT.iterdir())[0]
    image = read_image(next((first / "images").glob("*.png")))
    assert image.dtype == np.uint8 and image.shape[2] == 3
