"""Network builders: SR-REDSIM (the paper's network), RED-Net (its RED-fairSIM) and the seed's U-Net.

SR-REDSIM (Shah et al., Photonics Research 9, B168, 2021; docs/architecture.md, section 3) is a RED-Net style
encoder-decoder working at the raw resolution, followed by a learned 2x up-sampling:

* encoder: ``2*depth + 1`` 3x3 convolutions (stride 1, ReLU); the outputs of convolutions
  2, 4, ..., 2*depth are the skip sources p1..p_depth;
* decoder: ``depth`` blocks ``Conv2DTranspose -> Add(skip) -> ReLU -> Conv2DTranspose``, block k
  adding p(depth+1-k) (symmetric), then one more Conv2DTranspose;
* up-sampling: Conv2DTranspose(filters, stride 2, ReLU) then Conv2DTranspose(1, stride 1, ReLU).

With 64 filters and depth 10 this is 44 weight layers and 1,560,257 parameters. The network is
fully convolutional: any H x W works and the output is 2H x 2W. Layer names are fixed so that
weights move between Keras backends (TensorFlow on CPU, JAX on a GPU) by name.
"""

from __future__ import annotations

from srredsim.config import ModelConfig

import contextlib

SR_REDSIM_PARAMS_64 = 1_560_257  # 64 filters, depth 10, 15 input channels (docs/architecture.md, section 3)
#: Keras dtype policy of each arithmetic precision (variables stay float32 under mixed policies)
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _keras():
    import keras

    return keras


def dtype_policy(precision: str = "fp32"):
    """Build networks under the Keras dtype policy of ``precision``; the global policy is restored
    after. Prediction and export build in ``fp32`` whatever policy training left set."""
    return _global_policy(PRECISION_POLICIES[precision])


@contextlib.contextmanager
def _global_policy(name: str):
    keras = _keras()
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_sr_redsim(in_channels: int = 15, filters: int = 64, depth: int = 10, name: str = "sr_redsim",
                    inference: bool = False):
    """Build SR-REDSIM as a channels-last Keras model ``(B, H, W, C) -> (B, 2H, 2W, 1)``.

    ``inference=True`` builds the same function with every stride-1 ``Conv2DTranspose`` written
    as the equivalent ``Conv2D`` (see :func:`inference_twin`), which CPUs run faster.
    """
    keras = _keras()
    layers = keras.layers
    deconv1 = layers.Conv2D if inference else layers.Conv2DTranspose
    inp = keras.Input(shape=(None, None, in_channels), name="raw")
    x = _red_body(inp, filters, depth, deconv1)
    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu", name="up_deconv")(x)
    # the output layer computes in float32 under a mixed-precision policy (a stable loss)
    out = deconv1(1, 3, padding="same", activation="relu", name="sr", dtype="float32")(x)
    return keras.Model(inp, out, name=name)


def build_red_net(filters: int = 64, depth: int = 10, name: str = "red_net", inference: bool = False):
    """Build the RED-Net of RED-fairSIM as a channels-last Keras model ``(B, H, W, 1) -> (B, H, W, 1)``.

    The paper's second method (Shah et al. 2021) denoises a classical SIM reconstruction with
    RED-Net (Mao, Shen and Yang, NeurIPS 2016): the encoder/decoder of SR-REDSIM with symmetric
    skips, at the reconstruction's own (2x) grid and without the up-sampling; and, as in Mao et
    al., the input itself is the outermost skip, so the network learns the correction to the
    classical image (``sr = ReLU(image + f(image))``). ``inference=True``: see
    :func:`build_sr_redsim`.
    """
    keras = _keras()
    layers = keras.layers
    deconv1 = layers.Conv2D if inference else layers.Conv2DTranspose
    inp = keras.Input(shape=(None, None, 1), name="image")
    x = _red_body(inp, filters, depth, deconv1)
    # the correction and the sum compute in float32 under a mixed-precision policy (a stable loss)
    x = deconv1(1, 3, padding="same", name="correction", dtype="float32")(x)
    x = layers.Add(name="residual_add", dtype="float32")([x, inp])
    out = layers.ReLU(name="sr", dtype="float32")(x)
    return keras.Model(inp, out, name=name)


def _red_body(inp, filters: int, depth: int, deconv1):
    """The RED-Net encoder/decoder shared by SR-REDSIM and RED-Net (module docstring)."""
    layers = _keras().layers
    x = inp
    skips = []
    n_enc = 2 * depth + 1
    for i in range(1, n_enc + 1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"enc_conv{i}")(x)
        if i % 2 == 0 and i < n_enc:
            skips.append(x)
    # skips[j] is the output of conv 2(j+1); block k adds p(depth+1-k) = skips[depth-k]
    for k in range(1, depth + 1):
        x = deconv1(filters, 3, padding="same", activation="relu", name=f"dec{k}_deconv_a")(x)
        x = layers.Add(name=f"dec{k}_add")([x, skips[depth - k]])
        x = layers.ReLU(name=f"dec{k}_relu")(x)
        x = deconv1(filters, 3, padding="same", activation="relu", name=f"dec{k}_deconv_b")(x)
    return deconv1(filters, 3, padding="same", activation="relu", name="dec_final_deconv")(x)


