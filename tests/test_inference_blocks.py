"""Block decoding of large images: the same nuclei as a whole-image decode, int32 beyond 65,535."""

import numpy as np
import pytest

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.blocks import decode_in_blocks, decode_maps
from segmentation.inference.reference_nets import ReferenceFpn, ReferenceUnet
from segmentation.models.registry import get_family


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images hold the same objects, whatever their numbers."""
    if not np.array_equal(a > 0, b > 0):
        return False
    fg = a > 0
    pairs = np.unique(np.stack([a[fg], b[fg]]), axis=1)
    return pairs.shape[1] == len(np.unique(a[fg])) == len(np.unique(b[fg]))


@pytest.fixture(scope="module")
def sample():
    return synthetic_nuclei((600, 700), 400, seed=5, radius_range=(5, 20))


@pytest.mark.parametrize("name", ["unet", "fpn"])
def test_block_decode_of_oracle_maps_equals_the_whole_decode(sample, name):
    family = get_family(name)
    maps = family.oracle_raw(sample.labels)
    before = maps.copy()
    whole = family.decode(maps, family.Thresholds())
    blocks = decode_in_blocks(family, maps, family.Thresholds(), block=128)
    np.testing.assert_array_equal(maps, before)  # input not modified
    assert blocks.dtype == np.int32 and blocks.max() == len(np.unique(blocks)) - 1  # 1..N
    assert whole.max() > 300 and np.array_equal(whole > 0, blocks > 0)
    # Oracle maps are binary, so the watershed surface is flat over whole nuclei and floods in
    # tie order, which scikit-image breaks by heap position (global, not per component): a few
    # clusters are split along other, equally valid lines. Network maps have no such ties (next
    # test: identical partitions).
    assert dsb_score(whole, blocks) > 0.97


@pytest.mark.parametrize("name, net", [("unet", ReferenceUnet), ("fpn", ReferenceFpn)])
def test_segment_decodes_in_blocks_above_the_limit_with_the_same_result(sample, name, net):
    model = SegmentationModel(name, [net()], device="cpu")
    whole = segment(sample.image, model, options=SegmentOptions(decode_limit=None))
    small = SegmentOptions(decode_limit=100_000, decode_block=64)  # 600 x 700 is above it
    blocks = segment(sample.image, model, options=small)
    assert whole.max() > 200 and same_partition(whole, blocks)


def test_more_than_65535_nuclei_come_back_as_int32():
    pitch, side, n = 5, 4, 300  # 300 x 300 squares of 4 x 4 pixels, 1-pixel gaps
    labels = np.zeros((pitch * n, pitch * n), np.int32)
    ids = np.arange(1, n * n + 1, dtype=np.int32).reshape(n, n)
    for dy in range(side):
        for dx in range(side):
            labels[dy::pitch, dx::pitch] = ids
    family = get_family("unet")
    maps = family.oracle_raw(labels)
    out = decode_maps(family, maps, family.Thresholds(), limit=1_000_000, block=512)
    assert out.dtype == np.int32 and int(out.max()) == n * n == 90_000
    assert same_partition(out, labels)


def test_whole_decode_below_the_limit_and_for_instance_families(sample):
    family = get_family("unet")
    maps = family.oracle_raw(sample.labels)
    whole = family.decode(maps, family.Thresholds())
    np.testing.assert_array_equal(decode_maps(family, maps, family.Thresholds(), None, 64), whole)
    maskrcnn = get_family("maskrcnn")
    with pytest.raises(ValueError, match="cannot be decoded in blocks"):
        decode_in_blocks(maskrcnn, maps, maskrcnn.Thresholds(), 64)
