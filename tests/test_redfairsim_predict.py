"""RED-fairSIM at prediction time: same-grid (scale 1) models in the runtime and the tiling, and
`srredsim predict` on raw stacks (classical reconstruction + RED-Net) and on reconstructed images."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_tiny_run
from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError

KERAS = ("--engine", "keras", "--precision", "fp32")  # no engine measurement in these tests


@pytest.fixture(scope="module")
def red_run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("redfairsim") / "red", architecture="red_net", positive_biases=True)


@pytest.fixture(scope="module")
def red(red_run):
    from srredsim.runtime import open_model

    with open_model(red_run, engine="keras", precision="fp32") as m:
        yield m


def _main(capsys, *argv):
    from srredsim.cli import main

    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _raw(phases: int, seed: int = 1, size: int = 64) -> np.ndarray:
    from srredsim.export.testdata import synthetic_raw_stack

    return synthetic_raw_stack(OpticsConfig(phases=phases), size, seed=seed)


# ---- runtime and tiling ------------------------------------------------------------------------
def test_a_red_net_handle_keeps_the_size_tiled_or_not(red):
    from srredsim.export.testdata import synthetic_reconstruction
    from srredsim.predict import count_tiles, predict_stack

    assert (red.scale, red.frames, red.takes_raw) == (1, 1, False)
    image = synthetic_reconstruction(OpticsConfig(), 160, seed=2)[0, :, :150]  # not square
    whole = red.predict(image[None], tile=0)
    assert whole.shape == image.shape and whole.std() > 0
    assert count_tiles(image.shape, 56, red.halo) > 4
    tiled = red.predict(image[None], tile=56, batch_size=3)
    assert tiled.shape == image.shape
    assert np.abs(tiled - whole).max() < 1e-4 * max(1.0, float(np.abs(whole).max()))
    # the same through predict_stack with the engine's function; a 2-D image is taken as (1, H, W)
    direct = predict_stack(red.predict_fn, image[None], red.normalization, tile=56, halo=red.halo, scale=1)
    np.testing.assert_allclose(direct, tiled, atol=1e-6)
    np.testing.assert_allclose(red.predict(image), whole, atol=1e-6)
    with pytest.raises(SrredsimError, match="predict_raw"):
        red.predict(_raw(5))


def test_a_network_whose_output_contradicts_its_scale_is_a_clear_error(red):
    from srredsim.predict import predict_normalized

    x = np.zeros((40, 40, 1), np.float32)
    with pytest.raises(SrredsimError, match="metadata says scale 2"):
        predict_normalized(red.predict_fn, x, halo=red.halo, scale=2)
    with pytest.raises(SrredsimError, match="scale must be 1 or 2"):
        predict_normalized(red.predict_fn, x, scale=3)


def test_the_test_input_of_a_red_net_is_an_sr_image(red_run):
    from srredsim.export.testdata import synthetic_reconstruction
    from srredsim.normalization import normalize_raw
    from srredsim.runfolder import load_run
    from srredsim.runtime.handle import TEST_SIZE, TIMING_SIZE, _RunSource

    source = _RunSource(load_run(red_run), "best")
    batch = source.test_batch()
    assert batch.shape == (1, TEST_SIZE, TEST_SIZE, 1)
    expected = normalize_raw(synthetic_reconstruction(OpticsConfig(), TEST_SIZE, seed=0)[0],
                             source.fields["normalization"])
    np.testing.assert_array_equal(batch[0, ..., 0], expected)
    assert source.timing_batch().shape == (1, TIMING_SIZE, TIMING_SIZE, 1)


def test_scale_of_exported_artifacts(red_run, red):
    """From the srredsim metadata (its "scale", else its network configuration, else 2) and, for a
    package made elsewhere, from its output axes; a red_net's ONNX conversion runs as scale 1."""
    from srredsim.config import ModelConfig
    from srredsim.runfolder import load_run
    from srredsim.runtime import conversions, model_io, open_model
    from srredsim.runtime.handle import artifact_scale
    from srredsim.runtime.package import axes_scale, metadata_from_rdf

    assert artifact_scale({"scale": 1}) == 1 and artifact_scale({}) == 2
    assert artifact_scale({"model": ModelConfig(architecture="red_net", in_channels=1)}) == 1
    with pytest.raises(SrredsimError, match="4x its input"):
        artifact_scale({"scale": 4})

    def rdf(in_scale, out_scale, halo=32):
        space = lambda i, **kw: {"type": "space", "id": i, **kw}  # noqa: E731
        return {"inputs": [{"id": "raw", "axes": [{"type": "batch"}, space("y", scale=in_scale),
                                                  space("x", scale=in_scale),
                                                  {"type": "channel", "channel_names": ["image"]}]}],
                "outputs": [{"id": "sr", "axes": [{"type": "batch"}, space("y", scale=out_scale, halo=halo,
                                                                         size={"tensor_id": "raw", "axis_id": "y"}),
                                                  space("x", scale=out_scale, halo=halo,
                                                        size={"tensor_id": "raw", "axis_id": "x"})]}]}

    assert axes_scale(rdf(4.0, 2.0)) == 2 and axes_scale(rdf(1.0, 1.0)) == 1 and axes_scale(rdf(None, None)) == 1
    assert axes_scale({"outputs": [{"axes": "byxc", "shape": {"reference_tensor": "raw", "scale": [1, 2, 2, 1]}}]}) == 2
    assert axes_scale({"outputs": [{"axes": [{"type": "batch"}]}]}) is None
    meta = metadata_from_rdf(rdf(2.0, 2.0))
    assert (meta["scale"], meta["halo"]) == (1, 32)  # the output's halo is in input pixels at scale 1
    assert metadata_from_rdf(rdf(4.0, 2.0))["halo"] == 16

    assert model_io(red_run) == (1, 1)
    onnx_file = conversions.cached_onnx(load_run(red_run))  # metadata of the run's config: a red_net
    image = np.random.default_rng(0).gamma(2.0, 50.0, (1, 72, 64)).astype(np.float32)
    with open_model(onnx_file, engine="onnx") as m:
        assert (m.kind, m.scale, m.frames) == ("ONNX file", 1, 1)
        np.testing.assert_allclose(m.predict(image, tile=48), red.predict(image), atol=1e-4)