def inference_twin(model, cfg: ModelConfig):
    """The same network with stride-1 transposed convolutions rewritten as plain convolutions.

    A stride-1, 'same'-padded, odd-sized ``Conv2DTranspose`` with kernel ``K[i, j, out, in]``
    computes exactly the ``Conv2D`` with kernel ``K'[i, j, in, out] = K[kh-1-i, kw-1-j, out, in]``
    (the spatially flipped, channel-swapped kernel). TensorFlow and ONNX Runtime run the forward
    convolution 1.5-2x faster on CPUs than the transposed one, so prediction and exports use
    this twin; training keeps the paper's layers. Only SR-REDSIM and RED-Net have such layers;
    other architectures are returned unchanged.
    """
    if cfg.architecture not in ("sr_redsim", "red_net"):
        return model
    keras = _keras()
    # the twin computes like the model (float32, or a mixed policy), whatever the global policy is
    policy = next((layer.dtype_policy.name for layer in model.layers if layer.weights), "float32")
    with _global_policy(policy):
        if cfg.architecture == "red_net":
            twin = build_red_net(cfg.filters, cfg.depth, name=model.name, inference=True)
        else:
            twin = build_sr_redsim(cfg.in_channels, cfg.filters, cfg.depth, name=model.name, inference=True)
    for layer in model.layers:
        if not layer.weights:
            continue
        target = twin.get_layer(layer.name)
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.Conv2DTranspose) and isinstance(target, keras.layers.Conv2D) \
                and not isinstance(target, keras.layers.Conv2DTranspose):
            kernel, bias = weights
            weights = [kernel[::-1, ::-1].transpose(0, 1, 3, 2).copy(), bias]
        target.set_weights(weights)
    return twin


def build_unet(in_channels: int = 15, base_filters: int = 16, levels: int = 5, name: str = "unet",
               output_activation: str = "sigmoid"):
    """U-Net variant of the seed notebook: two 3x3 convolutions per level, filters doubling from
    ``base_filters`` (16...512 for 5 levels), concatenation skips, a learned 2x up-sampling and a
    final 1x1 convolution with sigmoid. H and W must be divisible by ``2**levels``.

    ``output_activation="relu"`` replaces the seed's sigmoid by SR-REDSIM's ReLU output: on sparse
    fluorescence targets the sigmoid saturates and the seed U-Net collapsed to a constant output
    (benchmarks/equal_budget.sh)."""
    keras = _keras()
    layers = keras.layers
    inp = keras.Input(shape=(None, None, in_channels), name="raw")
    x = inp
    skips = []
    f = base_filters
    for lvl in range(levels):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"down{lvl}_conv_a")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"down{lvl}_conv_b")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{lvl}_pool")(x)
        f *= 2
    x = layers.Conv2D(f, 3, padding="same", activation="relu", name="bottom_conv_a")(x)
    x = layers.Conv2D(f, 3, padding="same", activation="relu", name="bottom_conv_b")(x)
    for lvl in reversed(range(levels)):
        f //= 2
        x = layers.Conv2DTranspose(f, 2, strides=2, padding="same", name=f"up{lvl}_deconv")(x)
        x = layers.Concatenate(name=f"up{lvl}_concat")([x, skips[lvl]])
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"up{lvl}_conv_a")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"up{lvl}_conv_b")(x)
    x = layers.Conv2DTranspose(base_filters, 3, strides=2, padding="same", activation="relu", name="up_sr_deconv")(x)
    out = layers.Conv2D(1, 1, activation=output_activation, name="sr", dtype="float32")(x)
    return keras.Model(inp, out, name=name)


def size_multiple(cfg: ModelConfig) -> int:
    """Input H and W must be multiples of this number."""
    return 2 ** cfg.unet_levels if cfg.architecture == "unet" else 1


def build_model(cfg: ModelConfig):
    """Build the network a :class:`ModelConfig` describes."""
    if cfg.architecture == "sr_redsim":
        return build_sr_redsim(cfg.in_channels, cfg.filters, cfg.depth)
    if cfg.architecture == "unet":
        return build_unet(cfg.in_channels, cfg.unet_base_filters, cfg.unet_levels,
                          output_activation=cfg.unet_output_activation)
    if cfg.architecture == "red_net":
        return build_red_net(cfg.filters, cfg.depth)
    raise ValueError(f"unknown architecture {cfg.architecture!r}")


def conv_flops(model, height: int, width: int) -> float:
    """FLOPs (2 per multiply-accumulate) of all convolutions for one ``height x width`` input."""
    keras = _keras()
    conv_layers = [l for l in model.layers
                   if isinstance(l, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    probe = keras.Model(model.inputs, [l.input for l in conv_layers] + [l.output for l in conv_layers])
    spec = probe.compute_output_spec(keras.KerasTensor((1, height, width, model.input.shape[-1])))
    n = len(conv_layers)
    total = 0.0
    for layer, sin, sout in zip(conv_layers, spec[:n], spec[n:]):
        kh, kw = layer.kernel_size
        cin, cout = sin.shape[-1], sout.shape[-1]
        if isinstance(layer, keras.layers.Conv2DTranspose):
            pixels = sin.shape[1] * sin.shape[2]  # every input pixel scatters a kernel
        else:
            pixels = sout.shape[1] * sout.shape[2]
        total += 2.0 * pixels * kh * kw * cin * cout
    return total
