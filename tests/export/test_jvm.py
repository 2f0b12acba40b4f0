"""The engine-equivalent DeepImageJ check: the JVM harness (srredsim/_jvm) run on packages made by
``srredsim export``.

Tests marked ``jvm`` build the Maven project (once, cached under <srredsim cache>/jvm; a cold
build downloads ~230 MB from Maven Central and takes ~1-2 min) and skip with the reason when
Java 17 or Maven is missing. The fast tests at the top need neither.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import export_package, make_tiny_run, srredsim_cli, tools_missing  # noqa: F401
from srredsim.errors import SrredsimError
from srredsim.export import jvm

PARITY = 1e-4  # the bar: JVM engines vs Python ONNX Runtime on the test tensors


def break_onnx(package: Path, out: Path, kind: str, run: Path | None = None) -> Path:
    """A copy of ``package`` whose ONNX weights DeepImageJ's ONNX Runtime 1.13.1 cannot load.

    ``opset18``: the network converted again by tf2onnx at opset 18 (a valid model that current
    ONNX Runtime runs); ``ir10``: the same graph stamped IR version 10. rdf.yaml's sha256 and
    opset_version are updated, so the package is otherwise consistent.
    """
    import onnx
    import yaml

    with zipfile.ZipFile(package) as zin:
        rdf = yaml.safe_load(zin.read("rdf.yaml"))
        entry = rdf["weights"]["onnx"]
        model = onnx.load_from_string(zin.read(entry["source"]))
        members = {n: zin.read(n) for n in zin.namelist()}
    if kind == "opset18":
        from srredsim.export.onnx_export import convert_to_onnx
        from srredsim.runfolder import load_run

        assert run is not None
        model = convert_to_onnx(load_run(run).load_model(), opset=18)
        entry["opset_version"] = 18
    elif kind == "ir10":
        model.ir_version = 10
    else:
        raise ValueError(kind)
    data = model.SerializeToString()
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    members[entry["source"]] = data
    members["rdf.yaml"] = yaml.safe_dump(rdf, sort_keys=False).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, blob in members.items():
            zout.writestr(name, blob)
    return out


# ---- fast tests: no Java needed -----------------------------------------------------------------

def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SrredsimError) as err:
        jvm.find_tools()
    msg = str(err.value)
    assert "Java 17" in msg and "Maven" in msg and "apt-get install" in msg


def test_missing_maven_only(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mvn" else real(name))
    if not (os.environ.get("JAVA_HOME") or real("java")):
        pytest.skip("no java here")
    with pytest.raises(SrredsimError, match="Maven"):
        jvm.find_tools(need_maven=True)


def test_parse_results_reads_only_result_lines():
    out = ("some TF log line\n[PASS] check onnx: ok\n"
           'SRREDSIM_JVM_RESULT {"kind": "check", "engine": "onnx", "weights_format": "onnx", '
           '"status": "passed", "ok": true, "detail": "fine", "max_abs_diff": 1e-07}\n'
           "SRREDSIM_JVM_RESULT {not json\n")
    res = jvm.parse_results(out)
    assert len(res) == 1 and res[0].ok and res[0].engine == "onnx"
    assert res[0].max_abs_diff == pytest.approx(1e-7)


def test_source_hash_is_stable_and_covers_sources(tmp_path):
    src = tmp_path / "jvm"
    shutil.copytree(jvm.source_dir(), src, ignore=shutil.ignore_patterns("target"))
    h1 = jvm.source_hash(src)
    assert h1 == jvm.source_hash(src)
    java = next((src / "src").rglob("Main.java"))
    java.write_text(java.read_text() + "\n// changed\n")
    assert jvm.source_hash(src) != h1


def test_jvm_rows_are_the_one_check_result_type(monkeypatch):
    """run_jvm_checks turns the harness's result lines into export.checks.CheckResult rows."""
    from srredsim.export.checks import CheckResult
    from srredsim.export.validate import CheckResult as ValidateCheckResult

    lines = "\n".join(jvm.RESULT_PREFIX + line for line in (
        '{"kind": "check", "weights_format": "onnx", "status": "failed", "ok": false, "detail": "IR 10", '
        '"engine_version": "ONNX Runtime Java 1.13.1", "seconds": 1.5}',
        '{"kind": "check", "weights_format": "tensorflow_saved_model_bundle", "status": "passed", "ok": true, '
        '"detail": "max |diff| 1e-7", "seconds": 2.0}',
        '{"kind": "check", "weights_format": "keras_hdf5", "status": "skipped", "ok": true, "detail": "not run"}',
        '{"kind": "package", "status": "error", "ok": false, "detail": "no rdf.yaml"}'))
    fake = jvm.JvmRun(returncode=1, results=jvm.parse_results(lines), stdout=lines, stderr="", seconds=3.0)
    monkeypatch.setattr(jvm, "check_package", lambda package: fake)
    rows = jvm.run_jvm_checks("pkg.zip")
    assert ValidateCheckResult is CheckResult  # validate uses the same type, not a copy
    assert all(type(r) is CheckResult for r in rows)
    assert [(r.name, r.status) for r in rows] == [
        ("jvm.onnx", "fail"), ("jvm.tensorflow_saved_model_bundle", "pass"), ("jvm.keras_hdf5", "skip"),
        ("jvm.package", "fail")]
    assert rows[0].detail.startswith("on ONNX Runtime Java 1.13.1 (as in DeepImageJ): IR 10")
    assert rows[0].seconds == pytest.approx(1.5)


