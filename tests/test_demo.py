"""The shipped pretrained models and `srredsim demo --quick`."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest


@pytest.mark.parametrize("name", ["sim-3x5", "sim-3x3"])
def test_shipped_models_load_and_reconstruct_their_layout(name):
    from srredsim.pretrained import SHIPPED
    from srredsim.recipes import heldout_stack
    from srredsim.runfolder import load_run
    from srredsim.runtime import open_model

    run = load_run(name)
    shipped = SHIPPED[name]
    assert run.config.model.architecture == "sr_redsim"
    assert (run.config.optics.angles, run.config.optics.phases) == (shipped.angles, shipped.phases)
    assert run.config.model.in_channels == shipped.frames and run.config.training_range is not None
    # trained weights, not an initialisation: the output on a held-out stack of its layout has structure
    m = open_model(name, precision="fp32")
    stack = heldout_stack(20, size=64, index=3, phases=shipped.phases)
    sr = m.predict(stack.raw)
    assert sr.shape == (128, 128) and np.isfinite(sr).all()
    assert np.corrcoef(sr.ravel(), stack.truth.ravel())[0, 1] > 0.8


@pytest.mark.parametrize("phases", [5, 3])
def test_shipped_red_fairsim_denoises_the_classical_reconstruction_of_both_layouts(phases):
    """red-fairsim: a trained RED-Net (not an initialisation) that improves on the classical
    reconstruction it reads, for 3x5 and 3x3 stacks alike."""
    from srredsim.classical import reconstruct
    from srredsim.controls import layout_optics
    from srredsim.metrics import compare
    from srredsim.recipes import heldout_stack
    from srredsim.redfairsim import RawStackModel
    from srredsim.runfolder import load_run
    from srredsim.runtime import open_model

    run = load_run("red-fairsim")
    assert run.config.model.architecture == "red_net" and run.config.training_range is not None
    stack = heldout_stack(6, size=96, index=2, phases=phases)
    model = RawStackModel(open_model("red-fairsim", precision="fp32"), layout_optics(phases))
    sr = model.predict(stack.raw)
    classical = reconstruct(stack.raw, layout_optics(phases)).sr
    assert sr.shape == classical.shape == stack.truth.shape
    score = lambda img: compare(img, stack.truth, border=16, pixel_size_um=0.04)["psnr"]  # noqa: E731
    assert score(sr) > score(classical) + 1.0


def test_default_is_the_shipped_model_of_the_datas_layout(tmp_path, capsys):
    from srredsim.cli import main
    from srredsim.errors import SrredsimError
    from srredsim.pretrained import default_for_frames, resolve
    from srredsim.recipes import heldout_stack
    from srredsim.tiff import write_tiff

    assert resolve("default", frames=9).name == "sim-3x3" and resolve("default", frames=15).name == "sim-3x5"
    assert resolve("default").name == "sim-3x5"
    with pytest.raises(SrredsimError, match="no shipped SR-REDSIM model takes 12 frames"):
        default_for_frames(12)
    stack = heldout_stack(200, size=64, index=1, phases=3)
    write_tiff(tmp_path / "nine.tif", stack.raw, pixel_size_um=0.08)
    assert main(["predict", "default", str(tmp_path / "nine.tif"), "-o", str(tmp_path / "sr.tif"),
                 "--engine", "onnx"]) == 0
    assert "sim-3x3" in capsys.readouterr().err  # the progress line names the model that ran


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
