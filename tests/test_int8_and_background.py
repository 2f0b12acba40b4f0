"""`--precision int8` (srredsim.runtime.quantize: a quantised OpenVINO copy, made once, asked for by
name only) and opening an OpenVINO engine in the background while `srredsim predict` checks its data."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from srredsim.errors import SrredsimError


def test_int8_runs_a_quantised_copy_close_to_fp32_made_once(tiny_run, tiny_stack, tmp_path, monkeypatch, capsys):
    from srredsim.runtime import open_model, quantize
    from srredsim.runtime.choice import psnr_db

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    with open_model(tiny_run, engine="openvino", precision="fp32") as m:
        ref = m.predict(tiny_stack)
    capsys.readouterr()
    lines: list[str] = []
    with open_model(tiny_run, precision="int8", log=lines.append) as m:  # the engine follows from the precision
        assert (m.engine, m.precision) == ("openvino", "int8") and "openvino int8" in m.describe()
        assert "(as asked)" in m.describe()
        y = m.predict(tiny_stack)
    assert any("quantising the network to int8" in s for s in lines)
    assert capsys.readouterr().out == ""  # NNCF's progress bars stay off stdout (srredsim's result lines)
    assert y.shape == ref.shape and np.all(np.isfinite(y))
    # quantised: not the same arithmetic, but the same image (a wrong scale or a broken graph is far off)
    assert np.abs(y - ref).max() > 0 and psnr_db(y, ref) >= 30, psnr_db(y, ref)
    made = list((tmp_path / "cache" / "engines").glob("*.int8/model.xml"))
    assert len(made) == 1 and made[0].with_suffix(".bin").is_file()

    def refuse(*a, **k):
        raise AssertionError("quantised again")

    monkeypatch.setattr(quantize, "quantize", refuse)  # the second open reads the cache
    with open_model(tiny_run, precision="int8") as m:
        assert np.array_equal(m.predict(tiny_stack), y)


def test_the_int8_copy_is_named_by_the_network_and_the_recipe(tmp_path, monkeypatch):
    from srredsim.runtime import quantize

    a, b, c = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"
    a.write_bytes(b"network one")
    b.write_bytes(b"network two")
    c.write_bytes(b"network one")
    assert quantize.int8_key(a) == quantize.int8_key(c) != quantize.int8_key(b)
    before = quantize.int8_key(a)
    monkeypatch.setattr(quantize, "CALIBRATION_PHOTONS", (20.0,))  # another recipe: another copy
    assert quantize.int8_key(a) != before


def test_int8_calibration_leaves_out_inputs_it_cannot_make(tiny_run, tmp_path, monkeypatch):
    from srredsim.runtime import handle, read_model

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    real = handle._Source._synthetic_raw

    def dim_fails(self, size, seed=0, photons=200.0):
        if photons < 10:  # as RED-Net's classical step can at 2 photons
            raise SrredsimError("SIM pattern not found")
        return real(self, size, seed, photons)

    monkeypatch.setattr(handle._Source, "_synthetic_raw", dim_fails)
    with read_model(tiny_run) as artifact:
        batches = list(artifact._source.calibration_batches())
    from srredsim.runtime.quantize import CALIBRATION_PHOTONS

    assert len(batches) == sum(p >= 10 for p in CALIBRATION_PHOTONS) > 0
    monkeypatch.setattr(handle._Source, "_synthetic_raw", lambda *a, **k: (_ for _ in ()).throw(SrredsimError("no")))
    with read_model(tiny_run) as artifact, pytest.raises(SrredsimError, match="int8 calibration: no synthetic input"):
        list(artifact._source.calibration_batches())


def test_int8_is_asked_for_by_name_never_chosen_by_auto():
    from srredsim.runtime.choice import candidates

    engines = ("keras", "savedmodel", "onnx", "openvino")
    assert all(p != "int8" for _, p in candidates(engines, None, None))
    assert candidates(engines, None, "int8") == [("openvino", "int8")]
    with pytest.raises(SrredsimError, match="runs fp32 only, not int8; --engine openvino runs int8"):
        candidates(engines, "onnx", "int8")


def test_the_convolutions_nearest_the_data_stay_in_floating_point():
    from srredsim.runtime.quantize import KEEP_FIRST, KEEP_LAST, kept_in_float

    names = [f"conv{i}" for i in range(43)]  # the full SR-REDSIM
    assert kept_in_float(names) == names[:KEEP_FIRST] + names[-KEEP_LAST:]
    small = [f"conv{i}" for i in range(5)]  # a tiny network keeps its first and last only
    assert kept_in_float(small) == ["conv0", "conv4"]


def test_int8_without_nncf_says_which_extra_to_install(tiny_run, tmp_path, monkeypatch):
    from srredsim.runtime import handle, open_model

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "nncf", None)  # import nncf raises ImportError

    def not_yet(self):
        raise AssertionError("calibration inputs made before NNCF was found")

    monkeypatch.setattr(handle._Source, "calibration_batches", not_yet)
    with pytest.raises(SrredsimError, match=r'int8 needs NNCF: pip install "srredsim\[int8\]"'):
        open_model(tiny_run, precision="int8")


def test_an_engine_opened_in_the_background_predicts_the_same(tiny_run, tiny_stack):
    from srredsim.runtime import open_model, read_model
    from srredsim.runtime.handle import _OpeningEngine

    with open_model(tiny_run, engine="openvino", precision="fp32") as m:
        ref = m.predict(tiny_stack)
    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="fp32", background=True)
        assert isinstance(m.adapter, _OpeningEngine)
        assert "openvino fp32, CPU path" in m.describe()  # known before the engine is ready
        assert np.array_equal(m.predict(tiny_stack), ref)
        m.close()
        with pytest.raises(SrredsimError, match="closed"):
            m.predict(tiny_stack)
    with read_model(tiny_run) as artifact:  # other engines open at once
        m = artifact.open(engine="onnx", precision="fp32", background=True)
        assert not isinstance(m.adapter, _OpeningEngine)


def test_what_must_be_said_at_once_is_done_before_the_background_thread(tiny_run, tiny_stack, tmp_path, monkeypatch):
    """The int8 copy (slow, with progress) and the bf16 hardware check run in the caller's thread:
    their message comes before the data check, not after it."""
    from srredsim.runtime import openvino_engine, read_model
    from srredsim.runtime.handle import _OpeningEngine

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    lines: list[str] = []
    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="int8", log=lines.append, background=True)
        assert isinstance(m.adapter, _OpeningEngine)
        assert any("quantising" in s for s in lines)  # done before open() returned
        assert list((tmp_path / "cache" / "engines").glob("*.int8/model.xml"))
        assert np.all(np.isfinite(m.predict(tiny_stack)))
    monkeypatch.setattr(openvino_engine, "supports_bf16", lambda: False)
    with read_model(tiny_run) as artifact, pytest.raises(SrredsimError, match="no bf16 arithmetic on this CPU"):
        artifact.open(engine="openvino", precision="bf16", background=True)  # raised by open(), not later


def test_a_dropped_artifact_keeps_its_files_until_the_background_engine_is_open(tiny_run, tiny_stack, tmp_path):
    import gc

    from srredsim.export.api import export_run
    from srredsim.runtime import read_model

    pkg = export_run(tiny_run, "bioimageio", tmp_path / "pkg.zip", test_size=32, verify=False).outputs["bioimageio"]
    assert pkg.suffix == ".zip"  # unpacked by read_model, removed by the artifact's finalizer
    m = read_model(pkg).open(engine="openvino", precision="fp32", background=True)  # no with: dropped at once
    gc.collect()
    assert np.all(np.isfinite(m.predict(tiny_stack)))  # the thread read the unpacked ONNX file before it went


def test_an_error_while_opening_in_the_background_reaches_the_first_call(tiny_run, tiny_stack, monkeypatch):
    from srredsim.runtime import handle, read_model

    started = threading.Event()

    def broken(self, engine, precision, shape=None, discard=0):
        started.set()
        raise SrredsimError("OpenVINO cannot compile it (test)")

    monkeypatch.setattr(handle._RunSource, "open_engine", broken)
    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="fp32", background=True, halo=8)  # returns at once
        assert not started.is_set()  # it opens once told what to expect (or at the first call)
        m.expect((40, 40))
        assert started.wait(30)
        with pytest.raises(SrredsimError, match="cannot compile it"):
            m.predict(tiny_stack)
        pending = artifact._opening[0]
    assert not pending._thread.is_alive() and artifact._opening == []  # closing waited for the thread


def test_openvino_keeps_its_compiled_networks_in_the_user_cache(tiny_run, tiny_stack, tmp_path, monkeypatch):
    from srredsim.runtime import open_model

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    with open_model(tiny_run, engine="openvino", precision="fp32") as m:
        first = m.predict(tiny_stack)
    assert list((tmp_path / "cache" / "openvino").iterdir())  # OpenVINO's compiled blob
    with open_model(tiny_run, engine="openvino", precision="fp32") as m:  # loaded from the cache: same output
        assert bool(m.adapter.compiled.get_property("LOADED_FROM_CACHE"))
        assert np.array_equal(m.predict(tiny_stack), first)


def test_info_says_whether_int8_can_run_here(tiny_run, capsys, monkeypatch):
    import importlib.util

    from srredsim.cli import main

    assert main(["info", str(tiny_run)]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("int8:"))
    assert "--precision int8 runs OpenVINO int8 (NNCF" in line and "auto never picks it" in line
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    assert main(["info", str(tiny_run)]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("int8:"))
    assert 'needs NNCF: pip install "srredsim[int8]"' in line


def test_openvino_compiled_for_the_expected_shape_runs_it_and_any_other(tiny_run, tiny_stack, monkeypatch):
    """predict tells a background OpenVINO open the first stack's window shape; the engine is compiled
    for that fixed size, gives the dynamic network's result, and still runs other shapes."""
    from srredsim.runtime import open_model, read_model
    from srredsim.runtime.openvino_engine import OpenVinoEngine

    with open_model(tiny_run, engine="openvino", precision="fp32") as m:
        ref, other_ref = m.predict(tiny_stack), m.predict(tiny_stack[:, :48, :40])
        halo = m.halo
    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="fp32", background=True)
        m.expect(tiny_stack.shape[1:])
        engine = m.adapter.wait()
        assert isinstance(engine, OpenVinoEngine)
        frames, h, w = tiny_stack.shape
        assert engine.fixed_shape == (1, h + 2 * halo, w + 2 * halo, frames)
        y = m.predict(tiny_stack)
        assert engine._dynamic is None  # the expected shape ran on the fixed-size network
        other = m.predict(tiny_stack[:, :48, :40])
        assert engine._dynamic is not None
    span = float(ref.max() - ref.min())
    assert np.abs(y - ref).max() <= 1e-5 * span and np.abs(other - other_ref).max() <= 1e-5 * span


