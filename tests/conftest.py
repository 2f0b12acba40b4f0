"""Shared fixtures: tiny, learnable paired data made on the fly (no downloads)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("BIOIMAGEIO_HTTP_TIMEOUT", "1")


@pytest.fixture(scope="session", autouse=True)
def _private_cache():
    """Converted engines and engine measurements go to a cache of the test session, not the user's."""
    old = os.environ.get("SRREDSIM_CACHE_DIR")
    path = tempfile.mkdtemp(prefix="srredsim-test-cache-")
    os.environ["SRREDSIM_CACHE_DIR"] = path
    yield Path(path)
    if old is None:
        os.environ.pop("SRREDSIM_CACHE_DIR", None)
    else:
        os.environ["SRREDSIM_CACHE_DIR"] = old
    shutil.rmtree(path, ignore_errors=True)


def toy_pair(rng: np.random.Generator, size: int = 32, angles: int = 3, phases: int = 5):
    """A toy SIM-like pair: blobs on a 2x grid, 15 patterned + binned + noisy raw frames.

    Not physics (see srredsim.simulate for that) -- just a task small networks can learn fast.
    """
    n = 2 * size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    truth = np.zeros((n, n), np.float32)
    for _ in range(12):
        cy, cx = rng.uniform(0, n, 2)
        s = rng.uniform(1.0, 3.0)
        truth += rng.uniform(0.5, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    frames = []
    for a in range(angles):
        th = np.pi * a / angles
        k = 2 * np.pi / 5.0
        for p in range(phases):
            pat = 1 + 0.8 * np.cos(k * (np.cos(th) * xx + np.sin(th) * yy) + 2 * np.pi * p / phases)
            img = (truth * pat).reshape(size, 2, size, 2).mean(axis=(1, 3))
            frames.append(img)
    raw = np.stack(frames) * 200 + 100
    raw = rng.poisson(raw).astype(np.uint16)
    return raw, truth


def write_toy_folder(root: Path, n_train: int = 4, n_test: int = 0, size: int = 32, seed: int = 0,
                     angles: int = 3, phases: int = 5, pixel_size_um: float = 0.08) -> Path:
    from srredsim.tiff import write_sr_image, write_tiff

    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("test", n_test)):
        if not count:
            continue
        (root / f"{split}x").mkdir(parents=True, exist_ok=True)
        (root / f"{split}y").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            raw, truth = toy_pair(rng, size, angles, phases)
            write_tiff(root / f"{split}x" / f"img{i:03d}.tif", raw, pixel_size_um=pixel_size_um)
            write_sr_image(root / f"{split}y" / f"img{i:03d}.tif", truth, raw_pixel_size_um=pixel_size_um)
    return root


@pytest.fixture
def toy_data(tmp_path) -> Path:
    return write_toy_folder(tmp_path / "data", n_train=4, n_test=1, size=32)


def tiny_config(**overrides):
    """A RunConfig for a tiny SR-REDSIM that trains in seconds."""
    from srredsim.config import RunConfig

    base = {"model.filters": 8, "model.depth": 2, "data.patch_size": 16, "data.patches_per_image": 4,
            "train.epochs": 2, "train.batch_size": 2, "train.seed": 1, "train.tensorboard": False}
    base.update(overrides)
    return RunConfig().with_overrides(base)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny SR-REDSIM trained for 2 epochs on toy data (shared by the tests of a session)."""
    from srredsim.train import train

    root = tmp_path_factory.mktemp("trained")
    data = write_toy_folder(root / "data", n_train=3, n_test=1, size=32)
    run = train(data, root / "run", tiny_config(), verbose=0)
    return run.path
