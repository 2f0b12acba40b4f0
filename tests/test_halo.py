"""The halo a model really needs (srredsim.runtime.halo): measured once, cached, used by predict, and
always giving the declared halo's result within the tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import toy_pair


def _box_network(radius: int):
    """A stand-in network whose output pixel sees exactly ``radius`` input pixels each way: a
    (2r+1)^2 box mean of the frames' sum (zero padded, as a network's convolutions), upsampled 2x."""
    def predict(batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, np.float64).sum(axis=-1)
        b, h, w = x.shape
        p = np.pad(x, ((0, 0), (radius, radius), (radius, radius)))
        c = np.cumsum(np.cumsum(np.pad(p, ((0, 0), (1, 0), (1, 0))), axis=1), axis=2)
        k = 2 * radius + 1
        box = c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]
        return np.repeat(np.repeat(box, 2, axis=1), 2, axis=2)[..., None].astype(np.float32)
    return predict


@pytest.mark.parametrize("radius, expected", [(5, 8), (8, 8), (13, 16), (30, 32)])
def test_measure_finds_the_receptive_radius_rounded_up_to_the_step(radius, expected):
    from srredsim.runtime.halo import STEP, measure

    batch = np.random.default_rng(radius).random((1, 64, 64, 3)).astype(np.float32)
    rec = measure(_box_network(radius), batch, declared=40)
    assert rec["effective"] == expected and expected % STEP == 0
    # every narrower width differed, the one taken did not (beyond float rounding)
    assert all(d > rec["tolerance"] for w, d in rec["max_rel_diff"].items() if int(w) < expected)
    assert rec["max_rel_diff"][str(expected)] <= rec["tolerance"]


def test_a_dark_border_band_does_not_hide_how_far_the_network_looks():
    """Background normalises to ~0, and a mirrored band of zeros looks like the network's own zero
    padding: the lifted probe still sees the radius."""
    from srredsim.runtime.halo import measure

    batch = np.zeros((1, 64, 64, 3), np.float32)
    batch[0, 24:40, 24:40] = np.random.default_rng(2).random((16, 16, 3))
    assert measure(_box_network(13), batch, declared=40)["effective"] == 16


def test_widths_keep_a_pooling_network_on_its_size_grid():
    from srredsim.runtime.halo import candidate_widths

    assert candidate_widths(48) == list(range(4, 48, 4))
    assert candidate_widths(128, multiple=32) == [32, 64, 96]
    assert candidate_widths(40, multiple=8) == [8, 16, 24, 32]
    assert candidate_widths(36, multiple=8) == [4, 12, 20, 28]  # 36 = 4 mod 8
    assert candidate_widths(4) == []


def test_measure_keeps_the_declared_halo_when_no_narrower_width_matches():
    from srredsim.runtime.halo import measure

    batch = np.random.default_rng(0).random((1, 48, 48, 2)).astype(np.float32)
    rec = measure(_box_network(20), batch, declared=16)  # the network looks further than it declares
    assert rec["effective"] == 16 and set(rec["max_rel_diff"]) == {"4", "8", "12"}


def _decaying_network(scale: float = 3.0):
    """A stand-in network whose influence falls off with distance instead of stopping: each output
    pixel is a zero-padded sum over its row with weights 10^(-|d|/scale), upsampled 2x -- so wider
    context keeps changing the result, by less and less (as a trained network's does)."""
    def predict(batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, np.float64).sum(axis=-1)
        b, h, w = x.shape
        reach = 64
        p = np.pad(x, ((0, 0), (0, 0), (reach, reach)))
        y = sum(10.0 ** (-abs(d) / scale) * p[:, :, reach + d:reach + d + w] for d in range(-reach, reach + 1))
        return np.repeat(np.repeat(y, 2, axis=1), 2, axis=2)[..., None].astype(np.float32)
    return predict


def test_reduced_precision_takes_the_narrowest_width_within_its_own_tolerance():
    """bf16/int8 engines round far more than the halo's 1e-6 rule guards against: they take the
    narrowest measured width within REDUCED_TOLERANCE, from the same record."""
    from srredsim.runtime.halo import REDUCED_TOLERANCE, TOLERANCE, measure, width_for

    batch = np.random.default_rng(4).random((1, 48, 48, 2)).astype(np.float32)
    rec = measure(_decaying_network(), batch, declared=40)
    diffs = {int(w): d for w, d in rec["max_rel_diff"].items()}
    fp32, bf16 = width_for(rec, "fp32"), width_for(rec, "bf16")
    assert fp32 == rec["effective"] < 40 and diffs[fp32] <= TOLERANCE
    assert bf16 < fp32 and diffs[bf16] <= REDUCED_TOLERANCE  # narrower, and within its own tolerance
    assert all(d > REDUCED_TOLERANCE for w, d in diffs.items() if w < bf16)  # and the narrowest such
    assert width_for(rec, "int8") == bf16
    # no narrower width within the reduced tolerance: the fp32 width
    assert width_for({"effective": 12, "max_rel_diff": {"4": 0.1, "8": 0.01, "12": 1e-7}}, "bf16") == 12
    assert width_for({"effective": 24, "max_rel_diff": {}}, "bf16") == 24


def test_a_reduced_precision_width_holds_on_both_probes():
    """A width is taken for bf16 only if the lifted probe agrees too: with a dim border band the
    first probe alone passes narrower widths than the network's reach allows (here 4 px where
    both probes need 12), by less than TOLERANCE but more than REDUCED_TOLERANCE."""
    from srredsim.predict import predict_normalized
    from srredsim.runtime.halo import REDUCED_TOLERANCE, measure, width_for

    batch = (0.003 * np.random.default_rng(5).random((1, 48, 48, 2))).astype(np.float32)
    batch[0, 16:32, 16:32] += np.random.default_rng(6).random((16, 16, 2)).astype(np.float32)
    fn = _decaying_network()
    rec = measure(fn, batch, declared=40)
    bf16 = width_for(rec, "bf16")
    x = batch[0]

    def worst(width):  # recomputed here, over both probes
        out = 0.0
        for probe in (x, x + np.float32(1.0)):
            ref = predict_normalized(fn, probe, tile=0, halo=40)
            span = float(ref.max() - ref.min()) or 1.0
            out = max(out, float(np.abs(predict_normalized(fn, probe, tile=0, halo=width) - ref).max()) / span)
        return out

    assert worst(bf16) <= REDUCED_TOLERANCE < worst(bf16 - 4)
    assert rec["max_rel_diff"][str(bf16)] == worst(bf16)


class _Source:
    """The part of a runtime source measured_halo reads."""

    def __init__(self, tmp_path, radius=6, declared=24, **fields):
        self.path, self.fields, self.opened = tmp_path, {"halo": declared, "size_multiple": 1, **fields}, []
        self.radius = radius
        self.network = _box_network(radius)

    def key(self):
        return f"box{self.radius}"

    def test_batch(self):
        return np.random.default_rng(1).random((1, 40, 40, 3)).astype(np.float32)

    def open_engine(self, engine, precision):
        self.opened.append((engine, precision))
        fn = self.network

        class Adapter:
            closed = False

            def __call__(self, batch):
                return fn(batch)

            def close(self):
                Adapter.closed = True
        return Adapter()


def test_measured_once_per_model_then_read_from_the_cache(tmp_path, monkeypatch):
    from srredsim.runtime.halo import measured_halo, record_path

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    src, lines = _Source(tmp_path), []
    assert measured_halo(src, "onnx", log=lines.append) == 8
    assert src.opened == [("onnx", "fp32")]  # in fp32 on the engine that will run it
    assert len(lines) == 1 and "once" in lines[0]
    assert record_path("box6", 24).is_file()
    src.open_engine = None  # the second time nothing is opened
    assert measured_halo(src, "onnx", log=lines.append) == 8 and len(lines) == 1
    assert measured_halo(src, "keras") == 8  # one measurement for every engine
    # an fp32 engine the caller has open is used and left open
    other = _Source(tmp_path, radius=10)
    adapter = other.open_engine("openvino", "fp32")
    assert measured_halo(other, "openvino", adapter) == 12 and not adapter.closed


def test_one_measurement_gives_each_precision_its_halo(tmp_path, monkeypatch):
    from srredsim.runtime.halo import describe, measured_halo

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _Source(tmp_path, declared=40)
    src.network = _decaying_network()
    bf16 = measured_halo(src, "openvino", precision="bf16")
    assert src.opened == [("openvino", "fp32")]  # measured in fp32 all the same
    src.open_engine = None  # the other precision reads the same record
    fp32 = measured_halo(src, "openvino", precision="fp32")
    assert bf16 < fp32 < 40
    assert f"{fp32} px per side in fp32, {bf16} px in bf16/int8" in describe(src)


def test_an_unwritable_cache_only_costs_measuring_again(tmp_path, monkeypatch):
    from srredsim.runtime.halo import measured_halo

    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "file" / "cache"))
    src = _Source(tmp_path)
    assert measured_halo(src, "onnx") == 8 and measured_halo(src, "onnx") == 8
    assert len(src.opened) == 2


