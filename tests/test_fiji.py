"""``srredsim fiji-check`` and the Fiji helpers.

The real Fiji round trip (DeepImageJ + fairSIM through pyimagej) runs only when ``FIJI_DIR``
names a Fiji.app with DeepImageJ 3, fairSIM and Jython; otherwise it is reported as skipped with
that reason. Everything that needs no Fiji runs here: what-is-missing reporting, the macro
syntax, and ``--without-fiji`` end to end (JVM engines, srredsim prediction, classical).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from srredsim.fiji import DIJ_KEYS, deepimagej_macro, fiji_status

sys.path.insert(0, str(Path(__file__).parent))
from test_jvm import export_package, make_tiny_run, srredsim_cli, tools_missing  # noqa: E402

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
    from srredsim.fiji import DEEPIMAGEJ_MACRO, FAIRSIM_SCRIPT, fiji_files_dir

    d = fiji_files_dir()
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
    assert "MISSING" in proc.stdout and "Fiji installation" in proc.stdout
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
    report_file = tmp_path / "report.json"
    proc = srredsim_cli("fiji-check", str(pkg), str(raw), "--without-fiji", "-o", str(tmp_path / "out"),
                        "--json", str(report_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(report_file.read_text())
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
    report_file = tmp_path / "report.json"
    proc = srredsim_cli("fiji-check", str(pkg), str(raw), "--fiji", FIJI_DIR, "-o", str(tmp_path / "out"),
                        "--json", str(report_file), timeout=1800)
    assert report_file.exists(), proc.stdout + proc.stderr
    report = json.loads(report_file.read_text())
    (dij,) = [r for r in report["comparisons"] if r["a"] == "deepimagej" and r["b"] == "srredsim"]
    assert dij["passed"], dij
    assert "fairsim" in report["shapes"], report["sources"].get("fairsim")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_fairsim_does_not_require_fairsim(tmp_path, monkeypatch):
    """With --no-fairsim only DeepImageJ (and pyimagej) are required; the missing list says so."""
    pkg = tmp_path / "pkg.zip"
    pkg.write_bytes(b"PK")
    raw = tmp_path / "raw.tif"
    raw.write_bytes(b"II")
    fiji = _fake_fiji(tmp_path, fairsim=False, jython=False)
    proc = srredsim_cli("fiji-check", str(pkg), str(raw), "--fiji", str(fiji), "--no-fairsim")
    assert "fairSIM" not in proc.stderr and "Jython" not in proc.stderr
