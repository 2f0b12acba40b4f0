"""Microscope-matched packages (srredsim.export.matched): ``srredsim export --na --wavelength --pixel-size``.

A tiny model is exported matched to a water objective (NA 1.2, 610 nm, 65 nm pixels: cutoff 0.256
cycles per pixel against the model's 0.427) for 64 x 72 stacks, once per module; its ONNX and
SavedModel weights must give what ``srredsim predict RUN --na 1.2 --wavelength 610 --pixel-size
0.065`` gives on another stack of that size. The fast tests check the pieces (the matrices against
srredsim predict's own resampling and border, the in-graph percentiles against numpy's) and the
refusals. The DeepImageJ run is marked ``jvm`` and ``slow`` like the other JVM tests.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import make_tiny_run
from srredsim.errors import SrredsimError

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

WATER = {"na": 1.2, "wavelength_nm": 610.0, "pixel_size_um": 0.065}
WATER_FLAGS = ["--na", "1.2", "--wavelength", "610", "--pixel-size", "0.065"]
SIZE = (64, 72)  # H, W: not square, not a multiple of 16
TOL = 1e-4  # relative to the output's peak (measured: ~3e-6)


def rel_max(a: np.ndarray, ref: np.ndarray) -> float:
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    assert a.shape == ref.shape, (a.shape, ref.shape)
    return float(np.abs(a - ref).max() / np.abs(ref).max())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("run") / "tiny", depth=1, positive_biases=True)


@pytest.fixture(scope="module")
def config(run_dir):
    from srredsim.runfolder import load_run

    return load_run(run_dir).config


@pytest.fixture(scope="module")
def package(run_dir, tmp_path_factory) -> Path:
    from srredsim.cli import main

    out = tmp_path_factory.mktemp("matched") / "water.bioimageio.zip"
    rc = main(["export", str(run_dir), "--format", "bioimageio", "-o", str(out), *WATER_FLAGS,
               "--input-size", f"{SIZE[0]}x{SIZE[1]}", "-q"])
    assert rc == 0 and out.is_file()
    return out


@pytest.fixture(scope="module")
def unpacked(package, tmp_path_factory) -> Path:
    from srredsim.export.safezip import safe_extract

    return safe_extract(package, tmp_path_factory.mktemp("unpacked") / "pkg")


@pytest.fixture(scope="module")
def rdf(unpacked) -> dict:
    return yaml.safe_load((unpacked / "rdf.yaml").read_text())


# ---- the pieces, fast ----------------------------------------------------------------------------

def test_plan_resamples_to_the_models_grid(config):
    from srredsim.export.matched import plan_matched
    from srredsim.model_optics import model_grid_shape, ModelSampling, data_optics

    plan = plan_matched(config, WATER, "64x72")
    target = data_optics(config.optics, WATER, None)
    assert plan.input_size == SIZE
    assert plan.model_grid == model_grid_shape(ModelSampling.from_config(config), target, SIZE)
    assert plan.model_grid[0] < SIZE[0]  # oversampled data: fewer model pixels
    assert plan.target_cutoff == pytest.approx(2 * 1.2 / 0.61 * 0.065)
    assert plan.halo > 0 and plan.network_grid == (plan.model_grid[0] + 2 * plan.halo,
                                                   plan.model_grid[1] + 2 * plan.halo)


def test_matrices_are_srredsim_predicts_resampling_and_border(config):
    """A_h X A_wᵀ = predict's resample + mirrored border; B crops that border and resamples back."""
    from srredsim.export.matched import plan_matched
    from srredsim.predict import extend_border
    from srredsim.resample import resample, resample_back

    plan = plan_matched(config, WATER, SIZE)
    rng = np.random.default_rng(0)
    x = rng.random(SIZE)
    want = extend_border(resample(x, plan.model_grid)[..., None], plan.halo)[..., 0]
    got = plan.input_matrix(0) @ x @ plan.input_matrix(1).T
    assert got.shape == plan.network_grid
    np.testing.assert_allclose(got, want, atol=1e-5)
    y = rng.random((2 * plan.network_grid[0], 2 * plan.network_grid[1]))
    h = plan.halo
    want = resample_back(y[2 * h: 2 * (h + plan.model_grid[0]), 2 * h: 2 * (h + plan.model_grid[1])],
                         (2 * SIZE[0], 2 * SIZE[1]))
    got = plan.output_matrix(0) @ y @ plan.output_matrix(1).T
    np.testing.assert_allclose(got, want, atol=1e-5)
    # a constant stays that constant: scale_linear commutes with both
    np.testing.assert_allclose(plan.input_matrix(0).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(plan.output_matrix(1).sum(axis=1), 1.0, atol=1e-12)


def test_unet_size_multiple_padding_is_in_the_matrix():
    """U-Net: predict pads the bordered grid to a multiple of 2**levels by reflection; so does A."""
    from srredsim.config import RunConfig
    from srredsim.export.matched import plan_matched
    from srredsim.predict import extend_border

    cfg = RunConfig.from_dict({"model": {"architecture": "unet", "unet_levels": 3}})
    plan = plan_matched(cfg, WATER, 100)
    h0 = plan.model_grid[0] + 2 * plan.halo
    assert plan.network_grid[0] % 8 == 0 and plan.network_grid[0] > h0
    x = np.random.default_rng(1).random((100, 100))
    from srredsim.resample import resample

    ext = extend_border(resample(x, plan.model_grid)[..., None], plan.halo)
    pad = plan.network_grid[0] - h0
    want = np.pad(ext, ((0, pad), (0, pad), (0, 0)), mode="reflect")[..., 0]
    np.testing.assert_allclose(plan.input_matrix(0) @ x @ plan.input_matrix(1).T, want, atol=1e-5)


def test_models_own_sampling_builds_the_normal_package(config, run_dir, tmp_path):
    from srredsim.export.matched import plan_matched, same_sampling_note

    own = {"na": config.optics.na, "wavelength_nm": config.optics.wavelength_nm,
           "pixel_size_um": config.optics.pixel_size_um}
    assert plan_matched(config, own) is None
    assert plan_matched(config, {"pixel_size_um": config.optics.pixel_size_um * 1.005}) is None  # within 1 %
    assert "inside the model's trained sampling" in same_sampling_note(config, own)
    assert "normal package" in same_sampling_note(config, own)


def test_export_with_the_models_own_optics_writes_the_normal_package_and_says_so(run_dir, config, tmp_path):
    from srredsim.export.api import export_run

    own = {"na": config.optics.na, "wavelength_nm": config.optics.wavelength_nm,
           "pixel_size_um": config.optics.pixel_size_um}
    res = export_run(run_dir, "bioimageio", tmp_path / "own.bioimageio.zip", optics=own, test_size=32)
    assert len(res.notes) == 1 and "normal package" in res.notes[0] and "note" in res.summary()
    with zipfile.ZipFile(res.outputs["bioimageio"]) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
    sizes = [a["size"] for a in rdf["inputs"][0]["axes"] if a["type"] == "space"]
    assert all(isinstance(v, dict) and "step" in v for v in sizes)  # any size, as every normal package
    assert "matched" not in rdf["config"]["srredsim"] and "keras_hdf5" in rdf["weights"]


def test_percentile_layer_takes_numpys_percentiles():
    from srredsim.export.matched import _layers
    from srredsim.normalization import EPS, percentile_range

    _, Renorm = _layers()
    rng = np.random.default_rng(2)
    x = (rng.gamma(2.0, 50.0, (2, 13, 11, 3)) + 100).astype(np.float32)
    center = (2, 9, 1, 8)
    layer = Renorm(center, 0.1, 99.9, EPS)
    got = np.asarray(layer(x))
    for b in range(2):
        c = x[b, 2:11, 1:9, :]
        lo, hi = percentile_range(c, 0.1, 99.9)
        want = (x[b] - np.float32(lo)) / np.float32(hi - lo + EPS)
        np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-6)
    # the extremes (no interpolation step) too
    got = np.asarray(Renorm(center, 0.0, 100.0, EPS)(x))
    c = x[0, 2:11, 1:9, :]
    np.testing.assert_allclose(got[0], (x[0] - c.min()) / (c.max() - c.min() + EPS), rtol=1e-5, atol=1e-6)


