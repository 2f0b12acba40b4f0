"""Growing a trained small SR-REDSIM into the full network without changing what it computes.

Why: learning to demodulate the illumination pattern is the slow part of training a SIM network
(measured: a 32-filter, depth-5 SR-REDSIM needs ~1000 steps before its output depends on the
pattern at all). The small network takes 4x less time per step, so it finds the demodulation
sooner; this module then embeds it in the paper's 64-filter, depth-10 SR-REDSIM, which goes on
training from a network that already uses the pattern (Net2Net-style growth, Chen et al. 2016).

The embedding (``small``: ``F`` filters, depth ``d``; ``big``: ``>= 2F`` filters, depth ``D > d``):

* encoder convolutions 1..2d are the small network's, in channels ``[0, F)``;
* convolution 2d+1 moves the signal to channels ``[F, 2F)``; convolutions 2d+2..2D pass it on
  unchanged (identity kernels: a ReLU of a non-negative input is the identity); so the extra skip
  sources p(d+1)..p(D) hold the small network's bottleneck input in ``[F, 2F)`` and zeros in
  ``[0, F)``;
* the last encoder convolution applies the small network's last one to channels ``[F, 2F)``;
* decoder blocks 1..D-d pass channels ``[0, F)`` through (identity) and leave whatever their
  skip adds in ``[F, 2F)``, which no later layer reads; blocks D-d+1..D are the small network's
  blocks 1..d (they add p(d)..p(1), exactly as in the small network);
* the final layers are the small network's.

Every other weight is the big network's random initialisation scaled by ``noise`` (1e-3), so the
function is preserved to ~1e-3 and the unused channels still receive gradients (exact zeros would
stay zero forever).
"""

from __future__ import annotations

import numpy as np

from srredsim.errors import SrredsimError


def _identity_kernel(channels: int) -> np.ndarray:
    k = np.zeros((3, 3, channels, channels), np.float32)
    k[1, 1] = np.eye(channels, dtype=np.float32)
    return k


def grow_sr_redsim(small, big, small_depth: int, big_depth: int, noise: float = 1e-3, seed: int = 0):
    """Write the embedding of ``small`` into ``big`` (both built by :func:`build_sr_redsim`,
    paper layers) in place; returns ``big``."""
    f = small.get_layer("enc_conv1").filters
    fb = big.get_layer("enc_conv1").filters
    d, dd = small_depth, big_depth
    if fb < 2 * f or dd <= d:
        raise SrredsimError(f"cannot grow {f} filters/depth {d} into {fb} filters/depth {dd}: "
                            "needs at least twice the filters and more depth")
    if small.input.shape[-1] != big.input.shape[-1]:
        raise SrredsimError("the two networks read different frame counts")
    rng = np.random.default_rng(seed)
    lo, hi = slice(0, f), slice(f, 2 * f)

    def start(name):
        """The big layer's weights, scaled to noise (a fresh draw, so the scale is the init's)."""
        layer = big.get_layer(name)
        w = [a * np.float32(noise) * rng.choice([-1.0, 1.0], size=a.shape).astype(np.float32) for a in
             layer.get_weights()]
        return layer, w

    def small_w(name):
        return small.get_layer(name).get_weights()

    def put(name, kernel_blocks, bias_blocks):
        layer, (k, b) = start(name)
        for (src, dst), val in kernel_blocks:  # Conv2D kernel (kh, kw, in, out); transposed (kh, kw, out, in)
            k[:, :, src, dst] = val
        for dst, val in bias_blocks:
            b[dst] = val
        layer.set_weights([k, b])

    # ---- encoder -------------------------------------------------------------------------------
    for i in range(1, 2 * d + 1):
        k, b = small_w(f"enc_conv{i}")
        src = slice(0, k.shape[2]) if i == 1 else lo
        put(f"enc_conv{i}", [((src, lo), k)], [(lo, b)])
    put(f"enc_conv{2 * d + 1}", [((lo, hi), _identity_kernel(f)), ((lo, lo), 0.0), ((hi, lo), 0.0), ((hi, hi), 0.0)],
        [(lo, 0.0), (hi, 0.0)])
    for i in range(2 * d + 2, 2 * dd + 1):
        put(f"enc_conv{i}", [((hi, hi), _identity_kernel(f)), ((lo, lo), 0.0), ((lo, hi), 0.0), ((hi, lo), 0.0)],
            [(lo, 0.0), (hi, 0.0)])
    k, b = small_w(f"enc_conv{2 * d + 1}")
    put(f"enc_conv{2 * dd + 1}", [((hi, lo), k), ((lo, lo), 0.0), ((hi, hi), _identity_kernel(f)), ((lo, hi), 0.0)],
        [(lo, b), (hi, 0.0)])

    # ---- decoder (transposed kernels are (kh, kw, out, in)) --------------------------------------
    extra = dd - d
    for blk in range(1, dd + 1):
        for part in ("a", "b"):
            name = f"dec{blk}_deconv_{part}"
            if blk <= extra:
                put(name, [((lo, lo), _identity_kernel(f)), ((hi, lo), 0.0), ((lo, hi), 0.0), ((hi, hi), 0.0)],
                    [(lo, 0.0), (hi, 0.0)])
            else:
                k, b = small_w(f"dec{blk - extra}_deconv_{part}")
                put(name, [((lo, lo), k), ((hi, lo), 0.0), ((lo, hi), 0.0), ((hi, hi), 0.0)], [(lo, b), (hi, 0.0)])
    k, b = small_w("dec_final_deconv")
    put("dec_final_deconv", [((lo, lo), k), ((hi, lo), 0.0), ((lo, hi), 0.0), ((hi, hi), 0.0)], [(lo, b), (hi, 0.0)])
    k, b = small_w("up_deconv")
    put("up_deconv", [((lo, lo), k), ((hi, lo), 0.0), ((lo, hi), 0.0), ((hi, hi), 0.0)], [(lo, b), (hi, 0.0)])
    k, b = small_w("sr")
    layer, (kk, bb) = start("sr")
    kk[:, :, :, lo] = k
    kk[:, :, :, hi] = 0.0
    layer.set_weights([kk, b])
    return big