# ---- srredsim predict ----------------------------------------------------------------------------
@pytest.mark.parametrize("phases", [5, 3])
def test_predict_a_raw_stack_runs_the_classical_step_then_the_network(red_run, red, tmp_path, capsys, phases):
    from srredsim.frameorder import from_angle_major
    from srredsim.redfairsim import network_input
    from srredsim.tiff import read_reference, write_tiff

    raw = _raw(phases)
    write_tiff(tmp_path / "raw.tif", raw, pixel_size_um=0.08)
    code, out, err = _main(capsys, "predict", red_run, tmp_path / "raw.tif", "-o", tmp_path / "sr.tif", *KERAS)
    assert code == 0, err
    got, meta = read_reference(tmp_path / "sr.tif")
    # by hand: the classical reconstruction with the data's optics (3 x phases, from the frame count), then the net
    recon, params = network_input(raw, OpticsConfig(phases=phases))
    expected = red.predict(recon[None])
    assert got.shape == recon.shape == (128, 128) and meta.pixel_size_um == pytest.approx(0.04)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected - recon).max() > 1e-3  # the network did something: not the reconstruction itself
    assert "warning" not in err
    line = out.strip()
    assert len(line.splitlines()) == 1 and f"classical reconstruction + RED-Net (3x{phases}, NA 1.4" in line
    assert "pattern period 23" in line and "modulation 0." in line  # synthetic pattern: 234 nm, m 0.8
    # phase-major frames: the check says so, and --order reads them
    write_tiff(tmp_path / "pm.tif", from_angle_major(raw, 3, phases, "phase-major"), pixel_size_um=0.08)
    code, out, err = _main(capsys, "predict", red_run, tmp_path / "pm.tif", "-o", tmp_path / "pm_sr.tif",
                           "--order", "phase-major", "--strict", *KERAS)
    assert code == 0, err
    np.testing.assert_allclose(read_reference(tmp_path / "pm_sr.tif")[0], expected, atol=1e-5)


def test_predict_takes_the_optics_flags_and_the_layout_flags(red_run, red, tmp_path, capsys):
    from srredsim.optics import make_optics
    from srredsim.redfairsim import predict_raw
    from srredsim.tiff import read_reference, write_tiff

    raw = _raw(3, seed=4)
    write_tiff(tmp_path / "raw.tif", raw)  # no pixel size in the file
    code, out, err = _main(capsys, "predict", red_run, tmp_path / "raw.tif", "-o", tmp_path / "a.tif",
                           "--pixel-size", "0.075", "--wavelength", "510", "--angles", "3", *KERAS)
    assert code == 0, err
    # by hand with those optics (the tiny model's trained sampling is its own optics' alone, so this
    # reconstruction is also resampled to it: predict_raw, tested below)
    res = predict_raw(red, raw, make_optics(phases=3, pixel_size_um=0.075, wavelength_nm=510))
    got, meta = read_reference(tmp_path / "a.tif")
    np.testing.assert_allclose(got, res.image, atol=1e-5)
    assert meta.pixel_size_um == pytest.approx(0.0375) and "510 nm, 75.0 nm pixels; optics given" in out
    code, out, _ = _main(capsys, "predict", red_run, tmp_path / "raw.tif", "-o", tmp_path / "b.tif", *KERAS)
    assert code == 0 and "no optics given: the model's" in out
    assert read_reference(tmp_path / "b.tif")[1].pixel_size_um == pytest.approx(0.04)


