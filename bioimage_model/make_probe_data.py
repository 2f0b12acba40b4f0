"""Stage 0 of the shipped models' curriculum: an easy, fixed-|k| 3x5 training set.

SIM demodulation is hard for a CNN to find from scratch (it is not shift-invariant and needs
multiplicative interactions between frames): on the full ``sim`` recipe a fresh SR-REDSIM
learned to denoise widefield and never used the pattern. On this set -- one pattern |k| (0.85 of
the cutoff), strong modulation (0.8-0.95), 100-1000 photons, content no prior can guess
(points, textures, the generic mix), target = truth inside the SIM support -- a 32-filter, depth-5
SR-REDSIM starts to use the pattern after ~1000-1300 steps (measured: the line-pair chart's
pattern-removed control). The later stages widen the acquisitions step by step (retrain.sh).

    python bioimage_model/make_probe_data.py OUT [COUNT]      # COUNT training stacks (1200)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from srredsim.recipes import default_optics
from srredsim.simulate import SimulationConfig, simulate_stack
from srredsim.tiff import write_sr_image, write_tiff


def main(out: Path, count: int = 1200) -> None:
    for split, n, offset in (("train", count, 0), ("test", 32, 100000)):
        (out / f"{split}x").mkdir(parents=True, exist_ok=True)
        (out / f"{split}y").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = np.random.default_rng([7, i + offset])
            cfg = SimulationConfig(size=96, optics=default_optics(), photons=(100.0, 1000.0),
                                   structures=str(rng.choice(["points", "textures", "generic"])),
                                   k_fraction=0.85, modulation=(0.8, 0.95), haze=(0.0, 0.2))
            st = simulate_stack(cfg, seed=(7, i + offset), targets=["support"])
            write_tiff(out / f"{split}x" / f"s{i:05d}.tif", st.raw, pixel_size_um=0.08, axes="ZYX")
            write_sr_image(out / f"{split}y" / f"s{i:05d}.tif", st.targets["support"], raw_pixel_size_um=0.08)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1200)
