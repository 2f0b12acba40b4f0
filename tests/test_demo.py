"""The shipped pretrained models and `srredsim demo --quick`."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest


@pytest.mark.parametrize("name", ["default", "faithful"])
def test_shipped_models_load_and_match_the_paper_network(name):
    from srredsim.models import SR_REDSIM_PARAMS_64
    from srredsim.runfolder import load_run

    run = load_run(name)
    assert run.config.model.filters == 64 and run.config.model.depth == 10
    model = run.load_model()
    assert model.count_params() == SR_REDSIM_PARAMS_64
    # trained weights, not an initialisation: the output on a simulated stack has structure
    from srredsim.runtime import open_model
    from srredsim.predict import predict_stack
    from srredsim.recipes import heldout_stack

    m = open_model(name)
    stack = heldout_stack(20, size=64, index=3)
    sr = predict_stack(m.predict_fn, stack.raw, m.normalization)
    assert sr.shape == (128, 128) and np.isfinite(sr).all()
    assert np.corrcoef(sr.ravel(), stack.truth.ravel())[0, 1] > 0.8


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    from srredsim.cli import main

    out = tmp_path_factory.mktemp("demo") / "report"
    assert main(["demo", "--quick", "-o", str(out)]) == 0
    return out


def test_demo_quick_writes_the_report(quick_demo):
    for name in ("report.md", "metrics.csv", "summary.csv", "figure.png", "curves.png", "validation.txt",
                 "sr-redsim.bioimageio.zip", "example/raw_2photons.tif", "example/sr-redsim_2photons.tif"):
        assert (quick_demo / name).is_file(), name
    report = (quick_demo / "report.md").read_text()
    assert "all checks passed" in report and "## Tables" in report
    with zipfile.ZipFile(quick_demo / "sr-redsim.bioimageio.zip") as z:
        assert "rdf.yaml" in z.namelist()


def test_demo_network_beats_widefield(quick_demo):
    with open(quick_demo / "summary.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["reference"] == "truth"]
    levels = sorted({float(r["photons"]) for r in rows})
    assert len(levels) == 3
    for ph in levels:
        score = {r["method"]: float(r["psnr"]) for r in rows if float(r["photons"]) == ph}
        assert score["SR-REDSIM"] > score["widefield"] + 1.0, (ph, score)
        ssim = {r["method"]: float(r["ssim"]) for r in rows if float(r["photons"]) == ph}
        assert ssim["SR-REDSIM"] > ssim["widefield"], (ph, ssim)


def test_shipped_weights_reproduce_the_package_test_output(quick_demo, tmp_path):
    """The package exported from the shipped weights: Keras on the shipped run folder gives its
    test output (the package's own normalisation applied by srredsim)."""
    import yaml

    from srredsim.runtime import open_model

    with zipfile.ZipFile(quick_demo / "sr-redsim.bioimageio.zip") as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
        z.extractall(tmp_path)
    x = np.load(tmp_path / rdf["inputs"][0]["test_tensor"]["source"])
    y = np.load(tmp_path / rdf["outputs"][0]["test_tensor"]["source"])
    m = open_model("default", engine="keras", precision="fp32")
    from srredsim.normalization import normalize_raw

    xn = normalize_raw(x, m.normalization)  # scale_range over the whole (1, H, W, 15) tensor
    pred = m.predict_fn(xn)
    assert pred.shape == y.shape
    np.testing.assert_allclose(pred, y, atol=1e-4, rtol=0)


def test_demo_refuses_a_non_empty_folder(tmp_path, capsys):
    from srredsim.cli import main

    (tmp_path / "x.txt").write_text("keep")
    assert main(["demo", "--quick", "-o", str(tmp_path), "--no-export"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["demo", "--photons", "2,x", "-o", str(tmp_path / "new")]) == 2
