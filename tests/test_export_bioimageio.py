"""BioImage Model Zoo packages (``segmentation export-bioimageio``): offline validation with
``bioimageio.spec``, the TorchScript and state-dict weights against the package's test tensors
and against the toolkit's own network, the licences and post-processing named in rdf.yaml, and
the command line. No test touches the network (sockets are blocked where the validator runs)."""

from __future__ import annotations

import importlib.util
import io
import socket
import zipfile

import numpy as np
import pytest
import torch
import yaml

from segmentation.cli import main
from segmentation.export import to_bioimageio
from segmentation.inference import load_model

CARD = {
    "name": "tiny_unet",
    "data": "DSB2018 stage1_train (664 images) + BBBC039, GBM40_TCGA, KOYUNCU_FLUO",
    "licence": "CC0 1.0: DSB2018, BBBC039; no licence stated, research use: GBM40, Koyuncu",
}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails loudly."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def tiny_model(model_file):
    model = load_model(model_file, "cpu")
    model.model_card = dict(CARD)
    return model


@pytest.fixture(scope="module")
def package(tiny_model, tmp_path_factory):
    return to_bioimageio(tiny_model, tmp_path_factory.mktemp("zoo") / "tiny.zip")


def _read(package, name):
    with zipfile.ZipFile(package) as zf:
        return zf.read(name)


def _array(package, name):
    return np.load(io.BytesIO(_read(package, name)))


def _rdf(package):
    return yaml.safe_load(_read(package, "rdf.yaml"))


def _preprocess(x, steps):
    """The rdf's preprocessing (scale_range, clip) as the spec defines it, on ``(B, C, H, W)``."""
    out = x.astype(np.float32)
    for step in steps:
        kw = step["kwargs"]
        if step["id"] == "scale_range":
            assert kw["axes"] == ["channel", "y", "x"]  # per sample, channels together
            for i, one in enumerate(out):
                lo, hi = np.percentile(one, [kw["min_percentile"], kw["max_percentile"]])
                out[i] = (one - lo) / (hi - lo + kw.get("eps", 1e-6))
        elif step["id"] == "clip":
            out = np.clip(out, kw["min"], kw["max"])
        else:
            raise AssertionError(f"unexpected preprocessing {step['id']}")
    return out


def _validate(path):
    from bioimageio.spec import load_description

    return load_description(path, perform_io_checks=True).validation_summary


def test_package_validates_offline_with_bioimageio_spec(package, no_network):
    pytest.importorskip("bioimageio.spec")
    summary = _validate(package)
    # bioimageio.spec alone tops out at "valid-format"; "passed" needs bioimageio.core's run
    assert summary.status in ("valid-format", "passed"), summary.format()
    assert all(detail.status == "passed" for detail in summary.details), summary.format()
    assert summary.format_version.startswith("0.5")


def test_validation_checks_the_files_offline(package, tmp_path, no_network):
    """With io checks on, the validator hashes the package's files: a changed test output fails."""
    pytest.importorskip("bioimageio.spec")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "test_output.npy":
                data = data[:-4] + b"\0\0\0\0"
            dst.writestr(item, data)
    assert _validate(broken).status == "failed"


def test_test_input_through_torchscript_gives_test_output(package):
    rdf = _rdf(package)
    net = torch.jit.load(io.BytesIO(_read(package, "weights_torchscript.pt")), map_location="cpu")
    x = _preprocess(_array(package, "test_input.npy"), rdf["inputs"][0]["preprocessing"])
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    expected = _array(package, "test_output.npy")
    assert out.shape == expected.shape == (1, 3, *x.shape[2:])
    assert out.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_state_dict_weights_give_the_test_output(package, tmp_path):
    rdf = _rdf(package)
    entry = rdf["weights"]["pytorch_state_dict"]
    source = tmp_path / "architecture.py"
    source.write_bytes(_read(package, entry["architecture"]["source"]))
    spec = importlib.util.spec_from_file_location("zoo_architecture", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = getattr(module, entry["architecture"]["callable"])(**entry["architecture"]["kwargs"])
    state = torch.load(io.BytesIO(_read(package, entry["source"])), weights_only=True)
    net.load_state_dict(state, strict=True)
    x = _preprocess(_array(package, "test_input.npy"), rdf["inputs"][0]["preprocessing"])
    with torch.no_grad():
        out = net.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, _array(package, "test_output.npy"), atol=1e-5)


