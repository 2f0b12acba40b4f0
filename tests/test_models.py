"""The networks: SR-REDSIM's exact size, shapes for any H x W, the U-Net size rule."""

from __future__ import annotations

import numpy as np
import pytest


def _sr_redsim_params(c: int, f: int, depth: int) -> int:
    """Parameter count from the architecture's definition (docs/architecture.md, section 3)."""
    conv = lambda cin, cout: 9 * cin * cout + cout  # noqa: E731  3x3 kernel + bias
    n_conv = 2 * depth + 1
    return (conv(c, f) + (n_conv - 1) * conv(f, f)  # encoder
            + n_conv * conv(f, f)  # decoder transposed convolutions
            + conv(f, f) + conv(f, 1))  # stride-2 up-sampling + output layer


def test_sr_redsim_matches_the_paper():
    from srredsim.models import SR_REDSIM_PARAMS_64, build_sr_redsim

    m = build_sr_redsim()
    assert m.count_params() == _sr_redsim_params(15, 64, 10) == SR_REDSIM_PARAMS_64 == 1_560_257
    weight_layers = [l for l in m.layers if l.weights]
    assert len(weight_layers) == 44
    kinds = [type(l).__name__ for l in weight_layers]
    assert kinds.count("Conv2D") == 21 and kinds.count("Conv2DTranspose") == 23
    # the skips are symmetric: decoder block k adds the output of encoder conv 2*(11-k)
    for k in range(1, 11):
        add = m.get_layer(f"dec{k}_add")
        sources = {t._keras_history.operation.name for t in add.input}
        assert f"enc_conv{2 * (11 - k)}" in sources


def test_flops_of_full_pass():
    from srredsim.models import build_sr_redsim, conv_flops

    m = build_sr_redsim()
    # 2 FLOP per MAC; the 512^2 pass is ~817.5 GFLOP (docs/architecture.md, section 3)
    per_mac = conv_flops(m, 512, 512) / 2
    enc_dec = 512 * 512 * 9 * (15 * 64 + 20 * 64 * 64 + 21 * 64 * 64)
    up = 512 * 512 * 9 * 64 * 64  # stride-2 transposed conv: a kernel per input pixel
    final = 1024 * 1024 * 9 * 64 * 1  # output layer at 2x resolution
    assert per_mac == pytest.approx(enc_dec + up + final, rel=1e-9)
    assert conv_flops(m, 512, 512) / 1e9 == pytest.approx(817.5, abs=0.1)


@pytest.mark.parametrize("h,w", [(17, 23), (32, 32), (40, 9)])
def test_any_input_size_doubles(h, w):
    from srredsim.models import build_sr_redsim

    m = build_sr_redsim(15, 4, 2)
    y = m.predict(np.random.rand(2, h, w, 15).astype("float32"), verbose=0)
    assert y.shape == (2, 2 * h, 2 * w, 1)
    assert (y >= 0).all()  # ReLU output


def test_configurable_filters_depth_and_channels():
    from srredsim.models import build_sr_redsim

    m = build_sr_redsim(9, 16, 3)
    assert m.count_params() == _sr_redsim_params(9, 16, 3)


def test_unet_size_rule():
    from srredsim.config import ModelConfig
    from srredsim.models import build_model, size_multiple

    cfg = ModelConfig(architecture="unet", unet_levels=3, unet_base_filters=4)
    assert size_multiple(cfg) == 8
    m = build_model(cfg)
    y = m.predict(np.random.rand(1, 24, 16, 15).astype("float32"), verbose=0)
    assert y.shape == (1, 48, 32, 1)
    assert ((y >= 0) & (y <= 1)).all()  # sigmoid output


def test_unet_output_activation_is_configurable():
    """The ReLU output (SR-REDSIM's) replaces the seed's sigmoid: values above 1 become reachable."""
    from srredsim.config import ModelConfig
    from srredsim.models import build_model

    cfg = ModelConfig(architecture="unet", unet_levels=2, unet_base_filters=4, unet_output_activation="relu")
    m = build_model(cfg)
    assert m.get_layer("sr").activation.__name__ == "relu"
    bias = m.get_layer("sr").get_weights()[1]
    kernel = m.get_layer("sr").get_weights()[0]
    m.get_layer("sr").set_weights([kernel, bias + 5.0])  # shift the output well above the sigmoid's range
    y = m.predict(np.random.rand(1, 8, 8, 15).astype("float32"), verbose=0)
    assert (y >= 0).all() and y.max() > 1.0
    assert ModelConfig(architecture="unet").unet_output_activation == "sigmoid"  # the seed's default


def test_unet_patch_rule_is_checked_in_config():
    from srredsim.config import RunConfig
    from srredsim.errors import SrredsimError

    with pytest.raises(SrredsimError, match="divisible"):
        RunConfig.from_dict({"model": {"architecture": "unet"}, "data": {"patch_size": 48}})


def test_inference_twin_is_the_same_function():
    """Stride-1 transposed convolutions rewritten as flipped, channel-swapped convolutions."""
    import keras

    from srredsim.config import ModelConfig
    from srredsim.models import build_model, inference_twin

    cfg = ModelConfig(filters=6, depth=2)
    keras.utils.set_random_seed(3)
    m = build_model(cfg)
    for layer in m.layers:  # non-zero biases so that they are tested too
        if layer.weights:
            k, b = layer.get_weights()
            layer.set_weights([k, np.random.default_rng(1).normal(0, 0.1, b.shape).astype("float32")])
    twin = inference_twin(m, cfg)
    kinds = [type(l).__name__ for l in twin.layers if l.weights]
    assert kinds.count("Conv2DTranspose") == 1  # only the stride-2 up-sampling stays transposed
    x = np.random.default_rng(0).random((2, 19, 26, 15)).astype("float32")
    np.testing.assert_allclose(twin.predict(x, verbose=0), m.predict(x, verbose=0), atol=1e-5, rtol=1e-5)
    assert twin.count_params() == m.count_params()