def test_an_opening_never_told_what_to_expect_starts_at_the_first_call_or_never(tiny_run, tiny_stack):
    from srredsim.runtime import read_model

    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="fp32", background=True)
        assert m.adapter._thread is None
        assert m.predict(tiny_stack).shape == (2 * tiny_stack.shape[1], 2 * tiny_stack.shape[2])
        assert m.adapter.wait().fixed_shape is None  # dynamic: nobody said which shape
    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="fp32", background=True)
    assert m.adapter._thread is not None and m.adapter._engine is None  # closed unopened: nothing compiled
    with pytest.raises(SrredsimError, match="engine was closed"):
        m.predict(tiny_stack)


def test_a_fixed_size_compile_loads_from_openvinos_cache_the_second_time(tiny_run, tiny_stack, tmp_path, monkeypatch):
    """`srredsim predict` compiles for its first stack's size; that compile goes through OpenVINO's
    model cache too (0.1 s instead of 0.2 s to open the full network for a 512² stack)."""
    from srredsim.runtime import open_model
    from srredsim.runtime.openvino_engine import OpenVinoEngine

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    with open_model(tiny_run, engine="onnx", precision="fp32"):
        pass  # the network converted to ONNX, into the cache
    onnx_file, = (tmp_path / "cache" / "engines").glob("*.onnx")
    x = (np.moveaxis(tiny_stack, 0, -1)[None] / tiny_stack.max()).astype(np.float32)
    first = OpenVinoEngine(onnx_file, "fp32", shape=x.shape)
    second = OpenVinoEngine(onnx_file, "fp32", shape=x.shape)
    assert first.fixed_shape == second.fixed_shape == x.shape
    assert not first.compiled.get_property("LOADED_FROM_CACHE")
    assert second.compiled.get_property("LOADED_FROM_CACHE")
    assert len(list((tmp_path / "cache" / "openvino").iterdir())) == 1
    assert np.array_equal(first.predict(x), second.predict(x))


def test_openvinos_cache_keeps_its_newest_entries_within_the_limit(tmp_path):
    import os

    from srredsim.runtime.openvino_engine import prune_compile_cache

    for i in range(5):
        entry = tmp_path / f"{i}.blob"
        entry.write_bytes(b"x" * 100)
        os.utime(entry, (1000 + i, 1000 + i))  # written in the order of their names
    assert sorted(p.name for p in prune_compile_cache(tmp_path, limit=250)) == ["0.blob", "1.blob", "2.blob"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.blob", "4.blob"]
    assert prune_compile_cache(tmp_path, limit=10) == [tmp_path / "3.blob"]  # the newest stays, even alone
    assert [p.name for p in tmp_path.iterdir()] == ["4.blob"]
    assert prune_compile_cache(tmp_path / "missing") == []