def test_a_measurement_that_cannot_run_keeps_the_declared_halo_and_says_so(tmp_path, monkeypatch):
    from srredsim.runtime.halo import measured_halo, read_record

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    src, lines = _Source(tmp_path), []

    def cannot(engine, precision):
        raise RuntimeError("no CPU plugin")

    src.open_engine = cannot
    assert measured_halo(src, "openvino", log=lines.append) == 24
    assert "no CPU plugin" in lines[-1] and "declared 24 px" in lines[-1]
    assert read_record(src) is None  # nothing kept: the next open tries again


def test_fixed_size_or_tiny_halos_are_not_measured(tmp_path, monkeypatch):
    from srredsim.runtime.halo import measured_halo

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _Source(tmp_path, fixed_size=True)
    src.open_engine = None
    assert measured_halo(src, "onnx") == 24
    assert measured_halo(_Source(tmp_path, declared=0), "onnx") == 0


def test_predict_uses_the_measured_halo_and_matches_the_declared_one(trained_run):
    """The handle predicts with the measured halo; the result is the declared halo's (the mirror
    DeepImageJ and bioimageio.core apply) within the tolerance, borders included."""
    from srredsim.runtime.halo import TOLERANCE

    from srredsim.runtime import read_model

    raw, _ = toy_pair(np.random.default_rng(3), size=64)
    with read_model(trained_run) as artifact:
        m = artifact.open(engine="onnx", precision="fp32")
        assert m.declared_halo is not None and 0 < m.halo < m.declared_halo  # this toy network looks less far
        assert m.halo == artifact.measured_halo()
        y = m.predict(raw)
        ref = m.predict(raw, halo=m.declared_halo)
        tiled = m.predict(raw, tile=40)  # tiles carry the measured halo as context
        assert artifact.open(engine="onnx", precision="fp32", halo=5).halo == 5  # --halo wins, nothing measured
    span = float(ref.max() - ref.min())
    # the tolerance was met on the test tensor; on another input allow 100x that
    assert np.abs(y - ref).max() <= 100 * TOLERANCE * span
    assert np.abs(tiled - y).max() <= 1e-4 * span


def test_cli_reports_measuring_once(tmp_path, trained_run, capsys, monkeypatch):
    from srredsim.cli import main
    from srredsim.tiff import write_tiff

    monkeypatch.setenv("SRREDSIM_CACHE_DIR", str(tmp_path / "cache"))
    raw, _ = toy_pair(np.random.default_rng(8), size=32)
    write_tiff(tmp_path / "raw.tif", raw)
    err = []
    for i in range(2):
        assert main(["predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(tmp_path / f"o{i}.tif"),
                     "--engine", "onnx", "--precision", "fp32"]) == 0
        err.append(capsys.readouterr().err)
    assert [e.count("measuring the context") for e in err] == [1, 0]
