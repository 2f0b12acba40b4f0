"""The order of the frames in a raw SIM stack, and how to bring a stack into srredsim's order.

srredsim (like fairSIM) expects **angle-major** stacks: all phases of the first angle, then all
phases of the second, ... (frame = angle·P + phase; docs/architecture.md, section 2). Many acquisition programs
export **phase-major** stacks instead: the first phase of every angle, then the second, ...
(frame = phase·A + angle). Read with the wrong order, band separation mixes angles and the
reconstruction silently loses resolution (issue 11: 27.2 dB instead of 30.4 dB on a simulated
field). ``--order phase-major`` on ``predict``/``reconstruct`` reorders such stacks with
:func:`to_angle_major`; :mod:`srredsim.datacheck` recognises them.
"""

from __future__ import annotations

import numpy as np

from srredsim.errors import SrredsimError

ORDERS = ("angle-major", "phase-major")
ORDER_HELP = ("frame order of the raw stack: angle-major (all phases of angle 1, then angle 2, ...; "
              "srredsim's and fairSIM's order) or phase-major (phase 1 of every angle, then phase 2, ...)")


def _check(stack: np.ndarray, angles: int, phases: int, order: str) -> None:
    if order not in ORDERS:
        raise SrredsimError(f"unknown frame order {order!r}; choose from {', '.join(ORDERS)}")
    if stack.ndim != 3 or stack.shape[0] != angles * phases:
        raise SrredsimError(f"a {angles}x{phases} stack needs {angles * phases} frames, got shape "
                            f"{tuple(stack.shape)}")


def to_angle_major(stack: np.ndarray, angles: int, phases: int, order: str = "angle-major") -> np.ndarray:
    """The stack in angle-major order (a view-free copy only when frames move)."""
    stack = np.asarray(stack)
    _check(stack, angles, phases, order)
    return stack if order == "angle-major" else _swap_blocks(stack, phases, angles)


def from_angle_major(stack: np.ndarray, angles: int, phases: int, order: str) -> np.ndarray:
    """An angle-major stack rewritten in ``order`` (the inverse of :func:`to_angle_major`)."""
    stack = np.asarray(stack)
    _check(stack, angles, phases, order)
    return stack if order == "angle-major" else _swap_blocks(stack, angles, phases)


def _swap_blocks(stack: np.ndarray, outer: int, inner: int) -> np.ndarray:
    """Frames ordered ``outer``-major (``frame = o·inner + i``) rewritten ``inner``-major."""
    h, w = stack.shape[1:]
    return np.ascontiguousarray(stack.reshape(outer, inner, h, w).transpose(1, 0, 2, 3).reshape(-1, h, w))


def frame_label(frame: int, angles: int, phases: int, order: str) -> tuple[int, int]:
    """``(angle, phase)`` of frame ``frame`` (0-based) in a stack of the given order."""
    if order == "angle-major":
        return divmod(frame, phases)
    p, a = divmod(frame, angles)
    return a, p
