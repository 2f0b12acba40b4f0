"""Moving a network between frame layouts (srredsim.layouts; train --init-from across layouts)."""

from __future__ import annotations

import numpy as np


def _frames(b0, b1, phases):
    return np.array([b0 + 2 * np.real(b1 * np.exp(2j * np.pi * p / phases)) for p in range(phases)])


def test_phase_synthesis_turns_three_phases_into_five():
    from srredsim.layouts import phase_synthesis_matrix

    rng = np.random.default_rng(0)
    for _ in range(5):
        b0, b1 = rng.uniform(1, 3), rng.uniform(0, 1) * np.exp(1j * rng.uniform(0, 2 * np.pi))
        np.testing.assert_allclose(phase_synthesis_matrix(3, 5) @ _frames(b0, b1, 3), _frames(b0, b1, 5), atol=1e-12)
        np.testing.assert_allclose(phase_synthesis_matrix(5, 3) @ _frames(b0, b1, 5), _frames(b0, b1, 3), atol=1e-12)


def test_init_from_a_3x5_run_gives_a_3x3_network_with_the_same_function(tmp_path, trained_run):
    """A 3x3 network started from a 3x5 run computes, on a 3-phase stack, what the 3x5 network
    computes on that stack resampled to 5 phases."""
    from conftest import tiny_config, write_toy_folder
    from srredsim.layouts import phase_synthesis_matrix
    from srredsim.runfolder import load_run
    from srredsim.train import train

    data = write_toy_folder(tmp_path / "d3", n_train=2, n_test=1, size=32, phases=3)
    cfg = tiny_config(**{"optics.phases": 3, "model.in_channels": 9, "train.learning_rate": 1e-12,
                         "train.epochs": 1})
    run3 = train(data, tmp_path / "run3", cfg, verbose=0, init_from=trained_run)
    m3 = load_run(run3.path).load_model("last")
    m5 = load_run(trained_run).load_model("best")
    x9 = np.random.default_rng(1).uniform(0, 1, (1, 24, 24, 9)).astype(np.float32)
    m = phase_synthesis_matrix(3, 5)
    x15 = np.concatenate([np.einsum("qp,bhwp->bhwq", m, x9[..., 3 * a:3 * a + 3]) for a in range(3)], axis=-1)
    np.testing.assert_allclose(m3.predict(x9, verbose=0), m5.predict(x15.astype(np.float32), verbose=0),
                               atol=1e-4)
