"""segment_large's outputs: OME-Zarr labels beside an OME-Zarr image (with the nucleus size
estimated once for the whole image), and the ``segment-large`` command on an existing scheduler."""

import json

import numpy as np
import pytest
import tifffile
import zarr
from distributed import Client

from segmentation.cli import main
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.diameter import choose_diameter, estimate_diameter
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.large import segment_large


@pytest.fixture(scope="module")
def client():
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        yield c


def _ome_image(path, image: np.ndarray) -> None:
    """A one-channel OME-Zarr 0.5 image (Zarr v3), 0.25 um pixels."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": a, "type": "space", "unit": "micrometer"} for a in "yx"
    ]
    scale = [{"type": "scale", "scale": [1.0, 0.25, 0.25]}]
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {"axes": axes, "datasets": [{"path": "0", "coordinateTransformations": scale}]}
        ],
    }
    array = group.create_array("0", shape=(1, *image.shape), chunks=(1, 256, 256), dtype="uint8")
    array[:] = image[None]


def test_small_nuclei_labels_beside_an_ome_zarr_image(tmp_path, client):
    sample = synthetic_nuclei((512, 512), 500, seed=4, radius_range=(3, 5))  # ~8 px nuclei
    path = tmp_path / "small.ome.zarr"
    _ome_image(path, sample.image[:, :, 0])
    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
    result = segment_large(path, None, model, block_size=256, client=client, progress=False)

    own_scale = segment(sample.image, model, options=SegmentOptions(auto_diameter=False))
    estimate = choose_diameter(
        estimate_diameter(own_scale), 18.0
    )  # what segment() decides for the whole image
    assert estimate is not None and result.diameter == pytest.approx(estimate, rel=0.05)
    again = segment(sample.image, model, options=SegmentOptions(diameter=result.diameter))
    labels = result.labels()
    assert result.output == path / "labels" / "nuclei" / "0"
    assert labels.shape == (1, 512, 512) and labels.dtype == np.uint32
    assert dsb_score(again, labels[0].astype(np.int32)) >= 0.9  # tiny nuclei: sub-pixel grids

    attrs = json.loads((path / "labels" / "nuclei" / "zarr.json").read_text())["attributes"]
    assert attrs["ome"]["image-label"]["source"]["image"] == "../../"
    multiscale = attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["c", "y", "x"]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.25, 0.25]
    labels_group = json.loads((path / "labels" / "zarr.json").read_text())["attributes"]
    assert labels_group["ome"]["labels"] == ["nuclei"]
    assert result.table == tmp_path / "small_nuclei.csv" and result.table.is_file()
    assert not (tmp_path / "small_nuclei.parts").exists()  # removed once complete


def test_cli_runs_on_an_existing_scheduler_with_the_default_model(tmp_path, client, capsys):
    sample = synthetic_nuclei((320, 320), 60, seed=2, modality="histology")
    tifffile.imwrite(tmp_path / "he.tif", sample.image, tile=(64, 64), photometric="rgb")
    argv = [
        "segment-large", str(tmp_path / "he.tif"), "--output", str(tmp_path / "he.zarr"),
        "--scheduler", client.scheduler.address, "--block-size", "256", "--overlap", "64",
        "--no-auto-diameter", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    labels = zarr.open_array(str(tmp_path / "he.zarr"), mode="r")
    nuclei = int(labels[:].max())
    assert f"{nuclei} nuclei in 4 blocks" in printed and nuclei > 30
    rows = (tmp_path / "he.csv").read_text().splitlines()
    assert rows[0].startswith("image,label,area,centroid_y") and len(rows) == nuclei + 1
    assert main(argv) == 0  # a finished job is not run again
    assert "4 finished block(s) reused" in capsys.readouterr().out