def test_torchscript_equals_the_toolkit_network_and_preprocessing(package, tiny_model):
    rdf = _rdf(package)
    net = torch.jit.load(io.BytesIO(_read(package, "weights_torchscript.pt")), map_location="cpu")
    test_input = _array(package, "test_input.npy")
    x = _preprocess(test_input, rdf["inputs"][0]["preprocessing"])
    # the zoo's preprocessing is the toolkit's normalisation
    toolkit_x = tiny_model.prepare(np.moveaxis(test_input[0], 0, 2))
    np.testing.assert_allclose(x[0], toolkit_x, atol=1e-5)
    # on the test input, and on another size (the traced graph is not tied to one shape)
    other = np.random.default_rng(0).uniform(-0.2, 1.2, (2, 3, 112, 160)).astype(np.float32)
    for batch in (x, other):
        with torch.no_grad():
            ours = net(torch.from_numpy(batch)).numpy()
        toolkit = np.stack(tiny_model.forward(torch.from_numpy(batch))[0])
        np.testing.assert_allclose(ours, toolkit, atol=1e-5)


def test_rdf_names_licences_postprocessing_and_shapes(package, tiny_model):
    rdf = _rdf(package)
    assert rdf["format_version"].startswith("0.5.") and rdf["type"] == "model"
    assert rdf["license"] == "MIT"
    assert "10.1038/s41592-019-0612-7" in [c.get("doi") for c in rdf["cite"]]
    config = rdf["config"]["segmentation"]
    licences = " ".join(s["licence"] for s in config["training_data"])
    assert "CC0" in licences and "research use" in licences
    assert len(config["training_data"]) == 4
    assert config["training_data_licences_as_stated_in_model_card"] == CARD["licence"]
    post = config["postprocessing"]
    assert post["runs_in_zoo"] is False and "watershed" in post["method"]
    assert post["thresholds"] == tiny_model.thresholds_dict()
    assert "watershed" in rdf["description"]
    axes = rdf["inputs"][0]["axes"]
    assert [a["type"] for a in axes] == ["batch", "channel", "space", "space"]
    assert len(axes[1]["channel_names"]) == 3 and axes[2]["size"]["step"] == 8  # encoder depth 3
    out_axes = rdf["outputs"][0]["axes"]
    assert out_axes[1]["channel_names"] == ["body", "border", "contact"]
    assert out_axes[2]["halo"] == 48
    readme = _read(package, "README.md").decode()
    assert "cannot run" in readme and "## Validation" in readme and "CC0" in readme
    with zipfile.ZipFile(package) as zf:
        assert {"cover.png", "weights_torchscript.pt", "architecture.py"} <= set(zf.namelist())


@pytest.mark.slow  # ~7 s: a second export; to_bioimageio itself writes the `package` fixture
def test_cli_writes_the_package(model_file, tmp_path, capsys):
    out = tmp_path / "pkg.zip"
    assert main(["export-bioimageio", str(model_file), "--output", str(out)]) == 0
    assert zipfile.is_zipfile(out) and "rdf.yaml" in zipfile.ZipFile(out).namelist()
    assert "wrote" in capsys.readouterr().out


def test_cli_refuses_bad_input_before_exporting(model_file, tmp_path, capsys):
    out = tmp_path / "pkg.zip"
    out.write_bytes(b"an earlier package")
    cases = [
        ([str(model_file), "--output", str(tmp_path / "pkg.tar")], "must end in .zip"),
        ([str(model_file), "--output", str(out)], "--overwrite"),
        ([str(tmp_path / "missing.pt"), "--output", str(tmp_path / "b.zip")], "not found"),
        ([str(model_file), "--output", str(tmp_path / "c.zip"), "--network", "x"], "main"),
    ]
    for args, message in cases:
        assert main(["export-bioimageio", *args]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "b.zip").exists() and not (tmp_path / "c.zip").exists()
    assert out.read_bytes() == b"an earlier package"
    with pytest.raises(ValueError, match=r"\.zip"):
        to_bioimageio(model_file, tmp_path / "pkg.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("network", ["main", "stained"])
def test_default_model_packages_validate(network, tmp_path, no_network):
    pytest.importorskip("bioimageio.spec")
    path = to_bioimageio("default", tmp_path / f"default_{network}.zip", network=network)
    summary = _validate(path)
    assert all(detail.status == "passed" for detail in summary.details), summary.format()
    config = _rdf(path)["config"]["segmentation"]
    assert config["stained_view"] == ("hematoxylin" if network == "stained" else "rgb")


@pytest.mark.slow
def test_zoo_runs_the_package(package, no_network):
    """bioimageio.core (when installed) runs both weight formats on the test tensors."""
    core = pytest.importorskip("bioimageio.core")
    summary = core.test_model(package, devices=["cpu"])
    assert summary.status == "passed", summary.format()
