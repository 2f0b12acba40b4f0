"""srredsim.runtime.trim: a fixed-size OpenVINO SR-REDSIM that skips the band predict discards
gives, on what predict keeps, exactly the whole network's result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_run


@pytest.fixture(scope="module")
def onnx_file(tiny_run) -> Path:
    from srredsim.runtime import read_model

    with read_model(tiny_run) as artifact:
        return artifact._source.engine_file("fp32")


def _fixed(onnx_file, size, channels=15):
    from srredsim.runtime.openvino_engine import core

    model = core().read_model(str(onnx_file))
    model.reshape([1, size, size, channels])
    return model


def _run(model, x, precision="f32"):
    from srredsim.runtime.openvino_engine import core

    compiled = core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    return np.asarray(compiled.create_infer_request().infer({0: x})[0])[0, ..., 0].copy()


@pytest.mark.parametrize("discard", [3, 7, 16])
def test_the_kept_core_is_the_whole_networks_bit_for_bit(onnx_file, discard):
    from srredsim.runtime.openvino_engine import supports_bf16
    from srredsim.runtime.trim import trim_discarded_border

    size = 40 + 2 * discard
    x = np.random.default_rng(discard).random((1, size, size, 15)).astype(np.float32)
    whole = _fixed(onnx_file, size)
    trimmed_model = _fixed(onnx_file, size)
    cut = trim_discarded_border(trimmed_model, discard)
    # the tiny network has 10 convolutions before its up-sampling tail, which keeps 2 pixels
    assert cut == min(10, discard - 2) > 0
    convs = [n for n in trimmed_model.get_ordered_ops() if n.get_type_name() == "Convolution"]
    assert sum(n.get_attributes()["pads_begin"] == [0, 0] for n in convs) == cut
    for precision in ("f32", "bf16") if supports_bf16() else ("f32",):
        ref, y = _run(whole, x, precision), _run(trimmed_model, x, precision)
        assert y.shape == (2 * (size - 2 * cut),) * 2
        k, t = 2 * discard, 2 * (discard - cut)  # the kept core in each
        assert np.array_equal(y[t:-t, t:-t], ref[k:-k, k:-k]), precision
        assert not np.array_equal(y, ref[2 * cut:-2 * cut, 2 * cut:-2 * cut])  # the trimmed frame differs


def test_a_graph_it_does_not_know_is_left_as_it_is(onnx_file, tmp_path):
    from srredsim.runtime.trim import trim_discarded_border

    model = _fixed(onnx_file, 64)
    assert trim_discarded_border(model, 2) == 0  # nothing beyond the tail's own margin
    assert trim_discarded_border(model, 0) == 0
    red = make_tiny_run(tmp_path / "red", architecture="red_net")
    from srredsim.runtime import read_model

    with read_model(red) as artifact:
        red_onnx = artifact._source.engine_file("fp32")
    red_model = _fixed(red_onnx, 64, channels=1)  # no up-sampling: not SR-REDSIM's form
    before = [n.get_attributes().get("pads_begin") for n in red_model.get_ordered_ops()
              if n.get_type_name() == "Convolution"]
    assert trim_discarded_border(red_model, 16) == 0
    assert [n.get_attributes().get("pads_begin") for n in red_model.get_ordered_ops()
            if n.get_type_name() == "Convolution"] == before


@pytest.mark.parametrize("tile", [None, 72])
def test_predict_with_a_trimmed_engine_gives_the_whole_networks_result(tiny_run, tiny_stack, tile):
    """What `srredsim predict` does: open in the background, expect the first stack's windows,
    predict -- whole, or in tiles of one size --, against the same engine opened plainly."""
    from srredsim.runtime import open_model, read_model
    from srredsim.runtime.openvino_engine import OpenVinoEngine

    with open_model(tiny_run, engine="openvino", precision="fp32") as m:
        ref = m.predict(tiny_stack, tile=tile)
        halo = m.halo
    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="fp32", background=True)
        m.expect(tiny_stack.shape[1:], tile=tile)
        engine = m.adapter.wait()
        assert isinstance(engine, OpenVinoEngine) and engine.fixed_shape is not None
        assert 0 < engine.trimmed <= halo - 2
        y = m.predict(tiny_stack, tile=tile)
        assert engine._dynamic is None  # every window ran on the trimmed network
    assert np.array_equal(y, ref)


def test_without_the_mirrored_border_nothing_is_trimmed(tiny_run, tiny_stack):
    from srredsim.runtime import open_model, read_model

    with open_model(tiny_run, engine="openvino", precision="fp32") as m:
        ref = m.predict(tiny_stack, border=None)
    with read_model(tiny_run) as artifact:
        m = artifact.open(engine="openvino", precision="fp32", background=True)
        m.expect(tiny_stack.shape[1:], border=None)
        engine = m.adapter.wait()
        assert engine.fixed_shape is not None and engine.trimmed == 0
        assert np.array_equal(m.predict(tiny_stack, border=None), ref)


def test_a_prepared_network_is_compiled_from_the_cache_without_reading_the_model(onnx_file, tmp_path,
                                                                                  monkeypatch):
    """The fixed-size, trimmed network is saved once (openvino-fixed/ in the user cache); the next
    engine for that source, size and band compiles it from the file, which OpenVINO finds in its
    own cache, and never reads, reshapes or trims the network again."""
    from srredsim.runtime import openvino_engine as ove

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    shape, x = (1, 64, 64, 15), np.random.default_rng(1).random((1, 64, 64, 15)).astype(np.float32)
    first = ove.OpenVinoEngine(onnx_file, "fp32", shape=shape, discard=12)
    saved = sorted(p.suffix for p in (tmp_path / "cache" / "openvino-fixed").iterdir())
    assert saved == [".bin", ".json", ".xml"] and first.trimmed == 10

    def no_reading(self, path):
        raise AssertionError("read the network again")

    monkeypatch.setattr(ove.OpenVinoEngine, "_read", no_reading)
    second = ove.OpenVinoEngine(onnx_file, "fp32", shape=shape, discard=12)
    assert second.compiled.get_property("LOADED_FROM_CACHE")
    assert (second.trimmed, second._pad, second.nchw, second.channels) == \
        (first.trimmed, first._pad, first.nchw, first.channels)
    assert np.array_equal(second.predict(x), first.predict(x))
    monkeypatch.undo()
    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    # another band, another entry; the same network elsewhere (a package unpacked anew), the same
    # entry; an incomplete entry is made again
    assert ove._prepared_path(onnx_file, shape, 8) != ove._prepared_path(onnx_file, shape, 12)
    copy = tmp_path / "elsewhere.onnx"
    copy.write_bytes(onnx_file.read_bytes())
    assert ove._prepared_path(copy, shape, 12) == ove._prepared_path(onnx_file, shape, 12)
    entry = ove._prepared_path(onnx_file, shape, 12)
    entry.with_suffix(".json").unlink()
    assert ove._read_prepared(entry) is None
    third = ove.OpenVinoEngine(onnx_file, "fp32", shape=shape, discard=12)
    assert third.trimmed == 10 and ove._read_prepared(entry) is not None
    entry.write_text("not a network")  # damaged: OpenVINO cannot compile it; made again
    fourth = ove.OpenVinoEngine(onnx_file, "fp32", shape=shape, discard=12)
    assert fourth.trimmed == 10 and np.array_equal(fourth.predict(x), first.predict(x))
    assert "not a network" not in entry.read_text()
