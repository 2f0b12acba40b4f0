"""Prediction extends the image beyond its borders by the halo (mirror, edge repeated), as DeepImageJ does."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import toy_pair


def test_border_extension_is_a_symmetric_pad_cropped_again(trained_run):
    """predict == the network on the stack mirror-padded by the halo (normalised first), then cropped."""
    from srredsim.runtime import open_model
    from srredsim.normalization import denormalize_output, normalize_raw
    from srredsim.predict import BORDER_MODE, predict_stack, stack_to_hwc

    assert BORDER_MODE == "symmetric"
    m = open_model(trained_run)
    raw, _ = toy_pair(np.random.default_rng(4), size=40)
    h = m.halo
    out = predict_stack(m.predict_fn, raw, m.normalization, halo=h)
    x = stack_to_hwc(normalize_raw(raw, m.normalization))
    padded = np.pad(x, ((h, h), (h, h), (0, 0)), mode="symmetric")
    y = np.asarray(m.predict_fn(padded[None]), np.float32)[0, ..., 0]
    expected = denormalize_output(y, m.normalization)[2 * h:-2 * h, 2 * h:-2 * h]
    assert out.shape == (80, 80)
    assert np.abs(out - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max()))
    # without the extension the border differs (the network's own zero padding), the interior does not
    bare = predict_stack(m.predict_fn, raw, m.normalization, halo=h, border=None)
    inner = slice(2 * h, -2 * h)
    assert np.abs(bare[inner, inner] - out[inner, inner]).max() < 1e-4 * max(1.0, float(np.abs(out).max()))
    assert np.abs(bare - out).max() > 1e-3 * float(np.abs(out).max())


def test_tiled_prediction_with_border_equals_whole(trained_run):
    from srredsim.runtime import open_model
    from srredsim.predict import count_tiles, predict_stack

    m = open_model(trained_run)
    raw, _ = toy_pair(np.random.default_rng(5), size=80)
    whole = predict_stack(m.predict_fn, raw, m.normalization, halo=m.halo)
    assert count_tiles(raw.shape[1:], 56, m.halo, 8) > 4
    tiled = predict_stack(m.predict_fn, raw, m.normalization, tile=56, halo=m.halo)
    assert np.abs(tiled - whole).max() < 1e-4 * max(1.0, float(np.abs(whole).max()))


def test_unknown_border_mode_is_a_clear_error():
    from srredsim.errors import SrredsimError
    from srredsim.predict import extend_border

    with pytest.raises(SrredsimError, match="unknown border mode"):
        extend_border(np.zeros((4, 4, 1), np.float32), 2, "wrap")


def test_cli_border_none_runs_the_network_on_the_image_alone(tmp_path, trained_run, monkeypatch, capsys):
    """``--border none``: the engine sees the stack itself (no halo added), the result differs from
    the default only near the edges, and the progress line says so; the default extends by the halo."""
    from srredsim import predict as predict_mod
    from srredsim.cli import main
    from srredsim.runtime import open_model
    from srredsim.tiff import read_reference, write_tiff

    raw, _ = toy_pair(np.random.default_rng(6), size=48)
    write_tiff(tmp_path / "raw.tif", raw)
    shapes = []
    real_call = predict_mod._call

    def spying_call(predict_fn, batch, *a, **k):  # every engine call of a prediction goes through _call
        shapes.append(tuple(batch.shape[1:3]))
        return real_call(predict_fn, batch, *a, **k)

    monkeypatch.setattr(predict_mod, "_call", spying_call)
    out = {}
    for border in ("symmetric", "none"):
        shapes.clear()
        dst = tmp_path / f"{border}.tif"
        assert main(["predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(dst),
                     "--border", border]) == 0
        out[border] = (read_reference(dst)[0], list(shapes))
    halo = open_model(trained_run).halo
    assert out["symmetric"][1] == [(48 + 2 * halo, 48 + 2 * halo)]
    assert out["none"][1] == [(48, 48)]
    a, b = out["symmetric"][0], out["none"][0]
    inner = slice(2 * halo, -2 * halo) if 4 * halo < a.shape[0] else slice(a.shape[0] // 2, a.shape[0] // 2 + 1)
    assert np.abs(a[inner, inner] - b[inner, inner]).max() <= 1e-4 * max(1.0, float(np.abs(a).max()))
    assert np.abs(a - b).max() > 1e-3 * float(np.abs(a).max())
    assert "--border none" in capsys.readouterr().err


@pytest.mark.parametrize("border", ["symmetric", "none"])
def test_cli_tile_count_matches_the_engine_calls(tmp_path, trained_run, monkeypatch, capsys, border):
    """The "N tile(s)" line (and the progress total) counts what runs, with or without the border:
    --border none must not count (or refuse) windows for a halo it does not add."""
    import re

    from srredsim import predict as predict_mod
    from srredsim.cli import main
    from srredsim.tiff import write_tiff

    raw, _ = toy_pair(np.random.default_rng(7), size=64)
    write_tiff(tmp_path / "raw.tif", raw)
    calls = []
    real_call = predict_mod._call
    monkeypatch.setattr(predict_mod, "_call", lambda fn, batch, *a, **k: (calls.append(batch.shape[0]),
                                                                         real_call(fn, batch, *a, **k))[1])
    for tile in ("0", "64", "56"):
        calls.clear()
        assert main(["predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "sr.tif"),
                     "--overwrite", "--tile", tile, "--border", border]) == 0, capsys.readouterr().err
        counted = int(re.search(r"(\d+) tile\(s\)", capsys.readouterr().err).group(1))
        assert counted == sum(calls), (tile, counted, calls)
