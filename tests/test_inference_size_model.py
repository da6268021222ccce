"""The size model: styles from a network's encoder, a ridge regression to the log diameter, stored
in the model file under its own checksum."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import load_model
from segmentation.inference.size_model import SizeModel, estimate_size, style_vector
from segmentation.modelfile import atomic_save, read_checkpoint
from segmentation.training.size_fit import fit_size_model, size_examples


def test_style_is_two_unit_length_stages_for_any_image_size(model_file):
    model = load_model(model_file, "cpu")
    for shape in [(40, 50), (256, 256), (600, 1300)]:
        chw = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
        style = style_vector(model.members, chw)
        assert style.shape == (64 + 128,)  # resnet18 cut after 3 stages: its last two widths
        np.testing.assert_allclose(np.linalg.norm(style[:64]), 1.0, rtol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(style[64:]), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        style_vector(model.members, np.zeros((64, 64), np.float32))


def test_ridge_recovers_a_linear_relation_and_reports_its_error():
    rng = np.random.default_rng(0)
    styles = rng.normal(size=(300, 6))
    truth = np.array([0.5, -0.3, 0.0, 0.2, 0.0, 0.1])
    logs = styles @ truth + np.log(20.0) + rng.normal(scale=0.01, size=300)
    owners = np.repeat(np.arange(100), 3)
    size_model = fit_size_model(styles, logs, owners)
    assert size_model.predict(np.zeros(6)) == pytest.approx(20.0, rel=0.02)
    predicted = np.log([size_model.predict(s) for s in styles])
    assert np.abs(predicted - logs).max() < 0.05
    assert size_model.fitted_on["cv_median_relative_error"] < 0.02
    assert size_model.fitted_on["images"] == 100 and size_model.fitted_on["examples"] == 300
    with pytest.raises(ValueError, match="fitted on another network"):
        size_model.predict(np.zeros(5))


def test_examples_pair_styles_with_the_scaled_diameter(model_file):
    model = load_model(model_file, "cpu")
    samples = [synthetic_nuclei((128, 128), 12, seed=i) for i in range(3)]
    styles, logs, owners = size_examples(model, samples, scales=2, zoom=2.0)
    assert styles.shape == (6, 192) and logs.shape == (6,) and owners.tolist() == [0, 0, 1, 1, 2, 2]
    from segmentation.inference.diameter import estimate_diameter

    true = np.log([estimate_diameter(s.labels) for s in samples])
    assert np.all(np.abs(logs - np.repeat(true, 2)) <= np.log(2.0) + 1e-9)  # scales in [1/2, 2]


def _with_size_model(model_file, tmp_path):
    ckpt = read_checkpoint(model_file)
    width = 192
    ckpt["size_model"] = SizeModel(
        np.zeros(width), np.full(width, 0.01), float(np.log(18.0)), {"examples": 1}
    ).to_dict()
    return atomic_save(ckpt, tmp_path / "sized.pt")


def test_a_model_file_carries_its_size_model(model_file, tmp_path):
    path = _with_size_model(model_file, tmp_path)
    model = load_model(path, "cpu")
    assert model.size_model is not None and model.size_model.fitted_on == {"examples": 1}
    chw = model.prepare(synthetic_nuclei((96, 96), 8, seed=0).image)
    estimate = estimate_size(model, chw)
    style = style_vector(model.members, chw)
    assert estimate == pytest.approx(18.0 * np.exp(0.01 * style.sum()), rel=1e-4)
    assert estimate_size(load_model(model_file, "cpu"), chw) is None  # no size model: no estimate


def test_a_changed_size_model_is_refused_as_corrupt(model_file, tmp_path):
    path = _with_size_model(model_file, tmp_path)
    ckpt = torch.load(path, weights_only=False)
    ckpt["size_model"]["bias"] = float(np.log(60.0))  # finds nuclei 3x the size: silently wrong
    torch.save(ckpt, tmp_path / "changed.pt")
    with pytest.raises(ValueError, match="corrupt"):
        read_checkpoint(tmp_path / "changed.pt")
    del ckpt["size_model_sha256"]  # dropping its checksum does not help
    torch.save(ckpt, tmp_path / "unsummed.pt")
    with pytest.raises(ValueError, match="corrupt"):
        read_checkpoint(tmp_path / "unsummed.pt")


def test_segment_reads_the_style_from_its_first_pass(model_file, tmp_path):
    # no extra encoder pass: the first pass's own encoder features give the same style
    from segmentation.inference.api import _settings
    from segmentation.inference.engine import make_job, run_network
    from segmentation.inference.options import SegmentOptions
    from segmentation.inference.size_model import style_from_sums

    model = load_model(_with_size_model(model_file, tmp_path), "cpu")
    image = synthetic_nuclei((96, 120), 8, seed=0).image
    settings = _settings(model, None, None, False, 4, SegmentOptions())
    job = make_job(model, image, settings)
    job.wants_style = True
    run_network(model, [job], settings)
    assert job.style_windows == len(job.tiles) == 1
    recorded = style_from_sums(job.style, job.style_windows)
    np.testing.assert_allclose(
        recorded, style_vector(model.members, model.prepare(image)), atol=1e-5
    )
    assert job.size_estimate(model) == pytest.approx(estimate_size(model, model.prepare(image)))
