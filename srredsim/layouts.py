"""Moving a trained network between frame layouts (e.g. 3 angles x 5 phases -> 3 x 3).

For 2-beam SIM each angle's frames are ``I(φ) = b0 + b1·e^{iφ} + b1*·e^{-iφ}``: three bands. With
equally spaced phases ``2πp/P`` (the convention of this toolkit and fairSIM), the bands follow
from any ``P >= 3`` frames, and the frames of any other phase count follow from the bands. So a
stack of ``P`` phases maps linearly onto one of ``Q`` phases (per angle):

    J_q = Σ_p I_p · (1/P) · (1 + 2 cos(2πq/Q − 2πp/P))

A network's first convolution is linear in its input frames, so a network trained on ``Q``
phases becomes one that reads ``P`` phases by folding that map into its first kernel -- the same
function on noise-free data, and a starting point for fine-tuning on real ``P``-phase noise
(``srredsim train --init-from`` does this when the layouts differ).
"""

from __future__ import annotations

import numpy as np

from srredsim.errors import SrredsimError


def phase_synthesis_matrix(phases_from: int, phases_to: int) -> np.ndarray:
    """``M`` of shape ``(phases_to, phases_from)``: ``J = M @ I`` per angle (2-beam SIM)."""
    if phases_from < 3 or phases_to < 3:
        raise SrredsimError("2-beam SIM needs at least 3 phases per angle")
    q = np.arange(phases_to)[:, None]
    p = np.arange(phases_from)[None, :]
    return (1.0 + 2.0 * np.cos(2 * np.pi * q / phases_to - 2 * np.pi * p / phases_from)) / phases_from


def convert_first_kernel(kernel: np.ndarray, angles: int, phases_from: int, phases_to: int) -> np.ndarray:
    """A first-layer kernel ``(kh, kw, angles·phases_from, out)`` for inputs of ``phases_to`` phases.

    The returned kernel applied to a ``phases_to`` stack equals ``kernel`` applied to that stack
    resampled to ``phases_from`` phases (frames angle-major, phases fastest).
    """
    kh, kw, cin, cout = kernel.shape
    if cin != angles * phases_from:
        raise SrredsimError(f"kernel has {cin} input channels, not {angles} x {phases_from}")
    m = phase_synthesis_matrix(phases_to, phases_from)  # (phases_from, phases_to): I_from = m @ I_to
    k = kernel.reshape(kh, kw, angles, phases_from, cout)
    out = np.einsum("hwaqo,qp->hwapo", k, m)
    return out.reshape(kh, kw, angles * phases_to, cout).astype(kernel.dtype)
