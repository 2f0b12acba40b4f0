"""RED-fairSIM's core: the RED-Net, its configuration, same-grid pairs and the pair writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srredsim.config import RunConfig
from srredsim.errors import SrredsimError


def _red_cfg(**model):
    return RunConfig.from_dict({"model": {"architecture": "red_net", "in_channels": 1, "filters": 4, "depth": 2,
                                          **model}})


def test_red_net_keeps_the_size_and_starts_from_its_input():
    """Same-size output; with the correction layer zeroed the network returns ReLU(input) -- the
    outermost skip of Mao et al.'s RED-Net."""
    from srredsim.models import build_model, inference_twin

    cfg = _red_cfg()
    model = build_model(cfg.model)
    x = np.random.default_rng(0).normal(0.5, 0.3, (2, 24, 40, 1)).astype("float32")
    assert model.predict(x, verbose=0).shape == x.shape
    layer = model.get_layer("correction")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(x, 0), atol=1e-6)
    layer.set_weights([np.random.default_rng(1).normal(0, 0.1, w.shape).astype("float32")
                       for w in layer.get_weights()])
    twin = inference_twin(model, cfg.model)
    assert not any(type(l).__name__ == "Conv2DTranspose" for l in twin.layers)
    np.testing.assert_allclose(twin.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_red_net_configuration_rules():
    cfg = _red_cfg()
    assert (cfg.model.scale, cfg.model.takes_raw) == (1, False)
    assert (RunConfig().model.scale, RunConfig().model.takes_raw) == (2, True)
    with pytest.raises(SrredsimError, match="in_channels must be 1"):
        _red_cfg(in_channels=15)
    with pytest.raises(SrredsimError, match="widefield_fraction"):
        RunConfig.from_dict({"model": {"architecture": "red_net", "in_channels": 1},
                             "data": {"widefield_fraction": 0.2}})


def test_same_grid_patches_stay_registered_under_rotation_and_flip(tmp_path):
    """A pair whose reference equals its input must give equal patches for every augmentation."""
    from srredsim.config import DataConfig, NormalizationConfig
    from srredsim.pairs import PairedData, PatchSampler
    from srredsim.tiff import write_tiff

    img = np.random.default_rng(3).random((1, 40, 36)).astype("float32")
    for sub in ("x", "y"):
        write_tiff(tmp_path / sub / "a.tif", img)
    norm = NormalizationConfig()
    data = PairedData([(tmp_path / "x/a.tif", tmp_path / "y/a.tif")], 1, norm, scale=1)
    sampler = PatchSampler(data, norm, DataConfig(patch_size=16), seed=0)
    rng = np.random.default_rng(0)
    for _ in range(12):
        x, y = sampler.sample(rng)
        assert x.shape == y.shape == (16, 16, 1)
        np.testing.assert_array_equal(x, y)
    with pytest.raises(SrredsimError, match="expected the size"):
        write_tiff(tmp_path / "y2" / "a.tif", np.zeros((1, 80, 72), "float32"))
        PairedData([(tmp_path / "x/a.tif", tmp_path / "y2/a.tif")], 1, norm, scale=1)


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory):
    from srredsim.recipes import write_training_data

    root = tmp_path_factory.mktemp("recipe")
    write_training_data(root / "sim3", 3, 1, 32, 1, None, progress=False, targets=["support"], phases=3)
    return root / "sim3" / "support"


def test_pairs_are_the_classical_reconstruction_with_the_true_pattern(tiny_recipe, tmp_path):
    from srredsim.classical import ReconOptions
    from srredsim.redfairsim import _known_params, _training_optics, network_input, write_training_pairs
    from srredsim.tiff import read_raw_stack, read_reference

    out = write_training_pairs(tmp_path / "pairs", [tiny_recipe], workers=1, progress=False)
    xs = sorted((out / "trainx").glob("*.tif"))
    assert len(xs) == 3 and len(list((out / "testx").glob("*.tif"))) == 1
    assert json.loads((out / "recipe.json").read_text())["recipe"] == "sim"
    raw_path = sorted((tiny_recipe / "trainx").glob("*.tif"))[0]
    meta = json.loads((tiny_recipe.parent / "params" / (raw_path.stem + ".json")).read_text())
    raw, _ = read_raw_stack(raw_path)
    expected, _ = network_input(raw, _training_optics(meta), params=_known_params(meta), opts=ReconOptions(fade_px=0))
    got, _ = read_reference(xs[0])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    target, _ = read_reference(out / "trainy" / xs[0].name)
    np.testing.assert_array_equal(target, read_reference(tiny_recipe / "trainy" / raw_path.name)[0])
    with pytest.raises(SrredsimError, match="exists"):
        write_training_pairs(out, [tiny_recipe], progress=False)
    with pytest.raises(SrredsimError, match="params"):
        write_training_pairs(tmp_path / "bad", [tmp_path / "pairs"], progress=False)


def test_red_net_trains_on_the_pairs_and_predicts_the_same_size(tiny_recipe, tmp_path):
    from srredsim.redfairsim import write_training_pairs
    from srredsim.runfolder import load_run
    from srredsim.train import train

    pairs = write_training_pairs(tmp_path / "pairs", [tiny_recipe], workers=1, progress=False)
    cfg = RunConfig.from_dict({
        "model": {"architecture": "red_net", "in_channels": 1, "filters": 4, "depth": 1},
        "data": {"patch_size": 32, "patches_per_image": 1},
        "train": {"epochs": 1, "batch_size": 2, "steps_per_epoch": 2, "tensorboard": False, "precision": "fp32"}})
    run = train(pairs, tmp_path / "run", cfg, verbose=0)
    assert run.config.model.architecture == "red_net"
    assert run.config.training_range is not None  # from the pairs' recipe.json
    model = load_run(tmp_path / "run").load_model("best")
    assert model.predict(np.zeros((1, 48, 40, 1), "float32"), verbose=0).shape == (1, 48, 40, 1)


def test_the_classical_settings_travel_from_the_pairs_to_the_model(tiny_recipe, tmp_path):
    """Pairs made with another apodisation record it; a RED-Net must carry the same settings to
    train on them, and predict then reconstructs with them."""
    from srredsim.classical import ReconOptions
    from srredsim.redfairsim import check_pairs_settings, recon_options, write_training_pairs

    out = write_training_pairs(tmp_path / "pairs", [tiny_recipe], progress=False, settings={"apo_bend": 0.3})
    assert json.loads((out / "recipe.json").read_text())["reconstruction"] == {
        "wiener": 0.05, "apo_cutoff": 2.0, "apo_bend": 0.3}
    default = _red_cfg().model
    with pytest.raises(SrredsimError, match="apo_bend 0.3"):
        check_pairs_settings(out, default)
    matching = _red_cfg(classical_apo_bend=0.3).model
    check_pairs_settings(out, matching)
    assert recon_options(matching).apo_bend == 0.3 and recon_options(matching, fallback="widefield").fallback == "widefield"
    assert recon_options(default) == ReconOptions()
