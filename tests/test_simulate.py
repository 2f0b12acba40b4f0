import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srredsim.cli import main
from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError
from srredsim.simulate import SimulationConfig, parse_range, simulate_stack
from srredsim.tiff import read_raw_stack, read_reference

SMALL = dict(size=64, photons=50.0)


def test_stack_shapes_dtypes_and_params():
    cfg = SimulationConfig(**SMALL)
    st = simulate_stack(cfg, seed=1)
    assert st.raw.dtype == np.uint16 and st.raw.shape == (15, 64, 64)
    assert st.truth.dtype == np.float32 and st.truth.shape == (128, 128)
    assert set(st.targets) == {"truth", "bandlimited"}
    for t in st.targets.values():
        assert t.dtype == np.float32 and t.shape == (128, 128)
    p = st.params
    json.dumps(p)  # JSON-able
    assert len(p["angles"]) == 3
    for a in p["angles"]:
        assert len(a["frame_phases_rad"]) == 5 and len(a["phases_rad"]) == 1 and len(a["modulations"]) == 1
        kc_px = p["cutoff_cycles_per_um"] * 64 * 0.08
        assert 0.75 * kc_px <= math.hypot(*a["k_fft_px"]) <= 0.95 * kc_px
    assert p["photons"]["peak"] > p["photons"]["mean"] == pytest.approx(50.0)
    assert 0.2 <= p["otf"]["damping"] <= 0.5


def test_photons_are_mean_detected_photons_per_pixel_per_frame():
    cfg = SimulationConfig(**{**SMALL, "photons": 200.0})
    st = simulate_stack(cfg, seed=3)
    assert st.expected.mean() == pytest.approx(200.0, rel=1e-3)
    cam = st.params["camera"]
    electrons = (st.raw.astype(float) - cam["offset_adu"]) / cam["gain_adu_per_e"]
    assert electrons.mean() == pytest.approx(200.0, rel=0.02)
    # shot noise: the variance of (raw - expected) in electrons follows the mean
    resid = electrons - st.expected
    assert resid.var() == pytest.approx(200.0 + cam["read_noise_e"] ** 2, rel=0.1)


def test_same_seed_same_stack_other_seed_differs():
    cfg = SimulationConfig(**SMALL)
    a, b = simulate_stack(cfg, seed=(7, 2)), simulate_stack(cfg, seed=(7, 2))
    assert np.array_equal(a.raw, b.raw) and np.array_equal(a.truth, b.truth)
    assert a.params == b.params
    c = simulate_stack(cfg, seed=(7, 3))
    assert not np.array_equal(a.raw, c.raw)


def test_photon_range_is_log_uniform_within_bounds():
    cfg = SimulationConfig(size=32, photons=(2.0, 300.0), structures="beads")
    values = [simulate_stack(cfg, seed=s, targets=[]).params["photons"]["mean"] for s in range(12)]
    assert all(2.0 <= v <= 300.0 for v in values)
    assert len(set(values)) == len(values)


@pytest.mark.parametrize("structures", ["filaments", "vesicles", "beads", "mixed"])
def test_structures_render(structures):
    st = simulate_stack(SimulationConfig(size=32, photons=20.0, structures=structures), seed=0, targets=["truth"])
    assert st.truth.max() > 0 and np.all(st.truth >= 0)


def test_three_beam_and_3x3_variants():
    st = simulate_stack(SimulationConfig(size=64, photons=50.0, optics=OpticsConfig(beams=3)), seed=0, targets=[])
    assert st.raw.shape == (15, 64, 64)
    assert all(len(a["modulations"]) == 2 for a in st.params["angles"])
    st = simulate_stack(SimulationConfig(size=64, photons=50.0, optics=OpticsConfig(phases=3)), seed=0, targets=[])
    assert st.raw.shape == (9, 64, 64)


