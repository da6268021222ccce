"""Exports for QuPath (GeoJSON) and Fiji (ImageJ ROI zip): exact round trips and the CLI."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from segmentation.cli import main
from segmentation.datasets.io import read_labels
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import match
from segmentation.export import (
    EXPORTS,
    from_geojson,
    label_polygons,
    parse_exports,
    to_geojson,
    to_imagej_rois,
)
from segmentation.inference.details import nucleus_table

roifile = pytest.importorskip("roifile")


def fill_rings(rings, shape):
    """Independent rasteriser: pixel centres inside the rings, even-odd (matplotlib's paths)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)  # (x, y)
    inside = np.zeros(centres.shape[0], bool)
    for ring in rings:
        inside ^= MplPath(np.asarray(ring, np.float64)).contains_points(centres)
    return inside.reshape(shape)


def geometry_rings(geometry):
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    return [ring for polygon in polygons for ring in polygon]


@pytest.fixture(scope="module")
def tricky():
    """Synthetic nuclei plus a ring-shaped label (a hole with an island of another label), a
    label in two parts, and a label whose two pixels touch only at a corner."""
    labels = synthetic_nuclei((96, 96), 12, seed=3, radius_range=(5, 9)).labels.copy()
    labels[:, 70:] = 0
    n = int(labels.max())
    labels[4:16, 74:86] = n + 1  # a square ring ...
    labels[7:13, 77:83] = 0  # ... with a hole ...
    labels[9:11, 79:81] = n + 2  # ... holding an island of another label
    labels[30:34, 74:78] = n + 3  # a label in two parts
    labels[40:43, 80:90] = n + 3
    labels[60, 75] = labels[61, 76] = n + 4  # two pixels touching at a corner: two parts
    labels[70:80, 74:84] = n + 5  # a hole that touches the outside at a corner
    labels[73:76, 77:80] = 0
    labels[76, 80] = 0
    labels[77:80, 81:84] = 0
    return labels


def test_geojson_round_trip_is_pixel_exact(tricky):
    collection = to_geojson(tricky)
    assert collection["type"] == "FeatureCollection"
    ids = np.unique(tricky[tricky > 0])
    assert [int(f["properties"]["name"]) for f in collection["features"]] == ids.tolist()
    back = from_geojson(json.loads(json.dumps(collection)), tricky.shape)
    np.testing.assert_array_equal(back, tricky)
    assert match(tricky, back, (0.5,)).at(0.5).f1 == 1.0
    for feature in collection["features"]:  # the independent rasteriser agrees, label by label
        label = int(feature["properties"]["name"])
        filled = fill_rings(geometry_rings(feature["geometry"]), tricky.shape)
        np.testing.assert_array_equal(filled, tricky == label, err_msg=f"label {label}")


def test_holes_and_parts_are_polygons_with_interior_rings_and_multipolygons(tricky):
    n = int(tricky.max())
    features = {int(f["properties"]["name"]): f for f in to_geojson(tricky)["features"]}
    ring = features[n - 4]["geometry"]
    assert ring["type"] == "Polygon" and len(ring["coordinates"]) == 2  # outer ring + hole
    assert ring["coordinates"][0][:4] == [[74, 4], [86, 4], [86, 16], [74, 16]]
    assert features[n - 3]["geometry"]["type"] == "Polygon"  # the island: a polygon of its own
    assert features[n - 2]["geometry"]["type"] == "MultiPolygon"
    assert len(features[n - 2]["geometry"]["coordinates"]) == 2
    assert features[n - 1]["geometry"]["type"] == "MultiPolygon"  # diagonal pixels: 2 parts
    corner_hole = features[n]["geometry"]
    assert corner_hole["type"] == "Polygon" and len(corner_hole["coordinates"]) == 3


def test_rings_are_closed_simple_and_wound_by_the_right_hand_rule(tricky):
    for feature in to_geojson(tricky)["features"]:
        geometry = feature["geometry"]
        polygons = (
            [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        )
        for polygon in polygons:
            for k, ring in enumerate(polygon):
                xy = np.asarray(ring)
                assert (xy[0] == xy[-1]).all() and xy.dtype.kind == "i"
                steps = np.diff(xy, axis=0)
                assert ((steps == 0).sum(axis=1) == 1).all()  # axis-aligned edges
                unit = [xy[0]]  # walk every pixel corner: a simple ring visits each one once
                for a, b in zip(xy[:-1], xy[1:], strict=True):
                    length = int(np.abs(b - a).sum())
                    unit += [a + (b - a) * t // length for t in range(1, length + 1)]
                corners = {tuple(p) for p in unit[:-1]}
                assert len(corners) == len(unit) - 1, feature["properties"]["name"]
                x, y = xy[:, 0], xy[:, 1]
                area = (x[:-1] * y[1:] - x[1:] * y[:-1]).sum() / 2
                assert area > 0 if k == 0 else area < 0  # outer counter-clockwise, holes not


def test_geojson_properties_are_what_qupath_reads(tmp_path):
    sample = synthetic_nuclei((64, 64), 6, seed=1)
    table = nucleus_table(sample.labels, sample.image)
    path = tmp_path / "img_nuclei.geojson"
    returned = to_geojson(
        sample.labels, path, table=table, classification="Tumor nucleus", offset=(100, 20)
    )
    written = json.loads(path.read_text())  # strict JSON: NaN scores were left out
    assert written == returned
    first = written["features"][0]
    props = first["properties"]
    assert props["objectType"] == "detection" and props["name"] == "1"
    assert props["classification"]["name"] == "Tumor nucleus"
    assert len(props["classification"]["color"]) == 3
    row = table.iloc[0]
    assert props["measurements"]["area"] == int(row["area"])
    assert props["measurements"]["centroid_x"] == pytest.approx(row["centroid_x"])
    assert "score" not in props["measurements"] and "label" not in props["measurements"]
    xy = np.asarray(first["geometry"]["coordinates"][0])
    assert xy[:, 0].min() == row["bbox_x0"] + 20 and xy[:, 1].min() == row["bbox_y0"] + 100
    back = from_geojson(path, sample.labels.shape, offset=(100, 20))
    np.testing.assert_array_equal(back, sample.labels)


def test_labels_are_not_modified_and_bad_labels_are_refused(tricky):
    before = tricky.copy()
    to_geojson(tricky)
    np.testing.assert_array_equal(tricky, before)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        to_geojson(np.zeros((2, 8, 8), np.int32))
    with pytest.raises(ValueError, match="integers"):
        to_geojson(np.zeros((8, 8), np.float32))
    assert to_geojson(np.zeros((8, 8), np.int32))["features"] == []


def test_imagej_zip_has_one_roi_per_nucleus_matching_its_pixels(tricky, tmp_path):
    path = tmp_path / "img_rois.zip"
    assert to_imagej_rois(tricky, path) == path
    rois = roifile.roiread(path)
    ids = np.unique(tricky[tricky > 0]).tolist()
    assert [roi.name for roi in rois] == [f"nucleus_{i:04d}" for i in ids]
    outlines = dict(label_polygons(tricky))
    for roi, label in zip(rois, ids, strict=True):
        rings = roi.coordinates(multi=True)
        filled = fill_rings(rings, tricky.shape)
        np.testing.assert_array_equal(filled, tricky == label, err_msg=roi.name)
        simple = len(outlines[label]) == 1 and len(outlines[label][0]) == 1  # a traced polygon
        assert roi.roitype == (roifile.ROI_TYPE.TRACED if simple else roifile.ROI_TYPE.RECT)
        assert roi.composite != simple
    assert sum(roi.composite for roi in rois) >= 4  # the hole, the two parts, the corners
    to_imagej_rois(tricky[:40], path)  # an existing zip is replaced, not appended to
    assert len(roifile.roiread(path)) == len(np.unique(tricky[:40])) - 1


def test_label_polygons_offset_and_parse_exports():
    labels = np.zeros((4, 4), np.uint16)
    labels[1, 2] = 3
    assert [(k, p[0][0].tolist()) for k, p in label_polygons(labels, (10, 5))] == [
        (3, [[7, 11], [8, 11], [8, 12], [7, 12]])
    ]
    assert parse_exports(" GeoJSON, imagej,geojson") == ("geojson", "imagej")
    with pytest.raises(ValueError, match="valid names: geojson, imagej"):
        parse_exports("geojson,qupath")


def test_cli_writes_both_exports(tmp_path, capsys):
    image = tmp_path / "in" / "cells.png"
    image.parent.mkdir()
    iio.imwrite(image, synthetic_nuclei((128, 128), 12, seed=5).image[..., 0])
    out = tmp_path / "out"
    argv = ["segment", str(image), "--output", str(out), "--device", "cpu", "--no-progress"]
    assert main([*argv, "--no-overlay", "--export", "geojson,imagej"]) == 0
    labels = read_labels(out / "cells_labels.tif")
    assert labels.max() > 0
    collection = json.loads((out / f"cells{EXPORTS['geojson']}").read_text())
    np.testing.assert_array_equal(from_geojson(collection, labels.shape), labels)
    assert "area" in collection["features"][0]["properties"]["measurements"]
    rois = roifile.roiread(out / f"cells{EXPORTS['imagej']}")
    assert len(rois) == len(np.unique(labels)) - 1
    assert sorted(p.name for p in out.iterdir()) == [
        "cells_labels.tif",
        "cells_nuclei.csv",
        "cells_nuclei.geojson",
        "cells_rois.zip",
    ]
    out = tmp_path / "no_table"  # --no-table: no CSV, but the GeoJSON keeps its measurements
    assert main([*argv[:3], str(out), *argv[4:], "--no-table", "--export", "geojson"]) == 0
    assert not (out / "cells_nuclei.csv").exists()
    collection = json.loads((out / "cells_nuclei.geojson").read_text())
    assert "area" in collection["features"][0]["properties"]["measurements"]


def test_cli_refuses_an_unknown_export_before_segmenting(tmp_path, capsys):
    argv = ["segment", str(tmp_path / "missing.png"), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as err:
        main([*argv, "--export", "geojson,qupath"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "unknown export 'qupath'" in message and "valid names: geojson, imagej" in message
    assert not (tmp_path / "out").exists()
