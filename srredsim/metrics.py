"""Image-quality metrics against a ground truth (the protocol: docs/physics.md, section 4).

* :func:`register` — sub-pixel translation of an image onto a reference (phase correlation,
  refined by a matrix-multiply DFT to 1/``upsample`` pixel) and :func:`shift_image` to apply it.
* :func:`affine_fit` — least-squares ``a·x + b`` that best matches the reference.
* :func:`psnr`, :func:`ssim`, :func:`nrmse` — on images already registered, fitted and cropped;
  the data range is the reference's ``max − min``.
* :func:`frc_curve` / :func:`frc_resolution` — Fourier ring correlation and the resolution at
  which it drops below a threshold (1/7 by default).
* :func:`bead_fwhm` — mean FWHM of isolated point-like spots (2-D Gaussian fits).
* :func:`compare` — the whole protocol for one image against a truth.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from srredsim.errors import SrredsimError


def _as_float(img: np.ndarray, name: str = "image") -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise SrredsimError(f"{name}: expected a 2-D image, got shape {tuple(np.shape(img))}")
    if not np.all(np.isfinite(a)):
        raise SrredsimError(f"{name}: contains NaN/Inf values")
    return a


# ---------------------------------------------------------------------------------------------
# registration and intensity fit
# ---------------------------------------------------------------------------------------------
def _window(shape: tuple[int, int]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1]))


def register(image: np.ndarray, reference: np.ndarray, upsample: int = 20,
             max_shift: float | None = None) -> tuple[float, float]:
    """Shift ``(dy, dx)`` that moves ``image`` onto ``reference`` (apply with :func:`shift_image`).

    Phase correlation of the Hann-windowed images, then the peak refined on a grid of
    ``1/upsample`` pixel by a matrix-multiply DFT (Guizar-Sicairos et al. 2008).
    """
    a = _as_float(image)
    b = _as_float(reference, "reference")
    if a.shape != b.shape:
        raise SrredsimError(f"cannot register images of shapes {a.shape} and {b.shape}")
    w = _window(a.shape)
    fa = sfft.fft2((a - a.mean()) * w)
    fb = sfft.fft2((b - b.mean()) * w)
    cross = fb * np.conj(fa)
    cross /= np.maximum(np.abs(cross), 1e-12 * np.abs(cross).max() + 1e-30)
    corr = np.abs(sfft.ifft2(cross))
    ny, nx = a.shape
    if max_shift is not None:
        yy = np.fft.fftfreq(ny) * ny
        xx = np.fft.fftfreq(nx) * nx
        corr = np.where((np.abs(yy)[:, None] <= max_shift) & (np.abs(xx)[None, :] <= max_shift), corr, 0)
    iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
    dy = iy - ny if iy > ny // 2 else iy
    dx = ix - nx if ix > nx // 2 else ix
    # refine: evaluate the cross-power spectrum's inverse DFT around (dy, dx)
    up = max(int(upsample), 1)
    if up > 1:
        offs = np.arange(-1.5, 1.5 + 0.5 / up, 1.0 / up)
        ky = np.fft.fftfreq(ny)
        kx = np.fft.fftfreq(nx)
        ey = np.exp(2j * np.pi * np.outer(dy + offs, ky))
        ex = np.exp(2j * np.pi * np.outer(kx, dx + offs))
        vals = np.abs(ey @ cross @ ex)
        jy, jx = np.unravel_index(int(np.argmax(vals)), vals.shape)
        dy, dx = dy + offs[jy], dx + offs[jx]
    return float(dy), float(dx)


def shift_image(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Translate by a sub-pixel ``(dy, dx)`` (Fourier shift; the image wraps around)."""
    a = _as_float(image)
    return np.real(sfft.ifft2(ndimage.fourier_shift(sfft.fft2(a), shift)))


def crop(image: np.ndarray, border: int) -> np.ndarray:
    if border <= 0:
        return image
    if 2 * border >= min(image.shape):
        raise SrredsimError(f"border crop {border} leaves nothing of a {image.shape} image")
    return image[border:-border, border:-border]


