"""Checks before predicting and reconstructing (srredsim.datacheck, srredsim.frameorder)."""

import numpy as np
import pytest

from srredsim.config import OpticsConfig, TrainingRange
from srredsim.datacheck import Measurement, NoiseEstimate, check_stack, range_findings
from srredsim.errors import SrredsimError
from srredsim.frameorder import from_angle_major, frame_label, to_angle_major

from realdata import BEADS, MICROTUBULES, real_stack


def _sim(phases=5, photons=20.0, size=128, seed=3, angles=3, k=0.85):
    from srredsim.simulate import SimulationConfig, simulate_stack

    optics = OpticsConfig(angles=angles, phases=phases)
    cfg = SimulationConfig(size=size, photons=photons, optics=optics, k_fraction=(k, k * 1.01))
    return simulate_stack(cfg, seed=seed, targets=[]), optics


def test_reorder_round_trip_and_labels():
    stack = np.arange(15)[:, None, None] * np.ones((1, 2, 2))
    pm = from_angle_major(stack, 3, 5, "phase-major")
    assert [int(v) for v in pm[:, 0, 0]] == [0, 5, 10, 1, 6, 11, 2, 7, 12, 3, 8, 13, 4, 9, 14]
    assert np.array_equal(to_angle_major(pm, 3, 5, "phase-major"), stack)
    assert to_angle_major(stack, 3, 5) is stack
    assert frame_label(7, 3, 5, "angle-major") == (1, 2) and frame_label(7, 3, 5, "phase-major") == (1, 2)
    assert frame_label(4, 3, 5, "phase-major") == (1, 1)
    with pytest.raises(SrredsimError, match="unknown frame order"):
        to_angle_major(stack, 3, 5, "zigzag")
    with pytest.raises(SrredsimError, match="needs 9 frames"):
        to_angle_major(stack, 3, 3, "phase-major")


@pytest.mark.parametrize("phases", [5, 3])
def test_phase_major_stacks_are_flagged_and_the_flag_fixes_it(phases):
    st, optics = _sim(phases)
    good = check_stack(st.raw, optics)
    assert good.warnings == [], good.lines()
    pm = from_angle_major(st.raw, 3, phases, "phase-major")
    bad = check_stack(pm, optics, name="pm.tif")
    codes = [f.code for f in bad.warnings]
    assert codes == ["frame-order"], bad.lines()
    line = bad.lines()[0]
    assert line.startswith("pm.tif: warning:") and "--order phase-major" in line and "\n" not in line
    with pytest.raises(SrredsimError, match="--order phase-major"):
        bad.enforce(strict=True)
    bad.enforce(strict=False)  # a warning only
    fixed = check_stack(pm, optics, order="phase-major")
    assert fixed.warnings == [], fixed.lines()
    # the measurement under the right order is the true pattern
    truth = [a["magnitude_cycles_per_um"] / st.params["cutoff_cycles_per_um"] for a in st.params["angles"]]
    assert np.allclose(fixed.measurement.k_fraction, truth, atol=0.01)


def test_wrong_phases_per_angle_are_flagged():
    st, _ = _sim(phases=3, angles=5, size=128, photons=50.0)  # 15 frames: 5 angles x 3 phases
    check = check_stack(st.raw, OpticsConfig(angles=3, phases=5))
    assert [f.code for f in check.warnings] == ["phase-steps"], check.lines()
    assert "--phases" in check.lines()[0]


@pytest.mark.parametrize("photons", [20.0, 200.0])
def test_photon_level_is_measured_without_ground_truth(photons):
    st, optics = _sim(photons=photons, size=128)
    noise = check_stack(st.raw, optics).measurement.noise
    assert noise.photons == pytest.approx(st.params["photons"]["mean"], rel=0.25)
    assert noise.gain == pytest.approx(st.params["camera"]["gain_adu_per_e"], rel=0.1)
    assert abs(noise.offset - st.params["camera"]["offset_adu"]) < 0.1 * photons * noise.gain + 5


def test_data_outside_a_models_training_range():
    noise = NoiseEstimate(gain=1.0, offset=100.0, photons=5000.0, background_fraction=0.1)
    meas = Measurement(k_fraction=[0.6, 0.61, 0.6], angle_deg=[0, 60, 120], modulation=[0.1] * 3,
                       phase_step_deg=[72] * 3, background=100.0, noise=noise)
    rng = TrainingRange(cutoff_cycles_per_px=(0.39, 0.46), k_fraction=(0.7, 0.98), modulation=(0.2, 0.95),
                        photons=(1, 1000))
    found = {f.code: f for f in range_findings(meas, rng)}
    assert set(found) == {"k-range", "modulation", "photons"}
    assert "0.60 of the OTF cutoff" in found["k-range"].message and found["photons"].level == "note"
    inside = Measurement(k_fraction=[0.85] * 3, angle_deg=[0, 60, 120], modulation=[0.6] * 3,
                         phase_step_deg=[72] * 3, background=100.0,
                         noise=NoiseEstimate(gain=1.0, offset=100.0, photons=50.0, background_fraction=0.1))
    assert range_findings(inside, rng) == []
    # check_stack applies the range and the model's layout
    st, optics = _sim(k=0.6)
    check = check_stack(st.raw, optics, training_range=rng, model_optics=OpticsConfig(phases=3))
    assert {"k-range", "layout"} <= {f.code for f in check.warnings}, check.lines()


