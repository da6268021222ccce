"""A model file may give one kind of image a network of its own (``routes``): segment() sends
stained tissue to it and every other image to the model's own network, with each network's view
and thresholds; the file stores, checks and converts the route with the model."""

import numpy as np
import pytest
import torch

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentationModel, SegmentOptions, load_model, segment
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.modelfile import (
    add_route,
    atomic_save,
    drop_unused_weights,
    half_precision,
    make_checkpoint,
    read_checkpoint,
)
from segmentation.models.registry import get_family
from tests.conftest import SMALL_UNET


def _reference(stained_view="rgb", mask=0.5):
    recipe = {"data": {"stained_view": stained_view}}
    return SegmentationModel("unet", [ReferenceUnet()], {"mask": mask}, device="cpu", recipe=recipe)


@pytest.fixture(scope="module")
def images():
    gray = synthetic_nuclei((80, 96), 12, seed=3, radius_range=(5, 9)).image[..., 0]
    stained = synthetic_nuclei((80, 96), 10, seed=4, radius_range=(5, 9), modality="histology")
    return gray, stained.image


def test_stained_tissue_goes_to_its_route_and_other_images_do_not(images):
    gray, stained = images
    main, route = _reference(), _reference("hematoxylin", mask=0.3)
    routed = SegmentationModel(
        "unet", main.members, {"mask": 0.5}, device="cpu", recipe=main.recipe,
        routes={"stained": route},
    )  # fmt: skip
    assert routed.for_image(stained) is route
    assert routed.for_image(gray[..., None].repeat(3, axis=2)) is routed
    by_route, by_main = segment(stained, route), segment(stained, main)
    assert not np.array_equal(by_route, by_main)  # the view and the thresholds differ
    np.testing.assert_array_equal(segment(stained, routed), by_route)
    np.testing.assert_array_equal(segment(gray, routed), segment(gray, main))
    assert segment(stained, routed, return_details=True)[1].network == "stained"
    assert segment(gray, routed, return_details=True)[1].network == "main"
    # a list of both kinds: each through its own network, in order
    both = segment([gray, stained, gray], routed)
    for got, want in zip(both, [segment(gray, main), by_route, segment(gray, main)], strict=True):
        np.testing.assert_array_equal(got, want)
    # asking for the view the route was not trained on keeps the model's own network
    rgb = SegmentOptions(stained_view="rgb")
    np.testing.assert_array_equal(segment(stained, routed, options=rgb), by_main)
    # thresholds given by the caller apply to whichever network segments the image
    given = SegmentOptions(thresholds={"mask": 0.5})
    np.testing.assert_array_equal(
        segment(stained, routed, options=given), segment(stained, _reference("hematoxylin"))
    )
    # a picked channel is a gray image: the model's own network
    np.testing.assert_array_equal(
        segment(stained, routed, channel=0), segment(stained, main, channel=0)
    )


def _checkpoint(seed, stained_view="rgb"):
    torch.manual_seed(seed)
    state = get_family("unet").build(SMALL_UNET).state_dict()
    return make_checkpoint(
        family="unet",
        members=[{"config": SMALL_UNET, "state_dict": state}],
        thresholds={"mask": 0.4},
        metrics={"val_score": 0.5},
        recipe={"data": {"stained_view": stained_view}},
        training_state={"epoch": 3},
    )


def test_a_route_is_stored_checked_and_loaded_with_the_model(tmp_path, images):
    _, stained = images
    main, route = _checkpoint(0), _checkpoint(1, "hematoxylin")
    path = atomic_save(add_route(main, "stained", route), tmp_path / "routed.pt")
    assert "routes" not in main  # inputs untouched
    stored = read_checkpoint(path)
    kept = stored["routes"]["stained"]
    assert kept["training_state"] is None and len(kept["weights_sha256"]) == 64
    model = load_model(path, "cpu")
    assert set(model.routes) == {"stained"}
    chosen = model.for_image(stained)
    assert chosen is model.routes["stained"] and chosen.thresholds.mask == 0.4
    for name, tensor in chosen.members[0].state_dict().items():
        torch.testing.assert_close(tensor, route["members"][0]["state_dict"][name])
    # float16 and pruning convert the route too
    small = half_precision(drop_unused_weights(stored))
    dtypes = {v.dtype for v in small["routes"]["stained"]["members"][0]["state_dict"].values()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    path16 = atomic_save(small, tmp_path / "half.pt")
    assert set(load_model(path16, "cpu").routes) == {"stained"}


def test_a_damaged_route_is_refused_by_name(tmp_path):
    path = atomic_save(add_route(_checkpoint(0), "stained", _checkpoint(1)), tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    state = ckpt["routes"]["stained"]["members"][0]["state_dict"]
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 1
    torch.save(ckpt, path)  # the stored checksum now disagrees with the route's weights
    with pytest.raises(ValueError, match="corrupt .checksum mismatch of its stained route"):
        read_checkpoint(path)
    ckpt["routes"] = {"brightfield": ckpt["routes"]["stained"]}
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="kind 'brightfield'.*newer toolkit"):
        read_checkpoint(path)


def test_add_route_names_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        add_route(_checkpoint(0), "histology", _checkpoint(1))
    with pytest.raises(ValueError, match="route must be a checkpoint dict"):
        add_route(_checkpoint(0), "stained", {"members": []})


def test_a_networks_thresholds_are_tuned_on_the_images_it_serves():
    from segmentation.training.tuning import tune_model_thresholds

    samples = [
        synthetic_nuclei((64, 80), 8, seed=s, radius_range=(5, 8), modality="histology")
        for s in range(2)
    ]
    network = _reference("hematoxylin", mask=0.9)  # far from the best mask threshold
    thresholds, metrics = tune_model_thresholds(network, samples, rounds=1)
    assert metrics["score"] > metrics["score_before"] and thresholds["mask"] < 0.9
    with pytest.raises(ValueError, match="no images to tune"):
        tune_model_thresholds(network, [])


def test_the_cli_says_which_network_segmented_each_image(tmp_path, images, capsys):
    from skimage.io import imsave

    from segmentation.cli import main

    gray, stained = images
    model = atomic_save(add_route(_checkpoint(0), "stained", _checkpoint(1)), tmp_path / "m.pt")
    imsave(tmp_path / "gray.png", gray, check_contrast=False)
    imsave(tmp_path / "stained.png", stained, check_contrast=False)
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "gray.png"), str(tmp_path / "stained.png")]
    assert main([*args, "--model", str(model), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("gray.png:") and "network" not in line for line in lines)
    assert any(
        line.startswith("stained.png:")
        and line.endswith("(the model's network for stained tissue)")
        for line in lines
    )
