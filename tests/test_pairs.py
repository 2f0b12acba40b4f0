"""Training pairs (srredsim/pairs.py): folder pairing, patches, augmentation, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_toy_folder
from srredsim.config import DataConfig, NormalizationConfig
from srredsim.errors import SrredsimError


def test_pairs_name_the_unpaired_files(tmp_path):
    from srredsim.pairs import find_pairs

    root = write_toy_folder(tmp_path / "d", n_train=3, size=16)
    (root / "trainy" / "img001.tif").rename(root / "trainy" / "other.tif")
    with pytest.raises(SrredsimError) as e:
        find_pairs(root)
    assert "img001.tif" in str(e.value) and "other.tif" in str(e.value)


def test_empty_and_missing_folders(tmp_path):
    from srredsim.pairs import find_pairs

    with pytest.raises(SrredsimError, match="no such data folder"):
        find_pairs(tmp_path / "nope")
    (tmp_path / "e" / "trainx").mkdir(parents=True)
    with pytest.raises(SrredsimError, match="missing folder"):
        find_pairs(tmp_path / "e")
    (tmp_path / "e" / "trainy").mkdir()
    with pytest.raises(SrredsimError, match="no TIFF"):
        find_pairs(tmp_path / "e")


def test_reference_must_be_twice_the_raw_size(tmp_path):
    from srredsim.pairs import PairedData, find_pairs
    from srredsim.tiff import write_tiff

    root = write_toy_folder(tmp_path / "d", n_train=2, size=16)
    write_tiff(root / "trainy" / "img001.tif", np.zeros((30, 32), np.float32))
    with pytest.raises(SrredsimError, match=r"img001.tif: reference is 30x32, expected 2x"):
        PairedData(find_pairs(root), 15, NormalizationConfig())


def _aligned_data(tmp_path, size=24):
    """Raw pixel i = reference pixel 2i (+ frame offset): the simulator's and fairSIM's convention
    (the 2x grid is the raw grid zero-padded in Fourier space), so alignment can be checked exactly."""
    from srredsim.pairs import PairedData, find_pairs
    from srredsim.tiff import write_tiff

    rng = np.random.default_rng(5)
    root = tmp_path / "aligned"
    (root / "trainx").mkdir(parents=True)
    (root / "trainy").mkdir()
    for i in range(2):
        ref = rng.random((2 * size, 2 * size)).astype(np.float32)
        sampled = ref[::2, ::2]
        raw = np.stack([sampled + f for f in range(15)]).astype(np.float32)
        write_tiff(root / "trainx" / f"{i}.tif", raw)
        write_tiff(root / "trainy" / f"{i}.tif", ref)
    norm = NormalizationConfig(mode="global", x_min=0, x_max=1, y_min=0, y_max=1)
    return PairedData(find_pairs(root), 15, norm), norm


@pytest.mark.parametrize("augment", [False, True])
def test_patches_are_aligned_and_augmented_consistently(tmp_path, augment):
    from srredsim.pairs import PatchSampler

    data, norm = _aligned_data(tmp_path)
    s = PatchSampler(data, norm, DataConfig(patch_size=8, augment=augment), seed=4)
    seen = set()
    for x, y in s.epoch(0, 40):
        assert x.shape == (8, 8, 15) and y.shape == (16, 16, 1)
        # every rotation/flip keeps raw pixel i on reference pixel 2i (a plain flip of both
        # patches would move it to 2i + 1: half a raw pixel, which washes out SIM detail)
        np.testing.assert_allclose(x[..., 0], y[::2, ::2, 0], atol=1e-5)
        np.testing.assert_allclose(x[..., 7], y[::2, ::2, 0] + 7, atol=1e-4)
        seen.add(tuple(np.round(x[0, :2, 0], 4)))
    assert len(seen) > 10


def test_sampling_depends_only_on_seed_and_epoch(tmp_path):
    from srredsim.pairs import PatchSampler

    data, norm = _aligned_data(tmp_path)
    cfg = DataConfig(patch_size=8)
    a = list(PatchSampler(data, norm, cfg, seed=1).epoch(3, 5))
    b = list(PatchSampler(data, norm, cfg, seed=1).epoch(3, 5))
    c = list(PatchSampler(data, norm, cfg, seed=1).epoch(4, 5))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b))
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a, c))
    stream = PatchSampler(data, norm, cfg, seed=1).stream(3, 5)
    assert all(np.array_equal(next(stream)[0], p[0]) for p in a)


def test_uncached_data_read_from_disk_equals_cached(tmp_path):
    from srredsim.pairs import PairedData, PatchSampler, find_pairs

    root = write_toy_folder(tmp_path / "d", n_train=2, size=16)
    norm = NormalizationConfig()
    cached = PairedData(find_pairs(root), 15, norm, cache_limit_mb=100)
    lazy = PairedData(find_pairs(root), 15, norm, cache_limit_mb=0)
    assert cached.cached and not lazy.cached
    cfg = DataConfig(patch_size=8)
    for (x1, y1), (x2, y2) in zip(PatchSampler(cached, norm, cfg, 0).epoch(0, 4),
                                  PatchSampler(lazy, norm, cfg, 0).epoch(0, 4)):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_normalisation_modes():
    from srredsim.normalization import denormalize_output, normalize_raw, normalize_reference

    x = np.random.default_rng(0).integers(100, 5000, (15, 16, 16)).astype(np.float32)
    p = NormalizationConfig(mode="percentile", low_percentile=0, high_percentile=100)
    xn = normalize_raw(x, p)
    assert xn.min() == pytest.approx(0, abs=1e-6) and xn.max() == pytest.approx(1, abs=1e-5)
    g = NormalizationConfig(mode="global", x_min=100, x_max=5100, y_min=-1, y_max=3)
    np.testing.assert_allclose(normalize_raw(x, g), (x - 100) / 5000, rtol=1e-5, atol=1e-7)
    y = np.linspace(-1, 3, 50, dtype=np.float32)
    np.testing.assert_allclose(denormalize_output(normalize_reference(y, g), g), y, atol=1e-6)
    with pytest.raises(SrredsimError, match="needs x_min"):
        normalize_raw(x, NormalizationConfig(mode="global"))


def test_widefield_fraction_makes_pattern_free_pairs(tmp_path):
    """data.widefield_fraction: that share of training patches has every frame equal (the pattern
    removed) and a reference with nothing beyond the widefield cutoff; validation patches never."""
    from srredsim.pairs import PairedData, PatchSampler, find_pairs
    from srredsim.simulate import widefield_limited

    root = write_toy_folder(tmp_path / "d", n_train=4, size=32)
    norm = NormalizationConfig()
    data = PairedData(find_pairs(root), 15, norm)
    cut = 0.1  # cycles per reference pixel
    with pytest.raises(SrredsimError, match="widefield cutoff"):
        PatchSampler(data, norm, DataConfig(patch_size=16, widefield_fraction=0.5), seed=0)
    sampler = PatchSampler(data, norm, DataConfig(patch_size=16, augment=False, widefield_fraction=0.5), seed=0,
                           widefield_cutoff=cut)
    flat = sum(np.ptp(x, axis=-1).max() == 0 for x, _ in sampler.epoch(0, 40))  # all frames equal
    assert 8 <= flat <= 32
    x0, y0 = data.arrays(1)
    xw, yw, pair = sampler.widefield_pair(1)
    np.testing.assert_allclose(xw[..., 3], x0.mean(axis=-1), rtol=1e-6)
    np.testing.assert_allclose(yw, widefield_limited(y0, cut), rtol=1e-6)
    assert pair.x_range != data.pairs[1].x_range  # the mean frame's own statistics, as predict computes them
    xs, _ = sampler.fixed_set(4)
    assert all(np.ptp(x, axis=-1).max() > 0 for x in xs)
    # the filter keeps the widefield band and removes what lies beyond it
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    out = np.abs(np.fft.fft2(widefield_limited(img, 0.2)))
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing="ij"))
    assert out[f > 0.2].max() < 1e-3 * out.max() and np.allclose(out[f < 0.13], np.abs(np.fft.fft2(img))[f < 0.13],
                                                                    rtol=1e-3, atol=1e-3)
    # default: no pattern-free pairs, and the patch sequence is the one it always was
    plain = PatchSampler(data, norm, DataConfig(patch_size=16, augment=False), seed=0)
    assert all(np.ptp(x, axis=-1).max() > 0 for x, _ in plain.epoch(0, 10))
