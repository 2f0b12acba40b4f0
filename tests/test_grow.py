"""Growing a small SR-REDSIM into a larger one keeps its function (srredsim.grow)."""

from __future__ import annotations

import numpy as np
import pytest


def _relative_max(a, b):
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))


def test_grown_network_computes_what_the_small_one_did():
    import keras

    from srredsim.grow import grow_sr_redsim
    from srredsim.models import build_sr_redsim

    keras.utils.set_random_seed(3)
    small = build_sr_redsim(15, 8, 2, name="small")
    # trained-looking weights: positive biases keep the ReLUs alive
    for layer in small.layers:
        if layer.weights:
            k, b = layer.get_weights()
            layer.set_weights([k, np.abs(np.random.default_rng(1).normal(0.05, 0.02, b.shape)).astype(np.float32)])
    big = grow_sr_redsim(small, build_sr_redsim(15, 16, 4, name="big"), 2, 4)
    x = np.random.default_rng(0).uniform(0, 1, (2, 24, 24, 15)).astype(np.float32)
    ys, yb = small.predict(x, verbose=0), big.predict(x, verbose=0)
    assert yb.shape == ys.shape == (2, 48, 48, 1) and np.abs(ys).max() > 0
    assert _relative_max(yb, ys) < 1e-2
    # exact with no noise in the unused weights
    exact = grow_sr_redsim(small, build_sr_redsim(15, 16, 4, name="exact"), 2, 4, noise=0.0)
    assert _relative_max(exact.predict(x, verbose=0), ys) < 1e-5


def test_growing_needs_room():
    from srredsim.errors import SrredsimError
    from srredsim.grow import grow_sr_redsim
    from srredsim.models import build_sr_redsim

    with pytest.raises(SrredsimError):
        grow_sr_redsim(build_sr_redsim(15, 8, 2), build_sr_redsim(15, 12, 4), 2, 4)


def test_train_init_from_a_smaller_run_grows_it(tmp_path, trained_run, toy_data):
    """srredsim train --init-from a smaller SR-REDSIM run starts from the grown network."""
    from conftest import tiny_config
    from srredsim.runfolder import load_run
    from srredsim.train import train

    cfg = tiny_config(**{"model.filters": 16, "model.depth": 3, "train.learning_rate": 1e-12, "train.epochs": 1})
    big = train(toy_data, tmp_path / "big", cfg, verbose=0, init_from=trained_run)
    x = np.random.default_rng(0).uniform(0, 1, (1, 24, 24, 15)).astype(np.float32)
    ys = load_run(trained_run).load_model("best").predict(x, verbose=0)
    yb = load_run(big.path).load_model("last").predict(x, verbose=0)
    assert _relative_max(yb, ys) < 2e-2