def test_bandlimited_target_has_no_power_beyond_sim_support():
    st = simulate_stack(SimulationConfig(**SMALL), seed=2)
    px = 0.04
    spec = np.abs(np.fft.fft2(st.targets["bandlimited"]))
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(128, px), np.fft.fftfreq(128, px), indexing="ij"))
    support = st.params["bandlimited_support_cycles_per_um"]
    assert spec[f > support * 1.01].max() < 1e-4 * spec.max()
    assert spec[(f > 0.3 * support) & (f < 0.9 * support)].max() > 1e-3 * spec.max()


def test_classical_target_is_a_reconstruction_close_to_the_bandlimited_truth():
    cfg = SimulationConfig(size=64, photons=50.0, target="classical", structures="filaments")
    st = simulate_stack(cfg, seed=4)
    cl = st.targets["classical"]
    assert cl.shape == (128, 128) and cl.dtype == np.float32
    assert st.params["classical"]["photons"] == 1000.0
    r = np.corrcoef(cl.ravel(), st.targets["bandlimited"].ravel())[0, 1]
    assert r > 0.8


@pytest.mark.parametrize("kwargs, msg", [
    (dict(size=63), "even"),
    (dict(size=16), "size"),
    (dict(photons=(10, 2)), "photons"),
    (dict(photons=-1.0), "photons"),
    (dict(modulation=(0.2, 1.5)), "modulation"),
    (dict(optics=dict(beams=3, phases=3)), "3-beam"),
])
def test_bad_configuration_is_a_one_line_error(kwargs, msg):
    with pytest.raises(SrredsimError, match=msg) as info:
        SimulationConfig.build(**kwargs)
    assert "\n" not in str(info.value)


def test_parse_range():
    assert parse_range("100") == (100.0, 100.0)
    assert parse_range("2:300") == (2.0, 300.0)
    for bad in ("a", "3:2", "1:2:3"):
        with pytest.raises(SrredsimError):
            parse_range(bad)


def _read_folder(out: Path):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_cli_writes_training_layout_reproducibly_for_any_worker_count(tmp_path):
    args = ["simulate", "--count", "2", "--test-count", "1", "--size", "32", "--photons", "5:50",
            "--seed", "11", "--quiet"]
    assert main(args + ["-o", str(tmp_path / "a"), "--workers", "1"]) == 0
    assert main(args + ["-o", str(tmp_path / "b"), "--workers", "2"]) == 0
    a, b = _read_folder(tmp_path / "a"), _read_folder(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    names = sorted(a)
    for sub in ("trainx", "trainy", "truth", "params"):
        assert any(n.startswith(sub + "/sim_00001") for n in names)
    assert "testx/test_00000.tif" in names and "testy/test_00000.tif" in names
    raw, meta = read_raw_stack(tmp_path / "a/trainx/sim_00000.tif", frames=15)
    assert raw.dtype == np.uint16 and raw.shape == (15, 32, 32) and meta.pixel_size_um == pytest.approx(0.08)
    y, ymeta = read_reference(tmp_path / "a/trainy/sim_00000.tif")
    assert y.shape == (64, 64) and ymeta.pixel_size_um == pytest.approx(0.04)
    params = json.loads((tmp_path / "a/params/sim_00000.json").read_text())
    assert params["name"] == "sim_00000" and 5 <= params["photons"]["mean"] <= 50
    # an existing folder is refused without --overwrite and left untouched
    assert main(args + ["-o", str(tmp_path / "a")]) == 2
    assert _read_folder(tmp_path / "a") == a


def test_cli_bad_optics_leaves_nothing(tmp_path, capsys):
    rc = main(["simulate", "-o", str(tmp_path / "x"), "--count", "1", "--size", "32", "--na", "1.6"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "refractive index" in err
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_installed_console_script(tmp_path):
    exe = Path(sys.executable).with_name("srredsim")
    if not exe.exists():
        pytest.skip("console script not installed (pip install -e .)")
    out = tmp_path / "data"
    res = subprocess.run([str(exe), "simulate", "-o", str(out), "--count", "1", "--size", "32", "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (out / "trainx" / "sim_00000.tif").exists() and (out / "truth" / "sim_00000.tif").exists()
    res = subprocess.run([str(exe), "simulate", "-o", str(tmp_path / "bad"), "--size", "33"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "even" in res.stderr and res.stderr.strip().count("\n") == 0
