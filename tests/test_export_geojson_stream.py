"""Whole-slide GeoJSON written block by block: the same nuclei as the whole-image export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import zarr

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.export import from_geojson, to_geojson
from segmentation.export.geojson_stream import stream_geojson


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    """Synthetic nuclei on 300 x 260 (many cut by blocks of 64), plus one long nucleus wider
    than the margin and a label in two parts far apart."""
    out = synthetic_nuclei((300, 260), 60, seed=3).labels.astype(np.uint32) * 3  # gaps in ids
    out[150:154, 10:250] = 999  # 240 px long: wider than any margin below
    out[5:9, 5:9] = 1000
    out[290:295, 250:255] = 1000
    return out


def _features_by_name(collection: dict) -> dict[str, dict]:
    return {f["properties"]["name"]: f for f in collection["features"]}


@pytest.mark.parametrize("block, margin", [(64, 16), (1000, 0), (37, 0)])
def test_streamed_file_has_every_nucleus_once_exactly_as_the_whole_image_export(
    labels, tmp_path, block, margin
):
    path = tmp_path / "slide_nuclei.geojson"
    count = stream_geojson(labels, path, block_size=block, margin=margin)
    streamed = json.loads(path.read_text())
    whole = to_geojson(labels)
    assert count == len(whole["features"]) == len(np.unique(labels)) - 1
    names = [f["properties"]["name"] for f in streamed["features"]]
    assert len(names) == len(set(names))  # each nucleus written once
    assert _features_by_name(streamed) == _features_by_name(whole)  # outlines not cut
    assert np.array_equal(from_geojson(streamed, labels.shape), labels.astype(np.int32))


def test_streams_from_a_zarr_array_with_measurements_of_each_nucleus(labels, tmp_path):
    array = zarr.create_array(
        store=str(tmp_path / "labels.zarr"), shape=labels.shape, chunks=(64, 64), dtype="uint32"
    )
    array[:] = labels
    ids = np.unique(labels)[1:]
    table = pd.DataFrame({"label": ids, "area": [int((labels == i).sum()) for i in ids]})
    path = tmp_path / "slide_nuclei.geojson"
    stream_geojson(array, path, table=table, block_size=100, margin=20)
    features = _features_by_name(json.loads(path.read_text()))
    assert features == _features_by_name(to_geojson(labels, table=table))
    assert features["999"]["properties"]["measurements"] == {"area": 4 * 240}


def test_refuses_what_is_not_a_label_array(tmp_path):
    with pytest.raises(ValueError, match=r"\(H, W\) label array"):
        stream_geojson(np.zeros((2, 4, 4), np.int32), tmp_path / "x.geojson")
    with pytest.raises(ValueError, match="integers"):
        stream_geojson(np.zeros((4, 4), np.float32), tmp_path / "x.geojson")
    with pytest.raises(ValueError, match="'label' column"):
        stream_geojson(np.ones((4, 4), np.int32), tmp_path / "x.geojson", table={"area": [16]})
    assert not (tmp_path / "x.geojson").exists()