def test_real_stacks_pass_in_their_order_and_fail_in_the_other():
    from srredsim.optics import make_optics
    from srredsim.tiff import read_raw_stack

    raw, meta = read_raw_stack(real_stack(BEADS), frames=9)
    optics = make_optics(na=1.49, wavelength_nm=515, pixel_size_um=meta.pixel_size_um, phases=3)
    check = check_stack(raw, optics)
    assert [f.code for f in check.warnings] == ["undersampled"], check.lines()
    raw, meta = read_raw_stack(real_stack(MICROTUBULES), frames=9)
    optics = make_optics(na=1.49, wavelength_nm=525, pixel_size_um=meta.pixel_size_um, phases=3)
    assert check_stack(raw, optics).warnings == []
    flagged = check_stack(from_angle_major(raw, 3, 3, "phase-major"), optics)
    assert [f.code for f in flagged.warnings] == ["frame-order"]


def test_first_look_checks_a_central_quarter_and_confirms_pattern_findings_on_the_full_square(monkeypatch):
    """predict's check: a small central square first; a pattern finding is confirmed (and worded)
    by the full check, a finding that follows from the optics alone is not re-checked."""
    from srredsim import datacheck

    monkeypatch.setattr(datacheck, "FIRST_LOOK_SIZE", 64)
    sizes = []
    full_check = datacheck.check_stack

    def spy(raw, optics, size=datacheck.CHECK_SIZE, **kw):
        sizes.append((raw.shape[-1], size))
        return full_check(raw, optics, size=size, **kw)

    monkeypatch.setattr(datacheck, "check_stack", spy)
    st, optics = _sim(size=128)
    good = datacheck.first_look_check(st.raw, optics)
    assert sizes == [(128, 64)] and good.warnings == [], good.lines()
    assert good.measurement is not None and min(good.measurement.k_fraction) > 0.8

    sizes.clear()
    wrong = from_angle_major(st.raw, 3, 5, "phase-major")
    flagged = datacheck.first_look_check(wrong, optics)
    assert sizes == [(128, 64), (128, 512)]  # seen at 64², confirmed on the whole 128²
    assert [f.code for f in flagged.warnings] == ["frame-order"]
    assert flagged.findings == full_check(wrong, optics).findings

    sizes.clear()  # a stack no larger than the first look is checked once
    assert [f.code for f in datacheck.first_look_check(wrong[:, :64, :64], optics).warnings] == ["frame-order"]
    assert sizes == [(64, 64)]

    sizes.clear()  # the layout differs from the model's: the optics say so, the pattern is not re-checked
    other = datacheck.first_look_check(st.raw, optics, model_optics=OpticsConfig(angles=3, phases=3))
    assert [f.code for f in other.warnings] == ["layout"] and sizes == [(128, 64)]

    def unsure(raw, optics, size=datacheck.CHECK_SIZE, **kw):  # a first look that had to try the other order
        result = spy(raw, optics, size=size, **kw)
        if size == 64:
            result.measurement.order_scores["phase-major"] = 0.01
        return result

    sizes.clear()
    monkeypatch.setattr(datacheck, "check_stack", unsure)
    confirmed = datacheck.first_look_check(st.raw, optics)
    assert sizes == [(128, 64), (128, 512)] and confirmed.warnings == []


def test_predict_checks_each_stack_with_the_first_look(tmp_path, monkeypatch):
    """The wiring: predict_files runs first_look_check (a 512² stack costs its 256² look)."""
    from srredsim import datacheck

    looks = []
    real = datacheck.first_look_check

    def spy(raw, optics, **kw):
        looks.append(raw.shape)
        return real(raw, optics, **kw)

    monkeypatch.setattr(datacheck, "first_look_check", spy)
    from srredsim.model_optics import ModelSampling, cutoff_per_pixel
    from srredsim.predict import predict_files
    from srredsim.tiff import write_tiff

    st, optics = _sim(size=64)
    write_tiff(tmp_path / "raw.tif", st.raw)

    class Model:  # a stand-in network with the model's optics: predict_files' contract only
        frames, halo, size_multiple, pixel_size_um = 15, 4, 1, optics.pixel_size_um
        c = cutoff_per_pixel(optics)
        sampling = ModelSampling(optics=optics, training_range=TrainingRange(cutoff_cycles_per_px=(c, c)))

        def predict(self, raw, tile=None, halo=None, batch_size=1, progress=None, border="symmetric"):
            return np.zeros((2 * raw.shape[1], 2 * raw.shape[2]), np.float32)

    list(predict_files(Model(), [tmp_path / "raw.tif"], [tmp_path / "sr.tif"]))
    assert looks == [st.raw.shape] and (tmp_path / "sr.tif").is_file()
