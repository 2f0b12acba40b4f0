"""The standing controls (srredsim.controls, srredsim.chart): their mechanics, on a tiny trained model."""

from __future__ import annotations

import numpy as np
import pytest

from srredsim.errors import SrredsimError


def test_pattern_removed_replaces_every_frame_by_the_mean():
    from srredsim.controls import pattern_removed

    raw = np.random.default_rng(0).integers(100, 4000, (15, 16, 16)).astype(np.uint16)
    flat = pattern_removed(raw)
    assert flat.shape == raw.shape and flat.dtype == np.float32
    mean = raw.astype(np.float64).mean(axis=0)
    for frame in flat:
        np.testing.assert_allclose(frame, mean, rtol=1e-6)
    with pytest.raises(SrredsimError):
        pattern_removed(raw[0])


def test_dip_visibility_tells_separated_lines_from_a_blur():
    from srredsim.chart import dip_visibility, line_pair_chart
    from scipy import ndimage

    chart = line_pair_chart(64, 0.08, spacings_nm=(200,), seed=1)
    sharp = ndimage.gaussian_filter(chart.structure, 0.7)
    blurred = ndimage.gaussian_filter(chart.structure, 6.0)
    pair = chart.pairs[0]
    assert dip_visibility(sharp, pair, chart.fine_pixel_um) > 0.8
    assert dip_visibility(blurred, pair, chart.fine_pixel_um) == 0.0


class _Spy:
    """Wraps a model handle and records the stacks it is given."""

    def __init__(self, model):
        self.model, self.frames, self.inputs = model, model.frames, []

    def predict(self, raw, **kw):
        self.inputs.append(np.array(raw, np.float32))
        return self.model.predict(raw, **kw)


class _PatternBlind:
    """A 'network' that only sees the widefield image: the mean frame, upsampled."""

    frames = 15

    def predict(self, raw, **kw):
        from srredsim.metrics import upsample_fourier

        wf = np.asarray(raw, np.float64).mean(axis=0)
        return upsample_fourier(wf, (2 * wf.shape[0], 2 * wf.shape[1])).astype(np.float32)


def test_controls_feed_sim_and_pattern_removed_stacks_and_detect_a_pattern_blind_model(trained_run):
    from srredsim.controls import REMOVED, ControlSettings, heldout_rows, summarize_heldout
    from srredsim.runtime import open_model

    spy = _Spy(open_model(trained_run, engine="keras"))
    s = ControlSettings(photons=(200.0,), count=1, size=64, border=8)
    rows = summarize_heldout(heldout_rows({"tiny": spy, "blind": _PatternBlind()}, s))
    # the model saw the SIM stack, then the same stack with every frame replaced by the mean frame
    sim, flat = spy.inputs
    assert np.ptp(sim.std(axis=0)) > 0 and np.all(flat.std(axis=0) < 1e-3)
    np.testing.assert_allclose(flat[0], sim.mean(axis=0), rtol=1e-5)
    by = {(r["reference"], r["method"]): r["psnr"] for r in rows}
    for name in ("widefield", "classical", "tiny", f"tiny ({REMOVED})", "blind", f"blind ({REMOVED})"):
        assert np.isfinite(by[("truth", name)]) and np.isfinite(by[("bandlimited", name)])
    # a model that ignores the pattern scores the same from both inputs: the control catches it
    assert abs(by[("truth", "blind")] - by[("truth", f"blind ({REMOVED})")]) < 0.05


def test_chart_ranks_truth_classical_and_widefield_by_physics():
    from srredsim.controls import ControlSettings, chart_rows

    s = ControlSettings(chart_photons=(200.0,), chart_size=128, chart_count=1)
    rows = {r["method"]: r for r in chart_rows({}, s)}
    finest = {m: rows[m]["finest_resolved_nm"] or 1e9 for m in ("truth", "classical", "widefield")}
    # the truth resolves finer pairs than classical SIM, which beats widefield (diffraction limit 187 nm)
    assert finest["truth"] < finest["classical"] < finest["widefield"]
    assert finest["widefield"] > 187 and finest["classical"] < 187
    assert rows["widefield"]["v160"] < 0.15