def test_harness_without_result_lines_is_one_failed_row(monkeypatch):
    fake = jvm.JvmRun(returncode=1, results=[], stdout="", stderr="Exception in thread main", seconds=0.5)
    monkeypatch.setattr(jvm, "check_package", lambda package: fake)
    (row,) = jvm.run_jvm_checks("pkg.zip")
    assert row.name == "jvm.harness" and row.failed and "Exception in thread main" in row.detail


def test_harness_sources_ship_inside_the_package():
    """A wheel carries the Maven project: it lives in srredsim/_jvm (package data), not beside the package."""
    import srredsim

    src = jvm.source_dir()
    assert src.parent == Path(srredsim.__file__).parent
    assert (src / "pom.xml").is_file() and any((src / "src").rglob("Main.java"))


def test_builds_are_cached_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SRREDSIM_JVM_JAR", raising=False)
    assert jvm.cache_root() == tmp_path / "cache" / "jvm"
    assert jvm.cached_jar() is None  # nothing built in the fresh cache


# ---- JVM tests ----------------------------------------------------------------------------------

needs_jvm = pytest.mark.skipif(bool(tools_missing()), reason=f"JVM harness unavailable: {tools_missing()}")


@pytest.fixture(scope="module")
def built_jar() -> Path:
    return jvm.build_jar()


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("jvm_pkg")
    run = make_tiny_run(root / "run")
    return run, export_package(run, root / "model.bioimageio.zip")


@pytest.mark.jvm
@needs_jvm
def test_build_is_cached(built_jar):
    assert built_jar.is_file() and (built_jar.parent / "lib").is_dir()
    names = {p.name for p in (built_jar.parent / "lib").iterdir()}
    assert {"onnxruntime-1.13.1.jar", "tensorflow-core-api-0.5.0.jar",
            "tensorflow-core-api-0.5.0-linux-x86_64.jar", "ij-1.54p.jar"} <= names
    import time

    t0 = time.perf_counter()
    assert jvm.build_jar() == built_jar
    assert time.perf_counter() - t0 < 5


@pytest.mark.jvm
@needs_jvm
def test_info_reports_deepimagej_engines(built_jar):
    run = jvm.run_harness(["info"])
    assert run.returncode == 0
    info = run.results[0].data
    assert info["tensorflow"] == "2.10.1" and info["onnxruntime"] == "1.13.1" and info["imagej"] == "1.54p"


@pytest.mark.jvm
@pytest.mark.slow
@needs_jvm
def test_both_engines_pass_and_match_python_onnxruntime(built_jar, tiny_package, tmp_path, capsys):
    """Engine parity: TF Java 0.5.0 and ORT Java 1.13.1 vs Python ONNX Runtime within 1e-4."""
    import onnxruntime as ort
    import yaml

    from srredsim.config import NormalizationConfig
    from srredsim.normalization import normalize_raw

    _, pkg = tiny_package
    run = jvm.check_package(pkg, save_outputs=tmp_path)
    checks = {r.weights_format: r for r in run.results if r.kind == "check"}
    assert run.returncode == 0, run.stdout + run.stderr
    for fmt in ("tensorflow_saved_model_bundle", "onnx"):
        assert checks[fmt].status == "passed", checks[fmt].detail

    with zipfile.ZipFile(pkg) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
        onnx_bytes = z.read(rdf["weights"]["onnx"]["source"])
        z.extract("test_input.npy", tmp_path / "pkg")
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    test_in = np.load(tmp_path / "pkg" / "test_input.npy")

    # pre-processing in Java == srredsim's normalisation (scale_range over channel, y, x)
    pre_java = np.load(tmp_path / "onnx-raw-preprocessed.npy")
    pre_py = normalize_raw(test_in, NormalizationConfig(mode="percentile"))
    assert np.max(np.abs(pre_java - pre_py)) < 1e-5 * max(1.0, float(np.abs(pre_py).max()))

    diffs = {}
    for engine in ("onnx", "tensorflow"):
        x = np.load(tmp_path / f"{engine}-raw-preprocessed.npy")
        y_java = np.load(tmp_path / f"{engine}-sr-model.npy")
        y_py = sess.run(None, {name: x})[0]
        assert y_java.shape == y_py.shape == (1, 2 * x.shape[1], 2 * x.shape[2], 1)
        diffs[engine] = float(np.max(np.abs(y_java - y_py)))
        assert diffs[engine] < PARITY, (engine, diffs[engine])
    with capsys.disabled():
        print(f"\n[jvm parity] max |JVM - Python ORT {ort.__version__}| on the test tensors: "
              f"TF Java 0.5.0 {diffs['tensorflow']:.2e}, ORT Java 1.13.1 {diffs['onnx']:.2e}")


