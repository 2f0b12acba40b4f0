"""The classical estimator's shared-pattern search (srredsim.classical.pattern)."""

import math

import numpy as np
import pytest

from srredsim.classical import ReconOptions, estimate_parameters, preprocess, reconstruct, validate_stack
from srredsim.classical.pattern import consistent
from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError
from srredsim.optics import check_sampling, make_optics, sampling_warning

from realdata import BEADS, MICROTUBULES, real_stack


def _k_errors(raw, optics, truth_angles, **opts):
    data, _ = preprocess(validate_stack(raw, optics), ReconOptions(**opts))
    params = estimate_parameters(data, optics, ReconOptions(**opts))
    return params, [float(np.linalg.norm(np.subtract(a.k_fft_px, t["k_fft_px"])))
                    for a, t in zip(params.angles, truth_angles)]


def test_consistency_rule():
    r = 90.0
    three = [(round(r * math.sin(math.radians(t))), round(r * math.cos(math.radians(t)))) for t in (10, 70, 130)]
    assert consistent(three, 3)
    assert consistent([three[0], (-three[1][0], -three[1][1]), three[2]], 3)  # the sign of k is free
    assert not consistent([three[0], (three[1][0] // 2, three[1][1] // 2), three[2]], 3)  # another period
    assert not consistent([three[0], three[0], three[2]], 3)  # two angles in one direction
    assert not consistent([three[0], (round(r * math.sin(1.4)), round(r * math.cos(1.4))), three[2]], 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_faint_angles_are_found_from_the_shared_pattern(seed):
    """Two angles with a faint pattern (m = 0.08) and one clear one: each faint angle on its own
    locks onto a structure peak; the shared period and 60° spacing find them all."""
    from srredsim.simulate import SimulationConfig, simulate_stack

    optics = OpticsConfig(phases=3)
    kw = dict(size=256, optics=optics, structures="filaments", k_fraction=0.9, angle_offset_deg=10.0, photons=20.0)
    clear = simulate_stack(SimulationConfig(modulation=0.9, **kw), seed=seed, targets=[])
    faint = simulate_stack(SimulationConfig(modulation=0.08, **kw), seed=seed, targets=[])
    raw = faint.raw.copy()
    raw[6:9] = clear.raw[6:9]  # same structure and pattern vectors, only the contrast differs
    truth = clear.params["angles"]
    _, alone = _k_errors(raw, optics, truth, shared_pattern=False)
    params, shared = _k_errors(raw, optics, truth)
    assert max(alone) > 5, alone  # the estimator without the shared pattern is fooled
    assert max(shared) < 0.5, shared
    assert params.notes and "shared" in " ".join(params.notes)


def test_pure_noise_is_still_not_a_pattern():
    noise = np.random.default_rng(3).poisson(100, size=(9, 128, 128)).astype(np.uint16)
    with pytest.raises(SrredsimError, match="pattern not found"):
        reconstruct(noise, OpticsConfig(phases=3))


def test_slight_undersampling_is_a_warning_gross_is_refused():
    beads = make_optics(na=1.49, wavelength_nm=515, pixel_size_um=0.0867, phases=3)
    warning = check_sampling(beads)
    assert warning == sampling_warning(beads) and "0.3 % above" in warning and "\n" not in warning
    assert check_sampling(make_optics(pixel_size_um=0.08)) is None
    with pytest.raises(SrredsimError, match="undersamples"):
        check_sampling(make_optics(na=1.49, wavelength_nm=515, pixel_size_um=0.092, phases=3))


def test_real_microtubules_all_angles_share_one_period():
    """The low-signal rDL-SIM microtubules: the pattern (≈181 nm) is found for all three angles."""
    from srredsim.tiff import read_raw_stack

    raw, meta = read_raw_stack(real_stack(MICROTUBULES), frames=9)
    optics = make_optics(na=1.49, wavelength_nm=525, pixel_size_um=meta.pixel_size_um or 0.0626, phases=3)
    data, _ = preprocess(validate_stack(raw, optics), ReconOptions())
    summary = estimate_parameters(data, optics).to_dict()
    periods = np.array([a["period_um"] * 1000 for a in summary["angles"]])
    assert np.all(np.abs(periods / np.median(periods) - 1) < 0.02), periods
    assert np.all(np.abs(periods / 180.7 - 1) < 0.02), periods  # λ_exc / (2 NA_exc) = 488 / 2.7
    dirs = sorted(a["angle_deg"] % 180 for a in summary["angles"])
    steps = np.diff(dirs + [dirs[0] + 180])
    assert np.all(np.abs(steps - 60) < 3), dirs


def test_real_beads_reconstruct_at_their_true_pixel_size():
    from srredsim.metrics import bead_fwhm
    from srredsim.tiff import read_raw_stack

    raw, meta = read_raw_stack(real_stack(BEADS), frames=9)
    optics = make_optics(na=1.49, wavelength_nm=515, pixel_size_um=meta.pixel_size_um, phases=3)
    assert meta.pixel_size_um == pytest.approx(0.0867)
    rec = reconstruct(raw, optics)
    assert "above" in rec.params.notes[0]  # the undersampling warning travels with the result
    wf = bead_fwhm(rec.widefield, optics.pixel_size_um / 2)
    sr = bead_fwhm(rec.sr, optics.pixel_size_um / 2)
    assert sr["beads"] >= 5 and wf["beads"] >= 5
    assert sr["fwhm_nm"] < 0.6 * wf["fwhm_nm"], (sr, wf)
