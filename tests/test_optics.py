import math

import numpy as np
import pytest

from srredsim.errors import SrredsimError
from srredsim.optics import (check_sampling, cutoff_cycles_per_um, cutoff_fft_px, cycles_to_fft_px,
                             fft_px_to_cycles, freq_grid, ideal_otf, make_optics, otf_2d, otf_profile,
                             pattern_vector)


def test_cutoff_and_unit_conversions_round_trip():
    o = make_optics(na=1.2, wavelength_nm=600, pixel_size_um=0.1)
    assert cutoff_cycles_per_um(o) == pytest.approx(2 * 1.2 / 0.6)
    assert cutoff_fft_px(o, 256) == pytest.approx(4.0 * 256 * 0.1)
    k = np.array([1.5, -2.0])
    assert fft_px_to_cycles(cycles_to_fft_px(k, 256, 0.1), 256, 0.1) == pytest.approx(k)


def test_ideal_otf_shape():
    rho = np.linspace(0, 1.2, 121)
    v = ideal_otf(rho)
    assert v[0] == pytest.approx(1.0)
    assert np.all(np.diff(v[rho < 1]) < 0)  # strictly decreasing inside the support
    assert np.all(v[rho >= 1] == 0)
    # the analytic value at rho = 0.5
    assert ideal_otf(np.array([0.5]))[0] == pytest.approx((2 / np.pi) * (math.acos(0.5) - 0.5 * math.sqrt(0.75)), abs=1e-12)


def test_otf_profile_damping_and_aberration():
    rho = np.linspace(0, 0.99, 50)
    ideal = ideal_otf(rho)
    damped = otf_profile(rho, damping=0.3)
    assert damped == pytest.approx(ideal * 0.3 ** rho, abs=5e-4)
    aberrated = otf_profile(rho, defocus_waves=0.1)
    assert aberrated[0] == pytest.approx(1.0, abs=1e-3)
    assert np.all(aberrated[5:-5] < ideal[5:-5])  # aberrations only lose contrast
    with pytest.raises(SrredsimError):
        otf_profile(rho, damping=0)


def test_otf_2d_is_radial_and_shift_moves_the_centre():
    o = make_optics()
    shape = (64, 64)
    otf = otf_2d(o, shape)
    assert otf[0, 0] == pytest.approx(1.0, abs=1e-3)
    assert otf[3, 5] == pytest.approx(otf[-3, -5]) and otf[3, 5] == pytest.approx(otf[5, 3])
    fy, fx = freq_grid(shape, o.pixel_size_um)
    k = (float(fy[4, 0]), float(fx[0, 7]))
    shifted = otf_2d(o, shape, shift_cyc=(-k[0], -k[1]))  # OTF(f - k): centred on k
    assert np.unravel_index(np.argmax(shifted), shape) == (4, 7)
    real = otf_2d(o, shape, real=True)
    assert real.shape == (64, 33) and np.allclose(real, otf[:, :33])


def test_pattern_vector_units():
    v = pattern_vector(math.radians(30), 5.0, 256, 0.08)
    ky, kx = v["k_fft_px"]
    assert math.hypot(ky, kx) == pytest.approx(5.0 * 256 * 0.08)
    assert math.degrees(math.atan2(ky, kx)) == pytest.approx(30)
    assert v["period_um"] == pytest.approx(0.2)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(na=1.6, refractive_index=1.518), "smaller than the refractive index"),
    (dict(pixel_size_um=-0.1), "pixel size must be positive"),
    (dict(pixel_size_um=0), "pixel size must be positive"),
    (dict(na=float("nan")), "finite"),
    (dict(na=-1), "NA must be positive"),
    (dict(wavelength_nm=50), "wavelength_nm"),
])
def test_unphysical_optics_are_one_line_errors(kwargs, msg):
    with pytest.raises(SrredsimError, match=msg) as info:
        make_optics(**kwargs)
    assert "\n" not in str(info.value)


def test_undersampled_pixels_are_refused():
    check_sampling(make_optics(pixel_size_um=0.08))
    with pytest.raises(SrredsimError, match="undersamples"):
        check_sampling(make_optics(pixel_size_um=0.12))