@pytest.mark.jvm
@pytest.mark.slow
@needs_jvm
@pytest.mark.parametrize("kind", ["opset18", "ir10"])
def test_onnx_newer_than_deepimagej_fails_like_deepimagej(built_jar, tiny_package, tmp_path, kind):
    import onnxruntime as ort

    run, pkg = tiny_package
    broken = break_onnx(pkg, tmp_path / f"{kind}.zip", kind, run=run)
    if kind == "opset18":  # a valid model: current ONNX Runtime runs it, DeepImageJ's cannot
        with zipfile.ZipFile(broken) as z:
            ort.InferenceSession(z.read("model.onnx"), providers=["CPUExecutionProvider"])
    res = jvm.check_package(broken, weights=["onnx"])
    assert res.returncode == 1
    (r,) = [r for r in res.results if r.kind == "check"]
    assert r.status == "failed" and r.data.get("stage") == "load"
    expected = ("Current official support for domain ai.onnx is till opset 17" if kind == "opset18"
                else "Unsupported model IR version: 10, max supported IR version: 8")
    assert expected in r.detail
    checks = {c.name: c for c in jvm.run_jvm_checks(broken)}
    assert checks["jvm.onnx"].status == "fail"
    assert checks["jvm.tensorflow_saved_model_bundle"].status == "pass"


@pytest.mark.jvm
@pytest.mark.slow
@needs_jvm
def test_validate_jvm_reports_broken_onnx(built_jar, tiny_package, tmp_path):
    """`srredsim validate --jvm` surfaces the JVM failure."""
    _, pkg = tiny_package
    broken = break_onnx(pkg, tmp_path / "ir10.zip", "ir10")
    proc = srredsim_cli("validate", str(broken), "--jvm", "--no-core", "--no-parity")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "jvm.onnx" in out and "IR version" in out


@pytest.mark.jvm
@pytest.mark.slow
@needs_jvm
@pytest.mark.parametrize("size", [64, 70])
def test_imagej_tiff_round_trip_on_the_engines(built_jar, tiny_package, tmp_path, size):
    """Raw TIFF opened by ImageJ 1.x -> model on ORT Java -> ImageJ TIFF with half the pixel size,
    equal to ``srredsim predict`` on the package's ONNX weights (both mirror the image by the halo)."""
    from srredsim.config import OpticsConfig
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.runtime import open_model
    from srredsim.tiff import read_reference, write_tiff

    _, pkg = tiny_package
    raw = synthetic_raw_stack(OpticsConfig(), size=size, seed=3)
    raw_tif = write_tiff(tmp_path / "raw.tif", raw, pixel_size_um=0.08)
    out_tif = tmp_path / "sr.tif"
    res = jvm.predict_tiff(pkg, raw_tif, out_tif, weights="onnx")
    assert res.ok
    sr, meta = read_reference(out_tif)
    assert sr.shape == (2 * size, 2 * size)
    assert meta.pixel_size_um == pytest.approx(0.04)

    ref = open_model(pkg, engine="onnx", precision="fp32").predict(raw)
    if size % 16 == 0:  # a valid size: only the halo mirrored, as srredsim does: the whole image must agree
        assert np.max(np.abs(sr - ref)) < PARITY
    else:  # also padded to 80 px (JVM: mirror, srredsim: reflect) and cropped: the interior agrees
        m = 24
        assert np.max(np.abs(sr[m:-m, m:-m] - ref[m:-m, m:-m])) < PARITY


@pytest.mark.jvm
@needs_jvm
def test_bad_package_is_reported_not_crashed(built_jar, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("rdf.yaml", "type: model\nformat_version: 0.5.4\ninputs: 3\n")
    res = jvm.run_jvm_checks(bad)
    assert len(res) == 1 and res[0].name == "jvm.package"
    assert "inputs" in res[0].detail


@pytest.mark.jvm
@pytest.mark.slow
@needs_jvm
def test_globally_normalised_package_scale_linear_pre_and_post(built_jar, tmp_path):
    """The paper's global min/max normalisation: scale_linear before and after the network."""
    import yaml

    run = make_tiny_run(tmp_path / "run", normalization={"mode": "global", "x_min": 100.0, "x_max": 3000.0,
                                                          "y_min": 0.0, "y_max": 2.0})
    pkg = export_package(run, tmp_path / "global.zip")
    with zipfile.ZipFile(pkg) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
    ops = [p["id"] for p in rdf["inputs"][0]["preprocessing"] + rdf["outputs"][0]["postprocessing"]]
    assert ops.count("scale_linear") == 2, ops
    res = jvm.check_package(pkg)
    checks = [r for r in res.results if r.kind == "check" and r.status != "skipped"]
    assert res.returncode == 0 and len(checks) == 2, res.stdout
    assert all(r.status == "passed" for r in checks), [r.detail for r in checks]