def test_global_normalisation_graph_equals_predict(tmp_path):
    """scale_linear commutes with the resampling: the Keras graph = srredsim predict's pipeline."""
    from srredsim.export.matched import build_matched_model, matched_predict, plan_matched, predict_reference
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.models import inference_twin
    from srredsim.runfolder import load_run

    run = load_run(make_tiny_run(tmp_path / "g", depth=1, positive_biases=True, normalization={
        "mode": "global", "x_min": 90.0, "x_max": 400.0, "y_min": 0.0, "y_max": 2.0}))
    cfg = run.config
    net = inference_twin(run.load_model(), cfg.model)
    plan = plan_matched(cfg, WATER, 48)
    raw = synthetic_raw_stack(plan.target, 48, seed=4)
    got = matched_predict(build_matched_model(net, plan, cfg.normalization), raw, cfg.normalization)
    assert rel_max(got, predict_reference(net, cfg, plan, raw)) <= TOL


@pytest.mark.parametrize("argv, message", [
    (["--format", "onnx", "--na", "1.2"], "--format onnx is for srredsim predict"),
    (["--format", "savedmodel", "--na", "1.2"], "--format savedmodel is for srredsim predict"),
    (["--format", "all", "--pixel-size", "0.065"], "--format all is for srredsim predict"),
    (["--input-size", "256"], "give the microscope's --na/--wavelength/--pixel-size"),
    (["--na", "1.2", "--input-size", "12"], "must lie in 16..4096"),
    (["--na", "1.2", "--input-size", "big"], "give H or HxW"),
    (["--na", "1.2", "--phases", "3"], "the model takes 3 angles x 5 phases"),
    (["--na", "1.49", "--wavelength", "450", "--pixel-size", "0.1"], "below 0.55 only"),
])
def test_matched_export_refusals_are_one_line(run_dir, tmp_path, capsys, argv, message):
    from srredsim.cli import main

    rc = main(["export", str(run_dir), "-o", str(tmp_path / "out.zip"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_reconstruction_networks_are_refused(tmp_path):
    from srredsim.export.matched import plan_matched
    from srredsim.runfolder import load_run

    cfg = load_run(make_tiny_run(tmp_path / "r", architecture="red_net")).config
    with pytest.raises(SrredsimError, match="takes a reconstruction"):
        plan_matched(cfg, WATER)


# ---- the exported package ------------------------------------------------------------------------

def test_rdf_has_the_fixed_shape_and_the_optics(rdf, unpacked, package):
    ipt, out = rdf["inputs"][0], rdf["outputs"][0]
    space = {a["id"]: a for a in ipt["axes"] if a["type"] == "space"}
    assert space["y"]["size"] == SIZE[0] and space["x"]["size"] == SIZE[1]
    assert not any(a.get("concatenable") for a in space.values())
    assert not any("halo" in a for a in out["axes"])
    out_space = {a["id"]: a["size"] for a in out["axes"] if a["type"] == "space"}
    assert out_space == {"y": 2 * SIZE[0], "x": 2 * SIZE[1]}  # fixed: JDLL without tiling reads no reference
    assert np.load(unpacked / ipt["test_tensor"]["source"]).shape == (1, *SIZE, 15)
    assert np.load(unpacked / out["test_tensor"]["source"]).shape == (1, 2 * SIZE[0], 2 * SIZE[1], 1)
    meta = rdf["config"]["srredsim"]
    m = meta["matched"]
    assert m["input_size"] == list(SIZE)
    assert (m["optics"]["na"], m["optics"]["wavelength_nm"], m["optics"]["pixel_size_um"]) == (1.2, 610.0, 0.065)
    assert m["model_optics"]["na"] == 1.4 and m["model_grid"][0] < SIZE[0]
    # the package's own sampling is the user's microscope: srredsim predict does not resample again
    assert meta["optics"]["na"] == 1.2 and meta["pixel_size_um"] == 0.065
    assert meta["training_range"]["cutoff_cycles_per_px"] == [pytest.approx(m["cutoff_cycles_per_px"])] * 2
    assert rdf["config"]["deepimagej"]["allow_tiling"] is False
    assert "matched" in rdf["name"] and "matched" in rdf["id"] and "microscope-matched" in rdf["tags"]
    assert "exactly 72x64 pixels" in rdf["description"] and "NA 1.2, 610 nm, 65.0 nm pixels" in rdf["description"]
    assert "exactly 72x64 px: NA 1.2, 610 nm, 65 nm pixels" in ipt["description"]
    doc = (unpacked / rdf["documentation"]).read_text()
    assert doc.startswith("# Microscope-matched package") and "exactly 72 x 64 pixels" in doc
    assert sorted(rdf["weights"]) == ["onnx", "tensorflow_saved_model_bundle"]
    with zipfile.ZipFile(package) as z:  # the ONNX file carries the same metadata
        import onnx

        proto = onnx.load_from_string(z.read(rdf["weights"]["onnx"]["source"]))
    assert json.loads({p.key: p.value for p in proto.metadata_props}["srredsim"])["matched"] == m
    dims = [d.dim_value or d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", *SIZE, 15]


def test_package_engines_equal_srredsim_predict_with_those_optics(package, unpacked, rdf, run_dir, tmp_path):
    """ONNX and SavedModel weights on another stack of that size = `srredsim predict RUN --na ...`."""
    from srredsim.cli import main
    from srredsim.export.onnx_export import onnx_predict_fn
    from srredsim.export.safezip import safe_extract
    from srredsim.export.savedmodel import savedmodel_predict_fn
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.normalization import normalize_raw
    from srredsim.optics import make_optics
    from srredsim.predict import stack_to_hwc
    from srredsim.tiff import read_reference, write_tiff

    raw = synthetic_raw_stack(make_optics(**WATER), max(SIZE), seed=7)[:, :SIZE[0], :SIZE[1]]
    write_tiff(tmp_path / "raw.tif", raw, pixel_size_um=0.065)
    rc = main(["predict", str(run_dir), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "ref.tif"), *WATER_FLAGS,
               "--engine", "onnx", "--precision", "fp32", "-q"])
    assert rc == 0
    ref, info = read_reference(tmp_path / "ref.tif")
    assert info.pixel_size_um == pytest.approx(0.0325)
    x = stack_to_hwc(normalize_raw(raw, rdf_normalization(rdf)))[None]  # the RDF's scale_range
    onnx_out = onnx_predict_fn(unpacked / rdf["weights"]["onnx"]["source"])(x)[0, ..., 0]
    sm = safe_extract(unpacked / rdf["weights"]["tensorflow_saved_model_bundle"]["source"], tmp_path / "sm")
    sm_out = savedmodel_predict_fn(sm)(x)[0, ..., 0]
    for got in (onnx_out, sm_out):
        assert rel_max(got, ref) <= TOL
    assert rel_max(onnx_out, ref) > 0  # a real comparison, not the same file
    # and `srredsim predict PACKAGE` with its defaults (auto engine, the package's halo 0: run whole)
    assert main(["predict", str(package), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "pkg.tif"), "-q"]) == 0
    assert rel_max(read_reference(tmp_path / "pkg.tif")[0], ref) <= TOL


def rdf_normalization(rdf: dict):
    from srredsim.runtime.package import metadata_from_rdf

    return metadata_from_rdf(rdf)["normalization"]


def test_validate_passes_with_the_matched_row(package):
    from srredsim.export.validate import validate_package

    rows = {r.name: r for r in validate_package(package)}
    failed = {n: r.detail for n, r in rows.items() if r.status == "fail"}
    assert not failed, failed
    assert rows["matched"].status == "pass" and "fixed 72x64 input" in rows["matched"].detail
    for name in ("spec", "core.onnx", "core.tensorflow_saved_model_bundle", "parity.onnx~savedmodel",
                 "dij.onnx.opset", "dij.tf.signature"):
        assert rows[name].status == "pass", (name, rows[name].detail)


def test_matched_row_fails_on_a_package_made_parameterized(unpacked, rdf, tmp_path):
    """A matched graph declared with min/step sizes would be run at other sizes: the lint says so."""
    from srredsim.export.matched import validate_rows

    broken = json.loads(json.dumps(rdf))
    for a in broken["inputs"][0]["axes"]:
        if a["type"] == "space":
            a["size"] = {"min": 32, "step": 16}
    rows = validate_rows(broken, unpacked)
    assert [r.status for r in rows] == ["fail"] and "not fixed at 64/72" in rows[0].detail
    assert validate_rows({"config": {"srredsim": {"halo": 4}}}, unpacked) == []  # a normal package: no row


# ---- DeepImageJ's own code and the JVM engines ---------------------------------------------------

def _jvm_missing() -> str | None:
    """Why `validate --jvm --deepimagej` cannot run here (as tests/export/test_jvm.py and
    tests/test_deepimagej.py decide), or None."""
    from conftest import deepimagej_missing, tools_missing

    return tools_missing() or deepimagej_missing()


JVM_MISSING = _jvm_missing()


@pytest.mark.jvm
@pytest.mark.slow
@pytest.mark.skipif(JVM_MISSING is not None, reason=f"JVM harness or DeepImageJ unavailable: {JVM_MISSING}")
def test_validate_jvm_deepimagej_on_a_matched_package(package, tmp_path):
    """`srredsim validate PKG --jvm --deepimagej`: TF Java 2.10.1 and ONNX Runtime Java run the graph
    (TopK, MatMul), DeepImageJ's own code gives the package's result."""
    from srredsim.cli import main

    report = tmp_path / "report.json"
    rc = main(["validate", str(package), "--jvm", "--deepimagej", "-o", str(report), "-q"])
    rows = {r["name"]: r for r in json.loads(report.read_text())}
    assert rc == 0, [(r["name"], r["detail"]) for r in rows.values() if r["status"] == "fail"]
    for name in ("matched", "jvm.onnx", "jvm.tensorflow_saved_model_bundle", "dij.onnx",
                 "dij.tensorflow_saved_model_bundle", "dij.fiji_macro", "agree.core_blocks"):
        assert rows[name]["status"] == "pass", (name, rows[name]["detail"])