def affine_fit(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares ``a·image + b`` closest to ``reference``; returns (fitted, a, b)."""
    x = image.ravel()
    y = reference.ravel()
    xm, ym = x.mean(), y.mean()
    var = float(np.mean((x - xm) ** 2))
    a = float(np.mean((x - xm) * (y - ym)) / var) if var > 0 else 0.0
    b = float(ym - a * xm)
    return a * image + b, a, b


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------
def data_range(reference: np.ndarray) -> float:
    rng = float(reference.max() - reference.min())
    return rng if rng > 0 else 1.0


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(image, float) - reference) ** 2))
    if mse == 0:
        return float("inf")
    return 10 * math.log10(data_range(reference) ** 2 / mse)


def nrmse(image: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square error divided by the reference's RMS (``‖x − y‖ / ‖y‖``)."""
    ref = np.asarray(reference, float)
    norm = float(np.sqrt(np.mean(ref ** 2)))
    return float(np.sqrt(np.mean((np.asarray(image, float) - ref) ** 2)) / norm) if norm > 0 else float("inf")


def ssim(image: np.ndarray, reference: np.ndarray, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004): Gaussian window σ = 1.5, K1 = 0.01,
    K2 = 0.03, data range of the reference, sample covariances."""
    x = np.asarray(image, float)
    y = np.asarray(reference, float)
    L = data_range(y)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    trunc = 3.5
    filt = lambda im: ndimage.gaussian_filter(im, sigma, truncate=trunc, mode="reflect")  # noqa: E731
    radius = int(trunc * sigma + 0.5)
    npx = (2 * radius + 1) ** 2
    cov_norm = npx / (npx - 1)
    mx, my = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - mx * mx)
    vy = cov_norm * (filt(y * y) - my * my)
    vxy = cov_norm * (filt(x * y) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    pad = radius
    return float(s[pad:-pad, pad:-pad].mean()) if min(s.shape) > 2 * pad else float(s.mean())


def max_difference(image: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """``(max |image - reference|, that divided by the reference's max - min)``.

    The one meaning of a "tolerance" in srredsim (``validate --tolerance``, ``fiji-check
    --tolerance``): the largest pixel difference relative to the reference's range, so the same
    number works for outputs in network units and in the data's own units.
    """
    a = np.asarray(image, np.float64)
    b = np.asarray(reference, np.float64)
    if a.shape != b.shape:
        raise SrredsimError(f"cannot compare images of shapes {a.shape} and {b.shape}")
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    return d, d / data_range(b)


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------
def frc_curve(a: np.ndarray, b: np.ndarray, bin_width: float = 1.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation of two images of the same square shape.

    Returns ``(freq, frc)`` with ``freq`` in cycles per pixel (0 … 0.5). Both images are
    Hann-windowed first to avoid edge cross artifacts.
    """
    a = _as_float(a)
    b = _as_float(b, "second image")
    if a.shape != b.shape:
        raise SrredsimError(f"FRC needs images of one shape, got {a.shape} and {b.shape}")
    w = _window(a.shape)
    fa = sfft.fft2((a - a.mean()) * w)
    fb = sfft.fft2((b - b.mean()) * w)
    ny, nx = a.shape
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.fftfreq(nx)[None, :]
    r = np.sqrt(fy ** 2 + fx ** 2)
    n = min(ny, nx)
    rings = np.floor(r * n / bin_width).astype(int).ravel()
    nb = int(n / 2 / bin_width)
    keep = rings < nb
    num = np.bincount(rings[keep], (fa * np.conj(fb)).real.ravel()[keep], nb)
    pa = np.bincount(rings[keep], (np.abs(fa) ** 2).ravel()[keep], nb)
    pb = np.bincount(rings[keep], (np.abs(fb) ** 2).ravel()[keep], nb)
    frc = num / np.sqrt(np.maximum(pa * pb, 1e-300))
    freq = (np.arange(nb) + 0.5) * bin_width / n
    return freq, frc


def frc_resolution(a: np.ndarray, b: np.ndarray, pixel_size_um: float | None = None,
                   threshold: float = 1 / 7, smooth: int = 3) -> dict[str, float | None]:
    """Frequency where the (smoothed) FRC first drops below ``threshold`` after its maximum;
    returns cycles/pixel,
    and with a pixel size also cycles/µm and the resolution ``1/f`` in nm."""
    freq, frc = frc_curve(a, b)
    if smooth > 1:
        frc = np.convolve(frc, np.ones(smooth) / smooth, mode="same")
    # the first crossing after the FRC's maximum: low frequencies may correlate poorly with a
    # truth that lacks the sample's out-of-focus haze, which says nothing about resolution
    start = int(np.argmax(frc))
    below = np.nonzero(frc[start + 1:] < threshold)[0]
    if below.size:
        i = int(below[0]) + start + 1
        f0, f1, c0, c1 = freq[i - 1], freq[i], frc[i - 1], frc[i]
        f = float(f0 + (c0 - threshold) * (f1 - f0) / (c0 - c1)) if c0 != c1 else float(f1)
    else:
        f = float(freq[-1])
    out: dict[str, float | None] = {"frc_cycles_per_px": f, "frc_cycles_per_um": None,
                                    "frc_resolution_nm": None}
    if pixel_size_um:
        out["frc_cycles_per_um"] = f / pixel_size_um
        out["frc_resolution_nm"] = 1000.0 * pixel_size_um / f
    return out


def bead_fwhm(image: np.ndarray, pixel_size_um: float | None = None, max_beads: int = 50,
              box: int = 7, min_separation: int | None = None) -> dict[str, float | None]:
    """Mean FWHM of isolated bright spots, by least-squares 2-D Gaussian fits.

    Spots are local maxima above the 99th percentile, at least ``min_separation`` pixels
    (default ``2·box``) from any other candidate and from the border. Returns the mean and
    median FWHM in pixels (and nm with a pixel size) and the number of beads fitted.
    """
    from scipy.optimize import curve_fit

    img = _as_float(image)
    sep = min_separation or 2 * box
    smooth = ndimage.gaussian_filter(img, 1.0)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=3)) & (smooth > np.percentile(smooth, 99))
    ys, xs = np.nonzero(peaks)
    order = np.argsort(smooth[ys, xs])[::-1]
    ys, xs = ys[order], xs[order]
    h, w = img.shape
    chosen = []
    for y, x in zip(ys, xs):
        if y < box or x < box or y >= h - box or x >= w - box:
            continue
        d2 = (ys - y) ** 2 + (xs - x) ** 2
        if np.count_nonzero(d2 < sep ** 2) > 1:
            continue
        chosen.append((y, x))
        if len(chosen) >= max_beads:
            break
    yy, xx = np.mgrid[-box:box + 1, -box:box + 1]

    def gauss(coords, amp, y0, x0, sigma, offset):
        y, x = coords
        return (amp * np.exp(-((y - y0) ** 2 + (x - x0) ** 2) / (2 * sigma ** 2)) + offset).ravel()

    fwhms = []
    for y, x in chosen:
        patch = img[y - box:y + box + 1, x - box:x + box + 1]
        p0 = (patch.max() - patch.min(), 0.0, 0.0, 1.5, patch.min())
        try:
            popt, _ = curve_fit(gauss, (yy, xx), patch.ravel(), p0=p0, maxfev=2000)
        except (RuntimeError, ValueError):
            continue
        sigma = abs(popt[3])
        if 0.3 < sigma < box and abs(popt[1]) < 2 and abs(popt[2]) < 2:
            fwhms.append(2 * math.sqrt(2 * math.log(2)) * sigma)
    if not fwhms:
        return {"fwhm_px": None, "fwhm_median_px": None, "fwhm_nm": None, "beads": 0}
    mean = float(np.mean(fwhms))
    return {"fwhm_px": mean, "fwhm_median_px": float(np.median(fwhms)),
            "fwhm_nm": 1000.0 * mean * pixel_size_um if pixel_size_um else None,
            "beads": len(fwhms)}


