"""srredsim adapt: measure the user's stacks, simulate look-alikes, fine-tune (srredsim.adapt)."""

import json

import numpy as np
import pytest

from srredsim.adapt import _rotation, adapt, measure_acquisition
from srredsim.cli import main
from srredsim.config import RunConfig
from srredsim.optics import make_optics
from srredsim.tiff import write_tiff

WATER = dict(na=1.2, wavelength_nm=610.0, pixel_size_um=0.065, refractive_index=1.33)


def _user_stacks(folder, count=2, size=128, phases=5, mirrored=False, photons=30.0):
    """Stacks of a microscope the base model never saw (water objective, 65 nm pixels)."""
    from srredsim.simulate import SimulationConfig, simulate_stack

    optics = make_optics(phases=phases, **WATER)
    cfg = SimulationConfig(size=size, optics=optics, photons=photons, k_fraction=(0.8, 0.808),
                           modulation=(0.6, 0.7), angle_offset_deg=20.0, structures="mixed")
    folder.mkdir(parents=True, exist_ok=True)
    paths, truths = [], []
    for i in range(count):
        st = simulate_stack(cfg, seed=(77, i), targets=[])
        raw = st.raw.transpose(0, 2, 1) if mirrored else st.raw
        paths.append(write_tiff(folder / f"cell{i}.tif", np.ascontiguousarray(raw), pixel_size_um=0.065))
        truths.append(st.params)
    return optics, paths, truths


def test_rotation_sense_and_mirroring():
    assert _rotation([10.0, 70.0, 130.0], 3) == (10.0, False)
    assert _rotation([10.0, 70.0, -230.0], 3) == (10.0, False)  # full circle: -230 = 130
    assert _rotation([10.0, 70.0, -50.0], 3) == (None, False)  # band +1 of angle 3 on the other side
    offset, mirrored = _rotation([10.0, -50.0, -110.0], 3)  # stepping backwards
    assert mirrored and offset == pytest.approx(80.0)
    assert _rotation([10.0, 40.0, 130.0], 3) == (None, False)


def test_measured_acquisition_matches_the_simulated_microscope(tmp_path):
    optics, paths, truths = _user_stacks(tmp_path / "raw", count=1)
    from srredsim.tiff import read_raw_stack

    raw, _ = read_raw_stack(paths[0])
    acq = measure_acquisition([("cell0", raw)], optics)
    assert acq.k_fraction[0] < 0.8 < acq.k_fraction[1] and acq.k_fraction[1] - acq.k_fraction[0] < 0.04
    assert acq.photons[0] < 30 < acq.photons[1] and not acq.mirrored
    assert acq.angle_offset_deg == pytest.approx(20.0, abs=2)
    rng = acq.training_range()
    assert rng.cutoff_cycles_per_px[0] == pytest.approx(2 * 1.2 / 0.61 * 0.065)
    # a system whose angles step the other way is simulated mirrored, and comes out like it
    _, mpaths, _ = _user_stacks(tmp_path / "mirror", count=1, mirrored=True)
    mraw, _ = read_raw_stack(mpaths[0])
    macq = measure_acquisition([("m", mraw)], optics)
    assert macq.mirrored
    from srredsim.datacheck import check_stack
    from srredsim.simulate import simulate_stack

    st = simulate_stack(macq.simulation_config(), seed=1, targets=[])
    again = check_stack(np.ascontiguousarray(st.raw.transpose(0, 2, 1)), optics).measurement
    measured = check_stack(mraw, optics).measurement
    diff = (np.subtract(again.angle_deg, measured.angle_deg) + 180) % 360 - 180
    assert np.all(np.abs(diff) < 3), (again.angle_deg, measured.angle_deg)


def test_adapt_fine_tunes_into_a_run_folder_and_resumes(tmp_path, trained_run, monkeypatch):
    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    optics, paths, _ = _user_stacks(tmp_path / "raw", count=2)
    out = tmp_path / "adapted"
    lines = []
    run = adapt([tmp_path / "raw"], out, optics=dict(na=1.2, wavelength_nm=610.0, refractive_index=1.33),
                base=trained_run, minutes=0.15, count=16, val_count=2, say=lines.append, progress=False)
    cfg = RunConfig.load(out)
    assert cfg.optics.pixel_size_um == pytest.approx(0.065)  # from the TIFF
    assert cfg.optics.na == 1.2 and cfg.model.filters == RunConfig.load(trained_run).model.filters
    assert cfg.training_range.k_fraction[0] < 0.8 < cfg.training_range.k_fraction[1]
    info = json.loads((out / "adapt.json").read_text())
    assert info["acquisition"]["optics"]["na"] == 1.2 and info["simulation"]["train"] >= 16
    assert run.has_weights() and any("measured 2 stack(s)" in line for line in lines)
    assert not list((tmp_path / "cache" / "adapt").iterdir())  # simulated data removed afterwards
    epochs = len((out / "history.csv").read_text().splitlines()) - 1
    assert epochs >= 1
    adapt(paths, out, optics=dict(na=1.2, wavelength_nm=610.0, refractive_index=1.33), base=trained_run,
          minutes=0.05, count=16, val_count=2, resume=True, say=lines.append, progress=False)
    assert len((out / "history.csv").read_text().splitlines()) - 1 > epochs
    # the adapted model predicts like any run folder
    from srredsim.runtime import open_model
    from srredsim.tiff import read_raw_stack

    raw, _ = read_raw_stack(paths[0])
    sr = open_model(out, engine="keras").predict(raw)
    assert sr.shape == (256, 256) and np.all(np.isfinite(sr))


def test_adapt_command_bad_input(tmp_path, capsys, trained_run):
    def rc(*argv):
        code = main(["adapt", *map(str, argv)])
        return code, capsys.readouterr().err

    code, err = rc(tmp_path / "missing.tif", "-o", tmp_path / "o", "--from", trained_run)
    assert code == 2 and "no such file" in err and "Traceback" not in err
    noise = np.random.default_rng(0).poisson(100, (15, 128, 128)).astype(np.uint16)
    write_tiff(tmp_path / "noise.tif", noise, pixel_size_um=0.08)
    code, err = rc(tmp_path / "noise.tif", "-o", tmp_path / "o", "--from", trained_run)
    assert code == 2 and "no stack shows a usable SIM pattern" in err and not (tmp_path / "o").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    code, err = rc(tmp_path / "noise.tif", "-o", tmp_path / "full", "--from", trained_run)
    assert code == 2 and "not empty" in err
    code, err = rc(tmp_path / "noise.tif", "-o", tmp_path / "o", "--from", trained_run, "--minutes", "0")
    assert code == 2 and "--minutes" in err
    code, err = rc(tmp_path / "noise.tif", "-o", tmp_path / "o", "--from", trained_run, "--phases", "4")
    assert code == 2 and "15 frames" in err
    code, err = rc(tmp_path / "noise.tif", "-o", tmp_path / "o", "--from", trained_run, "--content", "cats")
    assert code == 2 and "unknown content 'cats'" in err
