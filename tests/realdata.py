"""The real raw SIM stacks of ``../shared/data/real`` (see its README): never copied into the
repository; tests that need them skip with a reason when the folder is absent.
``SRREDSIM_REAL_DATA`` points elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL_DIR = Path(os.environ.get("SRREDSIM_REAL_DATA",
                               Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"))
BEADS = "beads_3x3_na1.49_515nm_86.7nm.tif"  # NA 1.49, 515 nm emission, 86.7 nm pixels, 3x3
MICROTUBULES = "microtubules_3x3_62.6nm.tif"  # 62.6 nm pixels, pattern period ~181 nm, 3x3


def real_stack(name: str) -> Path:
    path = REAL_DIR / name
    if not path.is_file():
        pytest.skip(f"real data {name} not found in {REAL_DIR} (set SRREDSIM_REAL_DATA)")
    return path
