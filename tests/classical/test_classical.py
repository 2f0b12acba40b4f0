import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srredsim.classical import ReconOptions, SimParams, estimate_parameters, preprocess, reconstruct, validate_stack
from srredsim.cli import main
from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError
from srredsim.metrics import compare
from srredsim.optics import cutoff_cycles_per_um
from srredsim.simulate import SimulationConfig, simulate_stack
from srredsim.tiff import read_reference, write_tiff


def _errors(st, params, n):
    """k error (px), phase error at the field centre (rad) and modulation error per band."""
    out = []
    B = st.params["beams"]
    for tr, es in zip(st.params["angles"], params.angles):
        k, e = np.array(tr["k_fft_px"]), np.array(es.k_fft_px)
        for b in range(B - 1):
            f = (b + 1) / (B - 1)
            # the phase of the pattern at the centre of the field, where the data are
            pt = tr["phases_rad"][b] + math.pi * f * k.sum()
            pe = es.phases_rad[b] + math.pi * f * e.sum()
            dph = abs(np.angle(np.exp(1j * (pe - pt))))
            out.append((float(np.linalg.norm(e - k)), float(dph), abs(es.modulations[b] - tr["modulations"][b])))
    return np.array(out)


def _estimate(st, optics):
    data, _ = preprocess(validate_stack(st.raw, optics), ReconOptions())
    return estimate_parameters(data, optics)


@pytest.mark.parametrize("photons", [100.0, 1000.0])
def test_estimation_recovers_simulated_parameters(photons):
    cfg = SimulationConfig(size=256, photons=photons)
    for seed in range(2):
        st = simulate_stack(cfg, seed=seed, targets=[])
        err = _errors(st, _estimate(st, cfg.optics), 256)
        assert err[:, 0].max() < 0.04, err  # pattern vector, FFT pixels of 256² (0.02 px targets 512²)
        assert err[:, 1].max() < 0.05, err  # phase
        assert err[:, 2].max() < 0.1, err  # modulation


def test_estimation_still_locks_at_10_photons():
    cfg = SimulationConfig(size=256, photons=10.0)
    st = simulate_stack(cfg, seed=5, targets=[])
    err = _errors(st, _estimate(st, cfg.optics), 256)
    assert err[:, 0].max() < 0.15 and err[:, 1].max() < 0.2 and err[:, 2].max() < 0.1, err


@pytest.mark.parametrize("optics", [OpticsConfig(beams=3), OpticsConfig(phases=3), OpticsConfig(angles=2, phases=4)],
                         ids=["3beam", "3x3", "2x4"])
def test_other_pattern_layouts(optics):
    cfg = SimulationConfig(size=128, photons=300.0, optics=optics)
    st = simulate_stack(cfg, seed=1, targets=["truth"])
    rec = reconstruct(st.raw, optics)
    err = _errors(st, rec.params, 128)
    assert err[:, 0].max() < 0.1 and err[:, 1].max() < 0.15 and err[:, 2].max() < 0.15, err
    sr = compare(rec.sr, st.truth, pixel_size_um=0.04)
    wf = compare(rec.widefield, st.truth, pixel_size_um=0.04)
    assert sr["psnr"] > wf["psnr"] and sr["ssim"] > wf["ssim"]


def test_reconstruction_beats_widefield_and_extends_the_spectrum():
    cfg = SimulationConfig(size=256, photons=1000.0, k_fraction=0.95, structures="mixed")
    st = simulate_stack(cfg, seed=0, targets=["truth"])
    rec = reconstruct(st.raw, cfg.optics)
    assert rec.sr.shape == rec.widefield.shape == (512, 512)
    assert rec.sr.dtype == rec.widefield.dtype == np.float32
    px = cfg.optics.pixel_size_um / 2
    kc = cutoff_cycles_per_um(cfg.optics)
    sr = compare(rec.sr, st.truth, pixel_size_um=px)
    wf = compare(rec.widefield, st.truth, pixel_size_um=px)
    assert sr["psnr"] > wf["psnr"] + 3 and sr["ssim"] > wf["ssim"] + 0.05
    assert wf["frc_cycles_per_um"] < 1.1 * kc
    assert sr["frc_cycles_per_um"] >= 1.8 * kc  # support to ≥ 1.8x the widefield cutoff


def test_known_parameters_skip_estimation_and_agree():
    cfg = SimulationConfig(size=128, photons=300.0)
    st = simulate_stack(cfg, seed=2, targets=[])
    est = reconstruct(st.raw, cfg.optics)
    known = reconstruct(st.raw, cfg.optics, params=st.params)
    assert known.params.estimated is False
    assert np.corrcoef(est.sr.ravel(), known.sr.ravel())[0, 1] > 0.99
    again = reconstruct(st.raw, cfg.optics, params=SimParams.from_dict(est.params.to_dict()))
    assert np.allclose(again.sr, est.sr, atol=1e-3 * float(np.abs(est.sr).max()))


