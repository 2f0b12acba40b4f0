import math

import numpy as np
import pytest

from srredsim.errors import SrredsimError
from srredsim.metrics import (affine_fit, bead_fwhm, compare, frc_curve, frc_resolution, nrmse, psnr,
                              register, shift_image, ssim, upsample_fourier)


def _blobs(n=128, seed=0, sigma=1.5, count=60):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    img = np.zeros((n, n))
    for y, x in rng.uniform(8, n - 8, size=(count, 2)):
        img += np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma ** 2))
    return img


def test_register_recovers_subpixel_shift():
    ref = _blobs()
    moved = shift_image(ref, (2.3, -1.65))
    dy, dx = register(moved, ref)
    assert dy == pytest.approx(-2.3, abs=0.06) and dx == pytest.approx(1.65, abs=0.06)
    back = shift_image(moved, (dy, dx))
    assert np.abs(back - ref)[10:-10, 10:-10].max() < 0.05 * ref.max()


def test_affine_fit_undoes_gain_and_offset():
    ref = _blobs()
    fitted, a, b = affine_fit(3.0 * ref + 7.0, ref)
    assert a == pytest.approx(1 / 3) and b == pytest.approx(-7 / 3)
    assert np.allclose(fitted, ref)


def test_scores_identity_and_ordering():
    ref = _blobs()
    rng = np.random.default_rng(1)
    assert psnr(ref, ref) == math.inf and ssim(ref, ref) == pytest.approx(1.0) and nrmse(ref, ref) == 0
    small = ref + rng.normal(0, 0.01, ref.shape)
    big = ref + rng.normal(0, 0.1, ref.shape)
    assert psnr(small, ref) > psnr(big, ref)
    assert ssim(small, ref) > ssim(big, ref)
    assert nrmse(small, ref) < nrmse(big, ref)
    # PSNR from its definition
    mse = np.mean((big - ref) ** 2)
    assert psnr(big, ref) == pytest.approx(10 * np.log10((ref.max() - ref.min()) ** 2 / mse))


def test_frc_of_identical_images_is_one_and_drops_with_noise():
    ref = _blobs(sigma=1.0)
    freq, frc = frc_curve(ref, ref)
    assert np.allclose(frc, 1.0)
    rng = np.random.default_rng(2)
    a = ref + rng.normal(0, 0.05, ref.shape)
    b = ref + rng.normal(0, 0.05, ref.shape)
    blurred = np.real(np.fft.ifft2(np.fft.fft2(a) * np.exp(-np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128))) ** 2 / (2 * 0.08 ** 2))))
    sharp = frc_resolution(a, b, pixel_size_um=0.04)
    soft = frc_resolution(blurred, ref + rng.normal(0, 0.05, ref.shape), pixel_size_um=0.04)
    assert 0 < soft["frc_cycles_per_px"] < sharp["frc_cycles_per_px"] <= 0.5
    assert sharp["frc_resolution_nm"] == pytest.approx(40 / sharp["frc_cycles_per_px"])


@pytest.mark.parametrize("sigma", [1.2, 2.0])
def test_bead_fwhm_of_gaussians(sigma):
    img = _blobs(n=256, sigma=sigma, count=25, seed=4)
    res = bead_fwhm(img, pixel_size_um=0.04)
    assert res["beads"] >= 5
    assert res["fwhm_px"] == pytest.approx(2.3548 * sigma, rel=0.05)
    assert res["fwhm_nm"] == pytest.approx(res["fwhm_px"] * 40)


def test_compare_protocol_is_invariant_to_shift_gain_and_offset():
    ref = _blobs(n=160)
    rng = np.random.default_rng(3)
    noisy = ref + rng.normal(0, 0.05, ref.shape)
    direct = compare(noisy, ref, border=16)
    changed = compare(2.5 * shift_image(noisy, (1.4, -0.7)) + 10, ref, border=16)
    assert changed["psnr"] == pytest.approx(direct["psnr"], abs=0.3)
    assert changed["ssim"] == pytest.approx(direct["ssim"], abs=0.01)
    assert changed["shift_y"] == pytest.approx(-1.4, abs=0.1)


def test_compare_upsamples_half_size_images_and_rejects_others():
    ref = _blobs(n=128, sigma=3.0)
    small = ref[::2, ::2]
    row = compare(small, ref, border=8)
    assert row["psnr"] > 20
    assert upsample_fourier(small, (128, 128)).shape == (128, 128)
    with pytest.raises(SrredsimError, match="does not match"):
        compare(ref[:100, :100], ref)
    with pytest.raises(SrredsimError, match="constant"):
        compare(np.zeros_like(ref), ref)
    with pytest.raises(SrredsimError, match="NaN"):
        compare(np.full_like(ref, np.nan), ref)


# ---- against scikit-image: the same definitions, computed independently ------------------------------------
skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is in the test extra")


@pytest.mark.parametrize("noise", [0.01, 0.1, 0.3])
def test_psnr_ssim_nrmse_equal_scikit_image(noise):
    ref = _blobs(n=96, seed=5)
    img = ref + np.random.default_rng(6).normal(0, noise, ref.shape)
    rng = ref.max() - ref.min()
    assert psnr(img, ref) == pytest.approx(skimage_metrics.peak_signal_noise_ratio(ref, img, data_range=rng),
                                           rel=1e-12)
    # Wang et al. 2004 as we use it: Gaussian window sigma 1.5 (truncated at 3.5 sigma), sample covariances
    sk_ssim = skimage_metrics.structural_similarity(ref, img, data_range=rng, gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=True)
    assert ssim(img, ref) == pytest.approx(sk_ssim, abs=1e-9)
    assert nrmse(img, ref) == pytest.approx(skimage_metrics.normalized_root_mse(ref, img, normalization="euclidean"),
                                            rel=1e-12)


@pytest.mark.parametrize("shift", [(2.3, -1.65), (-0.45, 3.8), (0.0, 0.0)])
def test_registration_agrees_with_scikit_image(shift):
    from skimage.registration import phase_cross_correlation

    ref = _blobs(n=128, seed=8)
    moved = shift_image(ref, shift)
    ours = np.array(register(moved, ref, upsample=20))
    theirs = np.array(phase_cross_correlation(ref, moved, upsample_factor=20)[0])
    assert np.allclose(ours, -np.array(shift), atol=0.06)
    assert np.allclose(ours, theirs, atol=0.1), (ours, theirs)
