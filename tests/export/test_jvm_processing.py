"""The JVM harness's NPY reader and RDF pre/post-processing, against NumPy (bioimage.io spec 0.5 arithmetic).

Each case is a folder "package" holding only rdf.yaml (processing needs no weights) and is run
through ``java -jar srredsim-jvm.jar process pre|post``. Reference formulas follow
bioimageio.core's proc_ops: NumPy "linear" quantiles per sample, std with ddof 0, eps 1e-6.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import tools_missing

pytestmark = [pytest.mark.jvm,
              pytest.mark.skipif(bool(tools_missing()), reason=f"JVM harness unavailable: {tools_missing()}")]

EPS = 1e-6


@pytest.fixture(scope="module")
def java_jar():
    from srredsim.export import jvm

    return jvm.find_tools(need_maven=False)["java"], jvm.build_jar()


def _run(java_jar, *args) -> subprocess.CompletedProcess:
    java, jar = java_jar
    return subprocess.run([java, "-Djava.awt.headless=true", "-jar", str(jar), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def _package(root: Path, pre: list, post: list | None = None, fmt: str = "0.5.4", axes=None) -> Path:
    axes = axes or [{"type": "batch"}, {"type": "channel", "channel_names": ["a", "b", "c"]},
                    {"type": "space", "id": "y", "size": 20}, {"type": "space", "id": "x", "size": 24}]
    rdf = {"format_version": fmt, "type": "model", "name": "proc",
           "inputs": [{"id": "raw", "axes": axes, "preprocessing": pre}],
           "outputs": [{"id": "out", "axes": axes, "postprocessing": post or []}],
           "weights": {"onnx": {"source": "absent.onnx", "opset_version": 17}}}
    if fmt.startswith("0.4"):
        rdf["inputs"][0]["name"] = rdf["inputs"][0].pop("id")
        rdf["outputs"][0]["name"] = rdf["outputs"][0].pop("id")
        for t in ("inputs", "outputs"):
            for p in rdf[t][0]["preprocessing" if t == "inputs" else "postprocessing"]:
                p["name"] = p.pop("id")
    root.mkdir(parents=True, exist_ok=True)
    (root / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
    return root


def _process(java_jar, tmp_path, pkg, x, stage="pre"):
    np.save(tmp_path / "in.npy", x)
    proc = _run(java_jar, "process", stage, pkg, tmp_path / "in.npy", tmp_path / "out.npy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return np.load(tmp_path / "out.npy")


@pytest.fixture
def x():
    rng = np.random.default_rng(0)
    return (rng.gamma(2.0, 50.0, size=(1, 3, 20, 24)) + np.array([0, 100, 1000])[None, :, None, None]).astype(np.float32)


def _q(a, q, axis):
    return np.quantile(a, q, axis=axis, keepdims=True, method="linear")


def test_scale_range_per_channel(java_jar, tmp_path, x):
    pkg = _package(tmp_path / "p", [{"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 1.0,
                                                                      "max_percentile": 99.5}}])
    lo, hi = _q(x, 0.01, (2, 3)), _q(x, 0.995, (2, 3))
    np.testing.assert_allclose(_process(java_jar, tmp_path, pkg, x), (x - lo) / (hi - lo + EPS), rtol=1e-5, atol=1e-5)


def test_scale_range_whole_sample_matches_srredsim(java_jar, tmp_path, x):
    from srredsim.config import NormalizationConfig
    from srredsim.normalization import normalize_raw

    pkg = _package(tmp_path / "p", [{"id": "scale_range", "kwargs": {"axes": ["channel", "y", "x"],
                                                                      "min_percentile": 0.1, "max_percentile": 99.9}}])
    ref = normalize_raw(x, NormalizationConfig(mode="percentile", low_percentile=0.1, high_percentile=99.9))
    np.testing.assert_allclose(_process(java_jar, tmp_path, pkg, x), ref, rtol=1e-5, atol=1e-6)


def test_zero_mean_unit_variance_and_fixed(java_jar, tmp_path, x):
    pkg = _package(tmp_path / "p", [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}])
    m, s = x.mean(axis=(2, 3), keepdims=True), x.std(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(_process(java_jar, tmp_path, pkg, x), (x - m) / (s + EPS), rtol=1e-4, atol=1e-5)
    mean, std = [1.0, 2.0, 3.0], [10.0, 20.0, 30.0]
    pkg = _package(tmp_path / "q", [{"id": "fixed_zero_mean_unit_variance",
                                     "kwargs": {"axis": "channel", "mean": mean, "std": std}}])
    ref = (x - np.array(mean)[None, :, None, None]) / (np.array(std)[None, :, None, None] + EPS)
    np.testing.assert_allclose(_process(java_jar, tmp_path, pkg, x), ref, rtol=1e-5, atol=1e-5)


def test_scale_linear_along_axis_clip_sigmoid_binarize(java_jar, tmp_path, x):
    gain, offset = [0.01, 0.002, 0.0005], [-0.5, 0.1, 0.0]
    steps = [{"id": "scale_linear", "kwargs": {"axis": "channel", "gain": gain, "offset": offset}},
             {"id": "clip", "kwargs": {"min": 0.2, "max": 0.8}},
             {"id": "sigmoid"}]
    pkg = _package(tmp_path / "p", steps)
    y = x * np.array(gain)[None, :, None, None] + np.array(offset)[None, :, None, None]
    ref = 1 / (1 + np.exp(-np.clip(y, 0.2, 0.8)))
    np.testing.assert_allclose(_process(java_jar, tmp_path, pkg, x), ref, rtol=1e-5, atol=1e-6)
    pkg = _package(tmp_path / "q", [], post=[{"id": "binarize", "kwargs": {"threshold": 150.0}}])
    np.testing.assert_array_equal(_process(java_jar, tmp_path, pkg, x, "post"), (x > 150).astype(np.float32))


def test_format_0_4_axes_and_names(java_jar, tmp_path, x):
    pkg = _package(tmp_path / "p", [{"id": "scale_range", "kwargs": {"mode": "per_sample", "axes": "yx",
                                                                      "min_percentile": 5, "max_percentile": 95}}],
                   fmt="0.4.10", axes="bcyx")
    lo, hi = _q(x, 0.05, (2, 3)), _q(x, 0.95, (2, 3))
    np.testing.assert_allclose(_process(java_jar, tmp_path, pkg, x), (x - lo) / (hi - lo + EPS), rtol=1e-5, atol=1e-5)


def test_unsupported_processing_is_refused_like_deepimagej(java_jar, tmp_path, x):
    pkg = _package(tmp_path / "p", [{"id": "softmax", "kwargs": {"axis": "channel"}}])
    np.save(tmp_path / "in.npy", x)
    proc = _run(java_jar, "process", "pre", pkg, tmp_path / "in.npy", tmp_path / "out.npy")
    assert proc.returncode == 2
    assert "not supported by DeepImageJ" in proc.stdout


@pytest.mark.parametrize("dtype", ["<u1", "<i1", "<i2", "<u2", ">u2", "<i4", "<u4", "<i8", "<f2", "<f4", ">f4", "<f8",
                                   "|b1"])
def test_npy_reader_dtypes(java_jar, tmp_path, dtype):
    rng = np.random.default_rng(1)
    a = (rng.random((2, 3, 5)) * 100).astype(np.dtype(dtype))
    np.save(tmp_path / "a.npy", a)
    proc = _run(java_jar, "npy", tmp_path / "a.npy", tmp_path / "b.npy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    b = np.load(tmp_path / "b.npy")
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_array_equal(b, a.astype(np.float32))


def test_npy_reader_refuses_fortran_order(java_jar, tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((3, 4), np.float32)))
    proc = _run(java_jar, "npy", tmp_path / "f.npy", tmp_path / "g.npy")
    assert proc.returncode == 2 and "Fortran" in proc.stdout
