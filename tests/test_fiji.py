"""``srredsim fiji-check`` (srredsim/fiji_check.py) and the Fiji helpers (srredsim/fiji.py).

The real Fiji round trip (DeepImageJ + fairSIM through pyimagej) runs only when ``FIJI_DIR``
names a Fiji.app with DeepImageJ 3, fairSIM and Jython; otherwise it is reported as skipped with
that reason. Everything that needs no Fiji runs here: what-is-missing reporting, the macro
syntax, and ``--without-fiji`` end to end (JVM engines, srredsim prediction, classical).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import export_package, make_tiny_run, srredsim_cli, tools_missing
from srredsim.fiji import DIJ_KEYS, deepimagej_macro, fiji_status

FIJI_DIR = os.environ.get("FIJI_DIR")


def _fake_fiji(root: Path, dij: str | None = "DeepImageJ-3.1.0.jar", fairsim: bool = True, jython: bool = True) -> Path:
    fiji = root / "Fiji.app"
    (fiji / "jars").mkdir(parents=True)
    (fiji / "plugins").mkdir()
    (fiji / "jars" / "ij-1.54f.jar").write_bytes(b"")
    (fiji / "ImageJ-linux64").write_bytes(b"")
    if dij:
        (fiji / "plugins" / dij).write_bytes(b"")
    if fairsim:
        (fiji / "plugins" / "fairSIM_plugin_v1.5.0.jar").write_bytes(b"")
    if jython:
        (fiji / "jars" / "jython-slim-2.7.3.jar").write_bytes(b"")
    return fiji


def test_status_without_fiji_says_what_is_missing():
    st = fiji_status(None)
    assert not st.ok
    assert any("--fiji" in m and "FIJI_DIR" in m for m in st.missing)


def test_status_of_an_incomplete_installation(tmp_path):
    st = fiji_status(_fake_fiji(tmp_path, dij=None, fairsim=False, jython=False))
    text = "\n".join(st.missing)
    assert "DeepImageJ" in text and "fairSIM" in text and "Jython" in text
    assert st.launcher is not None and st.launcher.name == "ImageJ-linux64"


def test_status_of_a_complete_installation(tmp_path):
    st = fiji_status(_fake_fiji(tmp_path))
    assert st.deepimagej_version == "3.1.0" and [p.name for p in st.fairsim] == ["fairSIM_plugin_v1.5.0.jar"]
    pyimagej_missing = [m for m in st.missing if m.startswith("pyimagej")]
    assert st.missing == pyimagej_missing  # nothing else lacks
    assert any("engine" in w for w in st.warnings)  # no engines downloaded yet in this fake


def test_old_deepimagej_is_refused(tmp_path):
    st = fiji_status(_fake_fiji(tmp_path, dij="DeepImageJ-2.1.16.jar"))
    assert any("DeepImageJ 3" in m for m in st.missing)


def test_macro_keys_for_deepimagej_3_1_and_3_0(tmp_path):
    m31 = deepimagej_macro(tmp_path / "model", tmp_path / "raw.tif", tmp_path / "out")
    assert m31.startswith('run("DeepImageJ Run", "model_path=[') and "input_path=[" in m31
    assert "output_folder=[" in m31 and m31.endswith('display_output=null");')
    m30 = deepimagej_macro(tmp_path / "model", tmp_path / "raw.tif", tmp_path / "out", version="3.0.5")
    assert all(k in m30 for k in DIJ_KEYS["3.0"])


def test_shipped_fiji_files_exist():
    import srredsim
    from srredsim.fiji import DEEPIMAGEJ_MACRO, FAIRSIM_SCRIPT, fiji_files_dir

    d = fiji_files_dir()
    assert d.parent == Path(srredsim.__file__).parent  # package data: a wheel install has them
    for name in (DEEPIMAGEJ_MACRO, FAIRSIM_SCRIPT, "README.md"):
        assert (d / name).is_file(), name
    macro = (d / DEEPIMAGEJ_MACRO).read_text()
    assert 'run("DeepImageJ Run"' in macro and "model_path=" in macro
    script = (d / FAIRSIM_SCRIPT).read_text()
    assert "org.fairsim" in script and "#@ File" in script
    compile(script, FAIRSIM_SCRIPT, "exec")  # Jython 2.7 syntax is a subset we keep Python-3 parseable


def test_fiji_check_cli_without_fiji_reports_missing(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg.zip"
    pkg.write_bytes(b"PK")
    raw = tmp_path / "raw.tif"
    raw.write_bytes(b"II")
    monkeypatch.delenv("FIJI_DIR", raising=False)
    proc = srredsim_cli("fiji-check", str(pkg), str(raw))
    assert proc.returncode == 2
    assert "MISSING" in proc.stderr and "Fiji installation" in proc.stderr
    assert "--without-fiji" in proc.stderr
    proc = srredsim_cli("fiji-check", str(pkg), str(raw), "--fiji", str(_fake_fiji(tmp_path, fairsim=False)))
    assert proc.returncode == 2 and "fairSIM" in proc.stderr


def test_fiji_check_cli_bad_paths(tmp_path):
    proc = srredsim_cli("fiji-check", str(tmp_path / "none.zip"), str(tmp_path / "raw.tif"))
    assert proc.returncode == 2 and "no such package" in proc.stderr


@pytest.fixture(scope="module")
def package_and_raw(tmp_path_factory):
    from srredsim.config import OpticsConfig
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.tiff import write_tiff

    root = tmp_path_factory.mktemp("fiji_check")
    run = make_tiny_run(root / "run")
    pkg = export_package(run, root / "model.bioimageio.zip")
    raw = write_tiff(root / "raw.tif", synthetic_raw_stack(OpticsConfig(), size=96, seed=5), pixel_size_um=0.08)
    return pkg, raw


@pytest.mark.jvm
@pytest.mark.slow
@pytest.mark.skipif(bool(tools_missing()), reason=f"JVM harness unavailable: {tools_missing()}")
def test_fiji_check_without_fiji_end_to_end(package_and_raw, tmp_path):
    pkg, raw = package_and_raw
    proc = srredsim_cli("fiji-check", str(pkg), str(raw), "--without-fiji", "-o", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    assert "oneDNN" not in proc.stderr and "absl" not in proc.stderr
    (dij,) = [r for r in report["comparisons"] if r["a"] == "deepimagej" and r["b"] == "srredsim"]
    assert dij["passed"] and dij["max_abs_diff"] < 1e-4
    assert "engine-equivalent" in report["sources"]["deepimagej"]
    from srredsim.tiff import read_reference

    for name in ("jvm_sr.tif", "srredsim_sr.tif", "classical_sr.tif"):
        img, meta = read_reference(tmp_path / "out" / name)
        assert img.shape == (192, 192) and meta.pixel_size_um == pytest.approx(0.04)
        assert np.all(np.isfinite(img))


@pytest.mark.fiji
@pytest.mark.slow
@pytest.mark.skipif(not FIJI_DIR, reason="FIJI_DIR is not set: the Fiji round trip (DeepImageJ and fairSIM in "
                                         "Fiji through pyimagej) was not run; see docs/fiji.md")
def test_fiji_round_trip_with_deepimagej_and_fairsim(package_and_raw, tmp_path):
    pkg, raw = package_and_raw
    st = fiji_status(FIJI_DIR)
    assert st.ok, "FIJI_DIR lacks: " + "; ".join(st.missing)
    report_file = tmp_path / "out" / "report.json"
    proc = srredsim_cli("fiji-check", str(pkg), str(raw), "--fiji", FIJI_DIR, "-o", str(tmp_path / "out"),
                        timeout=1800)
    assert report_file.exists(), proc.stdout + proc.stderr
    report = json.loads(report_file.read_text())
    (dij,) = [r for r in report["comparisons"] if r["a"] == "deepimagej" and r["b"] == "srredsim"]
    assert dij["passed"], dij
    assert "fairsim" in report["shapes"], report["sources"].get("fairsim")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_fairsim_does_not_require_fairsim(tmp_path, monkeypatch, capsys):
    """With --no-fairsim a Fiji without fairSIM and Jython passes the installation check (and fails later, on
    the garbage package, for that reason); without it the same installation is refused for lacking them."""
    from srredsim import fiji
    from srredsim.cli import main

    pkg = tmp_path / "pkg.zip"
    pkg.write_bytes(b"PK")
    raw = tmp_path / "raw.tif"
    raw.write_bytes(b"II")
    installation = _fake_fiji(tmp_path, fairsim=False, jython=False)
    real_status = fiji.fiji_status

    def status_with_pyimagej(path):  # pyimagej is not installed here: pretend it is
        st = real_status(path)
        st.missing = [m for m in st.missing if not m.startswith("pyimagej")]
        return st

    def error_line():
        return [line for line in capsys.readouterr().err.splitlines() if "error:" in line][-1]

    monkeypatch.setattr(fiji, "fiji_status", status_with_pyimagej)
    rc = main(["fiji-check", str(pkg), str(raw), "--fiji", str(installation)])
    err = error_line()
    assert rc == 2 and "fairSIM" in err and "Jython" in err, err
    rc = main(["fiji-check", str(pkg), str(raw), "--fiji", str(installation), "--no-fairsim"])
    err = error_line()
    assert rc == 2, err
    assert "cannot run; missing" not in err and "fairSIM" not in err and "Jython" not in err, err
    assert str(pkg) in err  # it got past the installation check to the (garbage) package


def test_blocking_missing_ignores_fairsim_only_when_asked(tmp_path):
    from srredsim.fiji_check import blocking_missing

    st = fiji_status(_fake_fiji(tmp_path, dij=None, fairsim=False, jython=False))
    with_fairsim = " ".join(blocking_missing(st, fairsim=True))
    without = " ".join(blocking_missing(st, fairsim=False))
    assert "fairSIM" in with_fairsim and "Jython" in with_fairsim and "DeepImageJ" in with_fairsim
    assert "fairSIM" not in without and "Jython" not in without and "DeepImageJ" in without


def test_compare_results_gates_only_deepimagej_against_srredsim():
    from srredsim.fiji_check import compare_results

    rng = np.random.default_rng(0)
    ref = rng.random((64, 64)).astype(np.float32) * 100
    near = ref + 1e-3 * (ref.max() - ref.min()) * 0.5  # half the tolerance, relative to the range
    far = ref + 0.01 * (ref.max() - ref.min())
    border = np.array(ref)
    border[:4] += 50  # differs only within the excluded border
    ok = compare_results({"srredsim": ref, "deepimagej": near, "classical": ref[::-1].copy()}, {}, 1e-3)
    assert ok["ok"] and ok["comparisons"][0]["passed"] is True
    assert all("passed" not in r for r in ok["comparisons"][1:])  # the classical pair is information only
    assert not compare_results({"srredsim": ref, "deepimagej": far}, {}, 1e-3)["ok"]
    assert compare_results({"srredsim": ref, "deepimagej": border}, {}, 1e-3, border=8)["ok"]
    assert not compare_results({"srredsim": ref}, {}, 1e-3)["ok"]  # DeepImageJ did not run
    shapes = compare_results({"srredsim": ref, "deepimagej": ref[:32]}, {}, 1e-3)
    assert not shapes["ok"] and "shapes differ" in shapes["comparisons"][0]["error"]


def test_fiji_check_refuses_an_existing_report(tmp_path, capsys):
    from srredsim.cli import main

    pkg = tmp_path / "pkg.zip"
    pkg.write_bytes(b"PK")
    raw = tmp_path / "raw.tif"
    raw.write_bytes(b"II")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").write_text("{}")
    rc = main(["fiji-check", str(pkg), str(raw), "--without-fiji", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "report.json exists" in err and "--overwrite" in err