# ---------------------------------------------------------------------------------------------
# the protocol
# ---------------------------------------------------------------------------------------------
def upsample_fourier(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Band-limited (zero-padding) interpolation of ``image`` onto a larger ``shape``."""
    a = _as_float(image)
    if a.shape == tuple(shape):
        return a
    ny, nx = a.shape
    my, mx = shape
    if my < ny or mx < nx:
        raise SrredsimError(f"cannot upsample {a.shape} to the smaller {tuple(shape)}")
    spec = np.fft.fftshift(sfft.fft2(a))
    out = np.zeros(shape, complex)
    oy, ox = (my - ny) // 2, (mx - nx) // 2
    out[oy:oy + ny, ox:ox + nx] = spec
    return np.real(sfft.ifft2(np.fft.ifftshift(out))) * (my * mx) / (ny * nx)


def compare(image: np.ndarray, truth: np.ndarray, border: int = 32, pixel_size_um: float | None = None,
            register_images: bool = True, beads: bool = False) -> dict[str, float | None]:
    """The evaluation protocol for one image against the ground truth.

    1. An image of half the truth's size (widefield, raw grid) is Fourier-upsampled 2x.
    2. Sub-pixel registration onto the truth (translation only), applied by a Fourier shift.
    3. Border crop of ``border`` pixels on both.
    4. Least-squares affine intensity fit ``a·x + b`` to the truth.
    5. PSNR (data range of the cropped truth), SSIM, NRMSE; FRC against the truth (1/7);
       optionally the bead FWHM of the unfitted, registered image.
    """
    t = _as_float(truth, "truth")
    x = _as_float(image)
    if x.shape != t.shape:
        if x.shape[0] * 2 == t.shape[0] and x.shape[1] * 2 == t.shape[1]:
            x = upsample_fourier(x, t.shape)
        else:
            raise SrredsimError(f"image of shape {x.shape} does not match the truth {t.shape} "
                                "(nor half of it)")
    if np.ptp(x) == 0:
        raise SrredsimError("image is constant; nothing to compare")
    shift = (0.0, 0.0)
    if register_images:
        shift = register(x, t, max_shift=min(t.shape) / 8)
        x = shift_image(x, shift)
    tc = crop(t, border)
    xc = crop(x, border)
    fitted, a, b = affine_fit(xc, tc)
    row: dict[str, float | None] = {
        "psnr": psnr(fitted, tc), "ssim": ssim(fitted, tc), "nrmse": nrmse(fitted, tc),
        "shift_y": shift[0], "shift_x": shift[1], "gain": a, "offset": b,
    }
    row.update(frc_resolution(fitted, tc, pixel_size_um))
    if beads:
        row.update(bead_fwhm(xc, pixel_size_um))
    return row
