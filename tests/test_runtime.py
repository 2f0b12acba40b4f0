"""srredsim.runtime: one model handle on every engine and precision, the measured `auto` choice,
the per-user cache, and `--weights last`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_run
from srredsim.errors import SrredsimError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("runtime") / "tiny", filters=8, depth=2, positive_biases=True,
                         last_weights=True)


@pytest.fixture(scope="module")
def raw(run_dir):
    from srredsim.config import RunConfig
    from srredsim.export.testdata import synthetic_raw_stack

    return synthetic_raw_stack(RunConfig.load(run_dir).optics, 64, seed=5)


def _keras_reference(run_dir, raw, which):
    from srredsim.runtime import open_model

    with open_model(run_dir, engine="keras", precision="fp32", weights=which) as m:
        return m.predict(raw)


def test_weights_last_runs_the_last_weights_on_every_engine(run_dir, raw):
    """`--weights last` used to reach only the Keras engine; the others silently ran the best weights."""
    from srredsim.runtime import open_model

    best, last = _keras_reference(run_dir, raw, "best"), _keras_reference(run_dir, raw, "last")
    assert np.abs(best - last).max() > 1e-2  # the two weight files really differ
    for engine in ("onnx", "openvino", "savedmodel"):
        with open_model(run_dir, engine=engine, precision="fp32", weights="last") as m:
            assert m.weights == "last" and "last weights" in m.describe()
            assert np.abs(m.predict(raw) - last).max() <= 1e-4, engine
        with open_model(run_dir, engine=engine, precision="fp32") as m:
            assert np.abs(m.predict(raw) - best).max() <= 1e-4, engine
    with open_model(run_dir, weights="last") as m:  # auto engine and precision
        assert np.abs(m.predict(raw) - last).max() < np.abs(m.predict(raw) - best).max()


def test_conversions_go_to_the_user_cache_never_the_model_folder(run_dir, tmp_path, monkeypatch):
    from srredsim.runtime import open_model

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    before = sorted(p.name for p in run_dir.rglob("*"))
    with open_model(run_dir, engine="onnx"):
        pass
    with open_model(run_dir, engine="savedmodel"):
        pass
    assert sorted(p.name for p in run_dir.rglob("*")) == before
    engines = tmp_path / "cache" / "engines"
    assert len(list(engines.glob("*.onnx"))) == 1 and len(list(engines.glob("*.savedmodel"))) == 1
    # the last weights are another network: another conversion
    with open_model(run_dir, engine="onnx", weights="last"):
        pass
    assert len(list(engines.glob("*.onnx"))) == 2


def test_every_engine_and_precision_agrees_with_keras_fp32(run_dir, raw):
    from srredsim.runtime import open_model
    from srredsim.runtime.choice import MIN_PSNR_DB, psnr_db
    from srredsim.runtime.openvino_engine import supports_bf16

    ref = _keras_reference(run_dir, raw, "best")
    assert ref.std() > 0
    cases = [("savedmodel", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"), ("keras", "bf16")]
    if supports_bf16():
        cases.append(("openvino", "bf16"))
    for engine, precision in cases:
        with open_model(run_dir, engine=engine, precision=precision) as m:
            assert (m.engine, m.precision) == (engine, precision)
            y = m.predict(raw)
            if precision == "fp32":
                assert np.abs(y - ref).max() <= 1e-4, engine
            else:  # bf16: close, not equal
                assert 0 < np.abs(y - ref).max() and psnr_db(y, ref) >= MIN_PSNR_DB - 15, (engine, psnr_db(y, ref))
            tiled = m.predict(raw, tile=48, halo=m.halo)
            assert np.abs(tiled - y).max() <= 1e-3 * max(1.0, float(np.abs(y).max())) + (
                0 if precision == "fp32" else 0.02 * float(np.ptp(y))), engine


def test_auto_measures_once_then_reads_the_cache(run_dir, tmp_path, monkeypatch):
    from srredsim.runtime import open_model
    from srredsim.runtime import choice as choice_mod
    from srredsim.runtime.openvino_engine import supports_bf16

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    lines: list[str] = []
    with open_model(run_dir, log=lines.append) as m:
        first = (m.engine, m.precision)
        assert "measured now" in m.choice
    assert any("measuring openvino fp32" in s for s in lines) and any("measuring onnx fp32" in s for s in lines)
    records = list((tmp_path / "cache" / "precision").glob("*.json"))
    assert len(records) == 1
    rec = json.loads(records[0].read_text())
    labels = set(rec["candidates"])
    assert {"onnx/fp32", "openvino/fp32"} <= labels
    assert ("openvino/bf16" in labels) == supports_bf16()
    fastest = min((r["seconds"], k) for k, r in rec["candidates"].items() if r["ok"])[1]
    assert fastest == "/".join(first)
    if "openvino/bf16" in labels:
        row = rec["candidates"]["openvino/bf16"]
        assert row["ok"] == (row["psnr_db"] >= choice_mod.MIN_PSNR_DB and row["max_rel_diff"] <= choice_mod.MAX_REL_DIFF)
    # second time: nothing measured, same choice
    lines.clear()
    with open_model(run_dir, log=lines.append) as m:
        assert (m.engine, m.precision) == first and "measured 20" in m.choice
    assert lines == []
    # a stricter tolerance makes a new measurement (it is part of the record's key) that refuses bf16
    monkeypatch.setattr(choice_mod, "MIN_PSNR_DB", 1000.0)
    with open_model(run_dir, log=lines.append) as m:
        assert m.precision == "fp32"
    assert lines and len(list((tmp_path / "cache" / "precision").glob("*.json"))) == 2


def test_bf16_is_not_a_candidate_without_bf16_hardware(run_dir, monkeypatch, tmp_path):
    from srredsim.runtime import choice, open_model
    from srredsim.runtime import openvino_engine

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(openvino_engine, "supports_bf16", lambda: False)
    monkeypatch.setattr(choice, "fast_bf16", lambda engine: False)
    assert choice.candidates(("keras", "savedmodel", "onnx", "openvino"), None, None) == [
        ("openvino", "fp32"), ("onnx", "fp32")]
    with pytest.raises(SrredsimError, match="no bf16 arithmetic on this CPU"):
        open_model(run_dir, engine="openvino", precision="bf16")
    with open_model(run_dir) as m:
        assert m.precision == "fp32"


def test_bad_engine_and_precision_requests_are_one_line_errors(run_dir, tmp_path):
    from srredsim.runtime import open_model

    with pytest.raises(SrredsimError, match="runs fp32 only"):
        open_model(run_dir, engine="onnx", precision="bf16")
    with pytest.raises(SrredsimError, match="unknown engine"):
        open_model(run_dir, engine="torch")
    with pytest.raises(SrredsimError, match="unknown precision"):
        open_model(run_dir, precision="fp8")
    with pytest.raises(SrredsimError, match="unknown weights"):
        open_model(run_dir, weights="middle")
    with pytest.raises(SrredsimError, match="no such model"):
        open_model(tmp_path / "nothing")


def test_artifacts_open_on_the_engines_their_weights_allow(run_dir, raw, tmp_path):
    from srredsim.export.api import export_run
    from srredsim.runtime import open_model

    ref = _keras_reference(run_dir, raw, "best")
    out = export_run(run_dir, "all", tmp_path / "all", test_size=32).outputs
    package, onnx_file = out["bioimageio"], out["onnx"]
    with open_model(package, engine="openvino", precision="fp32") as m:
        assert m.kind == "bioimage.io package" and np.abs(m.predict(raw) - ref).max() <= 1e-4
    with open_model(onnx_file, engine="openvino", precision="fp32") as m:
        assert m.kind == "ONNX file" and np.abs(m.predict(raw) - ref).max() <= 1e-4
    with open_model(package) as m:  # auto: measured on the package's own test input
        assert m.engine in ("onnx", "openvino")
    with pytest.raises(SrredsimError, match="cannot run on the savedmodel engine"):
        open_model(onnx_file, engine="savedmodel")
    with pytest.raises(SrredsimError, match="only a run folder has best and last weights"):
        open_model(package, weights="last")


def test_exports_keep_fp32_weights_even_under_a_mixed_policy(run_dir, tmp_path):
    """bioimage.io packages are for DeepImageJ, which runs fp32: a bf16 policy left set in the
    process (after training, say) must not leak into the exported weights."""
    import keras
    import onnx
    from onnx import TensorProto

    from srredsim.export.api import export_run

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        out = export_run(run_dir, "onnx", tmp_path / "m.onnx").outputs["onnx"]
    finally:
        keras.mixed_precision.set_global_policy(previous)
    proto = onnx.load(str(out))
    half = {TensorProto.BFLOAT16, TensorProto.FLOAT16}
    weights = [i for i in proto.graph.initializer if len(i.dims) == 4]  # the convolution kernels
    assert weights and {i.data_type for i in weights} == {TensorProto.FLOAT}
    assert not {i.data_type for i in proto.graph.initializer} & half
    assert all(i.type.tensor_type.elem_type == TensorProto.FLOAT for i in proto.graph.input)
    casts = [a.i for n in proto.graph.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"]
    assert not set(casts) & half


def test_cli_predict_and_info_say_engine_precision_and_cpu_path(run_dir, raw, tmp_path, capsys):
    from srredsim.cli import main
    from srredsim.hardware import cpu_path
    from srredsim.tiff import write_tiff

    write_tiff(tmp_path / "a.tif", raw, pixel_size_um=0.08)
    assert main(["predict", str(run_dir), str(tmp_path / "a.tif"), "-o", str(tmp_path / "a_sr.tif"),
                 "--engine", "openvino", "--precision", "fp32", "--weights", "last"]) == 0
    err = capsys.readouterr().err  # the progress line
    assert f"on openvino fp32, CPU path {cpu_path()}" in err and "last weights" in err
    assert main(["predict", str(run_dir), str(tmp_path / "a.tif"), "-o", str(tmp_path / "b.tif"),
                 "--engine", "onnx", "--precision", "bf16"]) == 2
    assert "runs fp32 only" in capsys.readouterr().err
    assert main(["info", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"CPU path {cpu_path()}" in out and "predict runs:" in out


def test_openvino_is_imported_without_its_usage_telemetry(tmp_path):
    """`import openvino` sends a usage event and writes ~/intel/ unless its telemetry is hidden; its
    model-conversion API (unused here, 40-100 ms of every command) stays unimported, and both can
    still be imported afterwards."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    code = ("from srredsim.runtime.openvino_engine import core; core(); import sys; "
            "assert 'openvino' in sys.modules and 'openvino.tools.ovc' not in sys.modules; "
            "import openvino_telemetry, importlib.util; assert importlib.util.find_spec('openvino.tools.ovc')")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert not (tmp_path / "intel").exists()


def test_auto_survives_an_engine_that_cannot_run(run_dir, tmp_path, monkeypatch):
    from srredsim.runtime import handle, open_model

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    real = handle._onnx_file_engine

    def no_openvino(engine, path, precision, shape=None, discard=0):
        if engine == "openvino":
            raise RuntimeError("no CPU plugin")
        return real(engine, path, precision, shape)

    monkeypatch.setattr(handle, "_onnx_file_engine", no_openvino)
    with open_model(run_dir) as m:
        assert (m.engine, m.precision) == ("onnx", "fp32")
    (record,) = (tmp_path / "cache" / "precision").glob("*.json")
    rows = json.loads(record.read_text())["candidates"]
    assert rows["openvino/fp32"]["ok"] is False and "no CPU plugin" in rows["openvino/fp32"]["error"]
    monkeypatch.setattr(handle, "_onnx_file_engine", lambda *a: (_ for _ in ()).throw(RuntimeError("broken")))
    for p in (tmp_path / "cache" / "precision").glob("*.json"):
        p.unlink()
    with pytest.raises(SrredsimError, match="no engine could run the model's test tensor.*broken"):
        open_model(run_dir)
