"""predict and reconstruct run the data checks and take the optics and the frame order
(the wiring of srredsim.datacheck and srredsim.model_optics into the commands)."""

import pytest

from srredsim.cli import main
from srredsim.frameorder import from_angle_major
from srredsim.tiff import read_reference, write_tiff


def _rc(capsys, *argv):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def sim_stack():
    from srredsim.config import OpticsConfig
    from srredsim.simulate import SimulationConfig, simulate_stack

    cfg = SimulationConfig(size=64, photons=100.0, optics=OpticsConfig(), k_fraction=(0.85, 0.86))
    return simulate_stack(cfg, seed=2, targets=[]).raw


def test_reconstruct_flags_a_phase_major_stack_and_order_fixes_it(tmp_path, capsys, sim_stack):
    pm = tmp_path / "pm.tif"
    write_tiff(pm, from_angle_major(sim_stack, 3, 5, "phase-major"), pixel_size_um=0.08)
    code, _, err = _rc(capsys, "reconstruct", pm, "-o", tmp_path / "a.tif")
    assert code == 0 and "pm.tif: warning: the frames look phase-major" in err and "--order phase-major" in err
    code, _, err = _rc(capsys, "reconstruct", pm, "-o", tmp_path / "b.tif", "--strict")
    assert code == 2 and "--strict" in err and not (tmp_path / "b.tif").exists() and "Traceback" not in err
    code, _, err = _rc(capsys, "reconstruct", pm, "-o", tmp_path / "c.tif", "--order", "phase-major", "--strict")
    assert code == 0 and "warning" not in err and (tmp_path / "c.tif").exists()


def test_predict_flags_a_phase_major_stack_and_takes_optics(tmp_path, capsys, sim_stack, trained_run):
    pm = tmp_path / "pm.tif"
    write_tiff(pm, from_angle_major(sim_stack, 3, 5, "phase-major"), pixel_size_um=0.08)
    code, out, err = _rc(capsys, "predict", trained_run, pm, "-o", tmp_path / "a.tif", "--engine", "keras")
    assert code == 0 and "pm.tif: warning: the frames look phase-major" in err
    code, _, err = _rc(capsys, "predict", trained_run, pm, "-o", tmp_path / "b.tif", "--engine", "keras", "--strict")
    assert code == 2 and "--order phase-major" in err and not (tmp_path / "b.tif").exists()
    code, out, err = _rc(capsys, "predict", trained_run, pm, "-o", tmp_path / "c.tif", "--engine", "keras",
                         "--order", "phase-major", "--strict")
    assert code == 0 and "warning" not in err and "inside the model's trained sampling" in out
    # a water objective with 65 nm pixels: resampled to the model's sampling and back
    am = tmp_path / "am.tif"
    write_tiff(am, sim_stack, pixel_size_um=None)
    code, out, err = _rc(capsys, "predict", trained_run, am, "-o", tmp_path / "w.tif", "--engine", "keras",
                         "--na", "1.2", "--wavelength", "610", "--pixel-size", "0.065", "--refractive-index", "1.33")
    assert code == 0 and "resampled 64x64 -> 38x38" in out
    img, meta = read_reference(tmp_path / "w.tif")
    assert img.shape == (128, 128) and meta.pixel_size_um == pytest.approx(0.0325)
    code, out, err = _rc(capsys, "predict", trained_run, am, "-o", tmp_path / "n.tif", "--engine", "keras")
    assert code == 0 and "no optics given: assuming the model's" in out
