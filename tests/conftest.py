"""Shared fixtures: tiny, learnable paired data made on the fly (no downloads)."""

from __future__ import annotations

import os
import subprocess
import sys
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from srredsim.quiet import quiet_engines  # noqa: E402  (as the command line does: no engine log lines)

quiet_engines()
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


def make_tiny_run(path: Path, normalization: dict | None = None, filters: int = 4, depth: int = 2,
                  positive_biases: bool = False, last_weights: bool = False,
                  architecture: str = "sr_redsim") -> Path:
    """A run folder with an untrained, seeded tiny SR-REDSIM (or ``architecture="red_net"``: a tiny
    RED-Net of RED-fairSIM). ``positive_biases``: biases drawn in [0, 0.05) so its output is not
    all zero; ``last_weights``: also last weights that differ from the best (scaled kernels,
    raised biases)."""
    import keras

    from srredsim.config import RunConfig
    from srredsim.models import build_model
    from srredsim.runfolder import WEIGHTS_BEST, WEIGHTS_LAST, save_run_skeleton

    raw = {"model": {"filters": filters, "depth": depth, "architecture": architecture,
                     "in_channels": 1 if architecture == "red_net" else 15},
           "metadata": {"name": "Tiny SR-REDSIM test", "authors": ["Test Author"], "license": "MIT",
                        "training_data": "synthetic test data"}}
    if normalization:
        raw["normalization"] = normalization
    cfg = RunConfig.from_dict(raw)
    keras.utils.set_random_seed(1)  # kernels too: an unlucky draw (other tests move the global RNG) outputs all zero
    model = build_model(cfg.model)
    rng = np.random.default_rng(1)
    for layer in model.layers if positive_biases else []:
        w = layer.get_weights()
        if len(w) == 2:
            w[1] = rng.uniform(0.0, 0.05, w[1].shape).astype("float32")
            layer.set_weights(w)
    save_run_skeleton(path, cfg)
    model.save_weights(path / WEIGHTS_BEST)
    if last_weights:
        for layer in model.layers:
            w = layer.get_weights()
            if len(w) == 2:
                layer.set_weights([w[0] * 1.3, w[1] + 0.01])
        model.save_weights(path / WEIGHTS_LAST)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A seeded tiny SR-REDSIM run folder (8 filters, depth 2, positive biases: its output is not
    all zero) for the engine tests, one per test module."""
    return make_tiny_run(tmp_path_factory.mktemp("tiny") / "tiny", filters=8, depth=2, positive_biases=True)


@pytest.fixture(scope="module")
def tiny_stack(tiny_run) -> np.ndarray:
    """A synthetic 15 x 64² raw stack at ``tiny_run``'s optics."""
    from srredsim.config import RunConfig
    from srredsim.export.testdata import synthetic_raw_stack

    return synthetic_raw_stack(RunConfig.load(tiny_run).optics, 64, seed=5)


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
            "train.epochs": 2, "train.batch_size": 2, "train.seed": 1}
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


# ---- helpers shared by the JVM, export and Fiji tests -------------------------------------------

def tools_missing() -> str | None:
    """Why the JVM tests cannot run here, or None."""
    from srredsim.errors import SrredsimError
    from srredsim.export import jvm

    try:
        jvm.find_tools(need_maven=not bool(jvm.cached_jar()))
    except SrredsimError as exc:
        return str(exc)
    return None


def deepimagej_missing() -> str | None:
    """Why the DeepImageJ checks cannot run here (no vendor builds of DeepImageJ/JDLL, no Java or
    Maven), or None."""
    from srredsim.errors import SrredsimError
    from srredsim.export import deepimagej_build as dib

    try:
        dib.find_vendor()
        dib.java_tools(need_maven=True)
    except SrredsimError as exc:
        return str(exc)
    return None


def srredsim_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m srredsim ARGS`` in a fresh process, as a user runs it (engines' logs as by default)."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "srredsim", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def export_package(run: Path, out: Path) -> Path:
    """``srredsim export RUN --format bioimageio -o OUT --overwrite`` in a fresh process."""
    proc = srredsim_cli("export", str(run), "--format", "bioimageio", "-o", str(out), "--overwrite")
    assert proc.returncode == 0, f"srredsim export failed:\n{proc.stdout}\n{proc.stderr}"
    assert out.is_file()
    return out
