"""Fourier resampling (srredsim.resample) and optics-aware prediction (srredsim.model_optics)."""

import numpy as np
import pytest

from srredsim.config import OpticsConfig, RunConfig
from srredsim.errors import SrredsimError
from srredsim.model_optics import (ModelSampling, cutoff_per_pixel, predict_with_optics, recipe_training_range,
                                   training_range_from_data)
from srredsim.optics import make_optics
from srredsim.resample import resample, resample_raw, resampling_matrix


def _cosines(n, freqs, scale=1.0):
    x = (np.arange(n) + 0.5) * scale
    return sum(np.cos(2 * np.pi * f * x)[:, None] * np.cos(2 * np.pi * 0.7 * f * x)[None, :] for f in freqs)


def test_resampling_keeps_band_limited_content_on_the_same_field_of_view():
    freqs = (0.05, 0.13, 0.21)  # cycles per original pixel, all below both grids' Nyquist
    img = _cosines(200, freqs)
    for m in (120, 333):
        out = resample(img, (m, m))
        ref = _cosines(m, freqs, scale=200 / m)
        core = slice(m // 8, -(m // 8))
        assert np.abs(out - ref)[core, core].max() < 0.01 * np.abs(ref).max()
    up_down = resample(resample(img, (333, 333)), (200, 200))
    assert np.abs(up_down - img).max() < 1e-4  # zero-padding then cropping the spectrum is exact
    assert np.allclose(resample(img, (90, 150)),
                       resampling_matrix(200, 90) @ img @ resampling_matrix(200, 150).T, atol=1e-4)


def test_resample_raw_factor_and_errors():
    stack = np.random.default_rng(0).random((9, 100, 80)).astype(np.float32)
    out, factor = resample_raw(stack, 0.26, 0.4267)
    assert out.shape == (9, 61, 49) and factor == pytest.approx(0.26 / 0.4267, rel=0.02)
    assert out.dtype == np.float32
    with pytest.raises(SrredsimError, match="cutoff"):
        resample_raw(stack, 0.7, 0.4)
    with pytest.raises(SrredsimError, match="frames, H, W"):
        resample_raw(stack[0], 0.3, 0.4)


class _UpsamplingModel:
    """A stand-in network: the mean frame, Fourier-upsampled 2x; records what it was given."""

    def __init__(self):
        self.seen = []

    def predict(self, raw, **kwargs):
        self.seen.append(raw.shape)
        mean = raw.mean(axis=0)
        return resample(mean, (2 * mean.shape[0], 2 * mean.shape[1]))


def test_predict_with_optics_resamples_only_outside_the_trained_sampling():
    sampling = ModelSampling.from_config(RunConfig())  # NA 1.4, 525 nm, 80 nm: 0.427 cycles/px
    raw = np.random.default_rng(1).random((15, 64, 64)).astype(np.float32) + 1
    model = _UpsamplingModel()

    plain = predict_with_optics(model, raw, sampling)
    assert "no optics given: assuming the model's (NA 1.4, 525 nm, 80.0 nm" in plain.note
    assert plain.image.shape == (128, 128) and plain.factor == 1.0 and plain.pixel_size_um == pytest.approx(0.04)

    same = predict_with_optics(model, raw, sampling, OpticsConfig(wavelength_nm=526.0))
    assert same.factor == 1.0 and "inside the model's trained sampling" in same.note

    water = make_optics(na=1.2, wavelength_nm=610, pixel_size_um=0.065, refractive_index=1.33)
    out = predict_with_optics(model, raw, sampling, water)
    m = round(64 * cutoff_per_pixel(water) / cutoff_per_pixel(RunConfig().optics))  # 64 x 0.256 / 0.427
    assert model.seen[-1] == (15, m, m) and m == 38
    assert out.image.shape == (128, 128) and out.pixel_size_um == pytest.approx(0.0325)
    assert out.factor == pytest.approx(m / 64) and f"resampled 64x64 -> {m}x{m}" in out.note
    # a smooth stack survives the round trip through the model's sampling
    smooth = np.broadcast_to(_cosines(64, (0.03, 0.06)).astype(np.float32) + 3, (15, 64, 64))
    direct = predict_with_optics(_UpsamplingModel(), smooth, sampling).image
    round_trip = predict_with_optics(_UpsamplingModel(), smooth, sampling, water).image
    core = slice(16, -16)
    assert np.abs(round_trip - direct)[core, core].max() < 0.02


def test_a_recorded_training_range_widens_what_the_model_knows():
    rng = recipe_training_range("sim")
    assert rng.cutoff_cycles_per_px[0] < 0.4267 < rng.cutoff_cycles_per_px[1]
    assert rng.k_fraction == (0.70, 0.98)
    sampling = ModelSampling.from_config(RunConfig(training_range=rng))
    assert sampling.knows(0.40) and not ModelSampling.from_config(RunConfig()).knows(0.40)
    assert sampling.reference_cutoff == pytest.approx(cutoff_per_pixel(RunConfig().optics))
    again = ModelSampling.from_dict({"optics": RunConfig().optics.model_dump(), "training_range": rng.model_dump()})
    assert again.training_range == rng
    with pytest.raises(SrredsimError, match="no usable optics"):
        ModelSampling.from_dict({"training_range": {}})
    with pytest.raises(SrredsimError, match="unknown recipe"):
        recipe_training_range("nope")


def test_training_range_from_a_recipe_data_folder(tmp_path):
    assert training_range_from_data(tmp_path) is None
    (tmp_path / "recipe.json").write_text('{"recipe": "sim"}')
    (tmp_path / "truth").mkdir()
    assert training_range_from_data(tmp_path / "truth") == recipe_training_range("sim")


def test_predict_with_optics_on_a_trained_run(trained_run):
    from srredsim.runtime import open_model

    model = open_model(trained_run, engine="keras")
    cfg = RunConfig.load(trained_run)
    raw = np.random.default_rng(2).poisson(50, (15, 40, 48)).astype(np.uint16)
    coarse = make_optics(na=1.2, wavelength_nm=520, pixel_size_um=0.1, refractive_index=1.33)
    out = predict_with_optics(model, raw, ModelSampling.from_config(cfg), coarse)
    assert out.image.shape == (80, 96) and np.all(np.isfinite(out.image)) and out.factor > 1


def test_pairs_from_several_recipes_record_their_union(tmp_path):
    """RED-fairSIM pairs made from 'sim' and 'sim-easy' folders say recipe 'mixed' and list their
    sources: the training range is the union of the two (training such pairs must not fail)."""
    import json

    (tmp_path / "recipe.json").write_text(json.dumps({"recipe": "mixed",
                                                       "sources": [{"recipe": "sim"}, {"recipe": "sim-easy"}]}))
    got = training_range_from_data(tmp_path)
    sim, easy = recipe_training_range("sim"), recipe_training_range("sim-easy")
    assert got.cutoff_cycles_per_px == (min(sim.cutoff_cycles_per_px[0], easy.cutoff_cycles_per_px[0]),
                                        max(sim.cutoff_cycles_per_px[1], easy.cutoff_cycles_per_px[1]))
    assert got.photons == (min(sim.photons[0], easy.photons[0]), max(sim.photons[1], easy.photons[1]))