def test_attenuation_option_runs_and_suppresses_low_frequencies():
    cfg = SimulationConfig(size=128, photons=300.0, haze=1.0)
    st = simulate_stack(cfg, seed=3, targets=[])
    plain = reconstruct(st.raw, cfg.optics, attenuation=False)
    att = reconstruct(st.raw, cfg.optics, params=plain.params, attenuation=True)
    def low(img):
        spec = np.abs(np.fft.fft2(img - img.mean()))
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij"))
        return spec[(f > 0) & (f < 0.01)].sum() / spec[(f > 0.05) & (f < 0.15)].sum()
    assert low(att.sr) < low(plain.sr)


def _stack(frames=15, size=64, value=None):
    rng = np.random.default_rng(0)
    return rng.poisson(100, size=(frames, size, size)).astype(np.uint16) if value is None else np.full((frames, size, size), value, np.float32)


@pytest.mark.parametrize("raw, msg", [
    (_stack(frames=14), "14 frames, expected"),
    (_stack()[:, :, :60], "square"),
    (_stack(size=63), "even"),
    (_stack(size=16), "too small"),
    (_stack(value=0.0), "all frames are zero"),
    (_stack(value=np.nan), "NaN"),
    (_stack(value=np.inf), "NaN"),
])
def test_bad_stacks_are_refused(raw, msg):
    with pytest.raises(SrredsimError, match=msg):
        reconstruct(raw, OpticsConfig())


def test_pattern_not_found_is_an_error_unless_fallback():
    noise = _stack(size=128)
    with pytest.raises(SrredsimError, match="pattern not found"):
        reconstruct(noise, OpticsConfig())
    rec = reconstruct(noise, OpticsConfig(), fallback="widefield")
    assert rec.params.angles == [] and "fallback" in rec.params.notes[0]
    assert np.array_equal(rec.sr, rec.widefield)


def test_bad_options_are_one_line_errors():
    raw = _stack()
    for kwargs, msg in [(dict(wiener=0), "Wiener"), (dict(otf_damping=2), "damping"),
                        (dict(k_min=1.5, k_max=1.0), "range"), (dict(nonsense=1), "nonsense")]:
        with pytest.raises(SrredsimError, match=msg):
            reconstruct(raw, OpticsConfig(), **kwargs)


def test_cli_reconstruct_and_errors(tmp_path, capsys):
    cfg = SimulationConfig(size=128, photons=200.0)
    st = simulate_stack(cfg, seed=0, targets=[])
    raw = write_tiff(tmp_path / "raw.tif", st.raw, pixel_size_um=0.08)
    out, wf, pj = tmp_path / "sr.tif", tmp_path / "wf.tif", tmp_path / "p.json"
    assert main(["reconstruct", str(raw), "-o", str(out), "--widefield", str(wf), "--params-out", str(pj)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("angle ") == 3 and "modulation" in printed
    sr, meta = read_reference(out)
    assert sr.shape == (256, 256) and meta.pixel_size_um == pytest.approx(0.04)
    assert read_reference(wf)[0].shape == (256, 256)
    params = json.loads(pj.read_text())
    assert len(params["angles"]) == 3 and params["optics"]["na"] == 1.4
    # parameters fed back in give the same image
    out2 = tmp_path / "sr2.tif"
    assert main(["reconstruct", str(raw), "-o", str(out2), "--params-in", str(pj)]) == 0
    assert np.allclose(read_reference(out2)[0], sr, atol=1e-3 * float(np.abs(sr).max()))
    # existing output refused; wrong frame count; unphysical optics; nothing written
    assert main(["reconstruct", str(raw), "-o", str(out)]) == 2
    bad = tmp_path / "bad.tif"
    for args, msg in [(["--phases", "3"], "expected 9"), (["--na", "1.6"], "refractive index"),
                      (["--pixel-size", "-0.1"], "pixel size")]:
        capsys.readouterr()
        assert main(["reconstruct", str(raw), "-o", str(bad)] + args) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and err.count("\n") == 0
        assert not bad.exists()
    noise = write_tiff(tmp_path / "noise.tif", _stack(size=128))
    assert main(["reconstruct", str(noise), "-o", str(bad)]) == 2
    assert "pattern not found" in capsys.readouterr().err and not bad.exists()
    assert main(["reconstruct", str(noise), "-o", str(bad), "--fallback", "widefield"]) == 0 and bad.exists()
    assert not list(tmp_path.glob(".*part*"))


def test_installed_console_script_reconstructs(tmp_path):
    exe = Path(sys.executable).with_name("srredsim")
    if not exe.exists():
        pytest.skip("console script not installed (pip install -e .)")
    st = simulate_stack(SimulationConfig(size=64, photons=200.0), seed=0, targets=[])
    raw = write_tiff(tmp_path / "raw.tif", st.raw, pixel_size_um=0.08)
    res = subprocess.run([str(exe), "reconstruct", str(raw), "-o", str(tmp_path / "sr.tif")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "sr.tif").exists()