def test_predict_resamples_a_reconstruction_outside_the_trained_sampling(red_run, red, tmp_path, capsys):
    """A water objective (NA 1.2, 610 nm, 65 nm pixels: 0.26 cycles per raw pixel) lies far outside
    the span the RED-Net was trained on: its reconstruction is resampled to the model's sampling,
    denoised there and resampled back, and the result line says so; inside the span nothing is
    resampled (the other tests)."""
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.model_optics import cutoff_per_pixel, model_grid_shape
    from srredsim.optics import make_optics
    from srredsim.redfairsim import network_input, predict_raw
    from srredsim.resample import resample
    from srredsim.tiff import read_reference, write_tiff

    water = make_optics(na=1.2, wavelength_nm=610, pixel_size_um=0.065, refractive_index=1.33, phases=5)
    assert not red.sampling.knows(cutoff_per_pixel(water))
    raw = synthetic_raw_stack(water, 64, seed=6)  # taken with that objective
    recon, _ = network_input(raw, water)
    grid = model_grid_shape(red.sampling, water, recon.shape)
    assert grid[0] < 0.8 * recon.shape[0]  # fewer, coarser pixels: structures at the trained frequency
    expected = resample(red.predict(resample(recon[None], grid))[None], recon.shape)[0]
    res = predict_raw(red, raw, water)
    np.testing.assert_allclose(res.image, expected, atol=1e-5)
    assert res.image.shape == recon.shape and "resampled 128x128 -> " in res.note
    assert np.abs(res.image - red.predict(recon[None])).max() > 1e-3  # not what the unresampled net gives

    def predict_water(name: str, image: np.ndarray, pixel_size_um: float) -> str:
        """`srredsim predict` on ``image`` saved as NAME.tif with the water objective's flags; checks
        the result equals ``expected`` and returns the command's stdout."""
        write_tiff(tmp_path / f"{name}.tif", image, pixel_size_um=pixel_size_um)
        code, out, err = _main(capsys, "predict", red_run, tmp_path / f"{name}.tif", "-o", tmp_path / f"{name}_sr.tif",
                               "--na", "1.2", "--wavelength", "610", "--refractive-index", "1.33", *KERAS)
        assert code == 0, err
        np.testing.assert_allclose(read_reference(tmp_path / f"{name}_sr.tif")[0], expected, atol=1e-5)
        return out

    out = predict_water("raw", raw, 0.065)
    assert "reconstruction resampled 128x128 -> " in out and "to the RED-Net's sampling" in out
    # the same microscope's reconstruction given as an image (e.g. fairSIM's) with the flags that
    # name the microscope: resampled the same way; without them: the network alone
    out = predict_water("rec", recon, 0.0325)
    assert "RED-Net on a reconstructed image" in out and "NA 1.2, 610 nm, 65.0 nm pixels" in out
    assert "reconstruction resampled 128x128 -> " in out
    code, out, _ = _main(capsys, "predict", red_run, tmp_path / "rec.tif", "-o", tmp_path / "rec_sr2.tif", *KERAS)
    assert code == 0 and "resampled" not in out
    np.testing.assert_allclose(read_reference(tmp_path / "rec_sr2.tif")[0], red.predict(recon[None]), atol=1e-5)


def test_predict_a_reconstructed_image_runs_only_the_network(red_run, red, tmp_path, capsys, monkeypatch):
    from srredsim import classical
    from srredsim.redfairsim import network_input
    from srredsim.tiff import read_reference, write_sr_image, write_tiff

    recon, _ = network_input(_raw(5, seed=3), OpticsConfig())
    write_sr_image(tmp_path / "fairsim.tif", recon, raw_pixel_size_um=0.09)  # 45 nm SR pixels
    write_tiff(tmp_path / "stacked.tif", recon[None])  # (1, H, W), no pixel size

    def no_classical(*a, **k):
        raise AssertionError("the classical step must not run on a reconstructed image")

    monkeypatch.setattr(classical, "reconstruct", no_classical)
    monkeypatch.setattr("srredsim.classical.core.reconstruct", no_classical)
    code, out, err = _main(capsys, "predict", red_run, tmp_path / "fairsim.tif", "-o", tmp_path / "a.tif", *KERAS)
    assert code == 0, err
    got, meta = read_reference(tmp_path / "a.tif")
    np.testing.assert_allclose(got, red.predict(recon[None]), atol=1e-5)
    assert meta.pixel_size_um == pytest.approx(0.045)  # the image's own
    assert "RED-Net on a reconstructed image (no classical step; pixel size from the TIFF)" in out
    code, out, err = _main(capsys, "predict", red_run, tmp_path / "stacked.tif", "-o", tmp_path / "b.tif", *KERAS)
    assert code == 0, err
    np.testing.assert_allclose(read_reference(tmp_path / "b.tif")[0], got, atol=1e-6)
    assert read_reference(tmp_path / "b.tif")[1].pixel_size_um == pytest.approx(0.04)  # the model's raw pixel / 2
    assert "pixel size assumed: half the model's raw pixel" in out


def _one_error(code, err, *needles):
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_predict_error_lines(red_run, tmp_path, capsys, monkeypatch):
    from srredsim import runtime
    from srredsim.tiff import write_tiff

    rng = np.random.default_rng(0)
    write_tiff(tmp_path / "twelve.tif", rng.poisson(200, (12, 64, 64)).astype(np.uint16))
    raw = _raw(5)
    write_tiff(tmp_path / "raw.tif", raw, pixel_size_um=0.08)
    with monkeypatch.context() as mp:  # a frame layout that does not fit fails before the model is opened
        mp.setattr(runtime, "open_model", lambda *a, **k: pytest.fail("the model was opened"))
        code, _, err = _main(capsys, "predict", red_run, tmp_path / "twelve.tif", "-o", tmp_path / "o.tif", *KERAS)
        _one_error(code, err, "has 12 frames; RED-fairSIM takes raw stacks of 9", "--angles and --phases")
        code, _, err = _main(capsys, "predict", red_run, tmp_path / "raw.tif", "-o", tmp_path / "o.tif",
                             "--angles", "3", "--phases", "3", *KERAS)
        _one_error(code, err, "has 15 frames, but --angles x --phases = 3 x 3 = 9")
    # no pattern (every frame the mean frame): the classical step fails, in one line, and nothing is written
    flat = np.repeat(raw.mean(axis=0, keepdims=True), 15, axis=0).astype(np.uint16)
    write_tiff(tmp_path / "flat.tif", flat, pixel_size_um=0.08)
    code, _, err = _main(capsys, "predict", red_run, tmp_path / "flat.tif", "-o", tmp_path / "o.tif", *KERAS)
    _one_error(code, err, "flat.tif: the classical reconstruction (RED-fairSIM's first step) failed",
               "pattern not found", "--na/--wavelength/--pixel-size", "--order")
    assert "--params-in" not in err and not (tmp_path / "o.tif").exists()
    assert "warning" not in err  # the check's "no pattern found" is held back: the error line says it


def test_a_raw_stack_model_refuses_a_reconstructed_image(tmp_path, capsys):
    from srredsim.tiff import write_sr_image

    run = make_tiny_run(tmp_path / "sr_redsim")
    write_sr_image(tmp_path / "sr.tif", np.ones((64, 64), np.float32), raw_pixel_size_um=0.08)
    code, _, err = _main(capsys, "predict", run, tmp_path / "sr.tif", "-o", tmp_path / "o.tif", *KERAS)
    _one_error(code, err, "expected a raw SIM stack", "RED-fairSIM model")
    assert not (tmp_path / "o.tif").exists()


def test_default_given_a_reconstructed_image_points_to_red_fairsim(tmp_path, capsys):
    """`default` stands for the SR-REDSIM model of the stack's layout; one image is not a stack."""
    from srredsim.cli import main
    from srredsim.tiff import write_tiff

    write_tiff(tmp_path / "sr.tif", np.random.default_rng(0).random((64, 64)).astype("float32"), pixel_size_um=0.04)
    assert main(["predict", "default", str(tmp_path / "sr.tif"), "-o", str(tmp_path / "out.tif")]) == 2
    err = capsys.readouterr().err
    assert "not a raw SIM stack" in err and "red-fairsim" in err and len(err.strip().splitlines()) == 1
