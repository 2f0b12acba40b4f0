"""The ``documentation.md`` of a bioimage.io package, filled in from the run's configuration.

It says what the model does, what it was trained on and with which optics, how to run it in
Fiji/DeepImageJ and in Python, how to validate it, and where it stops being trustworthy.
"""

from __future__ import annotations

from typing import Any

from srredsim.config import RunConfig

SR_REDSIM_DOI = "10.1364/PRJ.416437"
FAIRSIM_DOI = "10.1038/ncomms10980"
# Mao, Shen and Yang, NeurIPS 2016 (RED-Net): the conference has no DOI; arXiv's (DataCite) is used
RED_NET_DOI = "10.48550/arXiv.1603.09056"


def _normalization_text(config: RunConfig) -> str:
    n = config.normalization
    raw = config.model.takes_raw
    if n.mode == "percentile":
        return (f"Each {'raw stack' if raw else 'reconstruction'} is scaled by its own {n.low_percentile:g} and "
                f"{n.high_percentile:g} percentiles, computed over "
                f"{'all frames and pixels together' if raw else 'all its pixels'} "
                "(bioimage.io `scale_range` over the axes channel, y, x; eps 1e-6). "
                "The output is in these normalised units (roughly 0..1), not in camera counts.")
    return (f"{'Raw stacks' if raw else 'Reconstructions'} are scaled with one fixed range for the whole training set "
            f"(x_min = {n.x_min:g}, x_max = {n.x_max:g}; bioimage.io `scale_linear`), and the output is "
            f"mapped back to the references' range (y_min = {n.y_min:g}, y_max = {n.y_max:g}). "
            "Inputs must therefore come from the same camera settings as the training data.")


def render_documentation(config: RunConfig, info: dict[str, Any]) -> str:
    """Markdown for a package. ``info`` carries name, sizes, halo, parameter count, formats."""
    if not config.model.takes_raw:
        return _render_red_net(config, info)
    o, m, t = config.optics, config.model, config.train
    frames = o.frames
    arch = ("SR-REDSIM (RED-Net style encoder-decoder with symmetric skip connections and a learned "
            f"2x up-sampling; {m.filters} filters, {2 * m.depth + 1} encoder convolutions)"
            if m.architecture == "sr_redsim" else
            f"U-Net ({m.unet_levels} levels, {m.unet_base_filters} base filters) with a learned 2x up-sampling")
    formats = ", ".join(f"`{f}`" for f in info.get("weight_formats", []))
    multiple = info["size_multiple"]
    size_rule = ("any height and width" if multiple == 1
                 else f"height and width multiples of {multiple}")
    return f"""# {info['name']}

{config.metadata.description}

## What the model does

The input is one **raw 2D structured-illumination (SIM) acquisition**: {frames} frames
({o.angles} pattern angles x {o.phases} phases, ordered angle-major with the phase fastest,
frame = angle * {o.phases} + phase) of H x W camera pixels. The output is **one denoised,
super-resolved image of 2H x 2W pixels** (pixel size {o.pixel_size_um / 2:g} um for raw pixels of
{o.pixel_size_um:g} um). The network replaces the whole classical SIM reconstruction (parameter
estimation, band separation, Wiener filtering) and denoises at the same time, as in
SR-REDSIM (Shah et al., Photonics Research 9, B168, 2021; doi:{SR_REDSIM_DOI}).

* Network: {arch}; {info.get('parameters', 'n/a')} parameters.
* Input tensor `raw`: axes batch, y, x, channel (channel names a0p0 ... a{o.angles - 1}p{o.phases - 1});
  {size_rule}; minimum {info['min_size']} pixels, step {info['step']}.
* Output tensor `sr`: axes batch, y, x, channel (1 channel), y and x twice the input's.
* Tiling and borders: a tile needs {info['halo']} raw pixels of context on each side; the output axes
  declare a halo of {2 * info['halo']} pixels, which tiling tools crop. Beyond the image border the input
  is mirrored (`pad: symmetric`, the edge pixel repeated), as DeepImageJ does, so DeepImageJ,
  bioimageio.core and `srredsim predict` give the same image, borders included.
* Normalisation: {_normalization_text(config)}

## Training data and optics

* Training data: {config.metadata.training_data}
* Optics: NA {o.na:g}, emission wavelength {o.wavelength_nm:g} nm, immersion index
  {o.refractive_index:g}, raw pixel size {o.pixel_size_um:g} um, {o.beams}-beam illumination,
  {o.angles} angles x {o.phases} phases.
* Training: {t.loss.upper()} loss, Adam (learning rate {t.learning_rate:g}), batch size {t.batch_size},
  {t.epochs} epochs, patches of {config.data.patch_size} raw pixels
  {"with random flips and 90-degree rotations" if config.data.augment else "without augmentation"}.
* Trained and exported with srredsim {config.srredsim_version}.

## How to run it

### Fiji / DeepImageJ

1. Install DeepImageJ (Fiji update site `DeepImageJ`), then *Plugins > DeepImageJ > DeepImageJ Install
   Model* and choose this zip file (or unzip it into `Fiji.app/models/`).
2. Open a raw stack with the {frames} frames as channels. A plain stack of {frames} slices (as most
   cameras write it) opens as z-slices, which DeepImageJ would treat as {frames} separate images: make
   the slices channels first (*Image > Hyperstacks > Stack to Hyperstack*, channels = {frames}; or the
   macro `deepimagej_run.ijm` that comes with srredsim, which does it).
3. *Plugins > DeepImageJ > DeepImageJ Run*, select this model and run. Pre- and post-processing are
   built into the package, so do not normalise the image yourself. Headless:

```
run("DeepImageJ Run", "model_path=[{info['folder_name']}] input_path=[raw.tif] output_folder=[out] display_output=null");
```

DeepImageJ runs the `tensorflow_saved_model_bundle` weights (TensorFlow Java) or the `onnx` weights
(ONNX Runtime, opset 17). Weight formats in this package: {formats}.

### Python

```
# with srredsim installed (see its README)
srredsim predict {info['file_name']} raw.tif -o sr.tif            # ONNX Runtime by default
srredsim predict {info['file_name']} raw.tif -o sr.tif --engine savedmodel
```

or with bioimageio.core (set `KERAS_BACKEND=tensorflow`):

```
from bioimageio.core import load_description, predict
model = load_description("{info['file_name']}")
sample = predict(model=model, inputs={{"raw": raw_hwc[None]}})   # raw_hwc: (H, W, {frames}) float32
```

## Validation

The package carries a test input and the output this model gave for it; bioimageio.core reproduces
it (`srredsim validate {info['file_name']}` runs bioimageio.core's test of every weight format, checks
that ONNX, Keras and SavedModel agree to 1e-4, and lints the package against DeepImageJ's rules).
To validate the *method* on your own data, compare the network's output with a classical
(fairSIM, doi:{FAIRSIM_DOI}) reconstruction of a high-signal acquisition of the same field, or with
a known structure (beads, filaments), after registration: report PSNR, SSIM and resolution (FRC).

## Limits

* Trained for {o.angles} angles x {o.phases} phases, {o.beams}-beam 2D SIM at the optics above; other
  pattern geometries, wavelengths, NAs or pixel sizes need retraining.
* A network learns priors from its training data: structures unlike the training data (e.g. dense
  tissue when trained on filaments) may be hallucinated or suppressed. Never use the output for
  quantitative intensity measurements without validating on your own data.
* Very low light makes the output smoother and less faithful; check against widefield (the frame mean).
* Input frames must be in the order stated above; a wrong order gives plausible-looking garbage.

## Citation

Shah, Z. H. et al. Deep-learning based denoising and reconstruction of super-resolution structured
illumination microscopy images. Photonics Research 9, B168 (2021). doi:{SR_REDSIM_DOI}

Mueller, M., Moenkemoeller, V., Hennig, S., Huebner, W., Huser, T. Open-source image reconstruction of
super-resolution structured illumination microscopy data in ImageJ. Nature Communications 7, 10980
(2016). doi:{FAIRSIM_DOI}
"""


def _render_red_net(config: RunConfig, info: dict[str, Any]) -> str:
    """Markdown for a RED-fairSIM package: a RED-Net that denoises one classical SIM reconstruction."""
    o, m, t = config.optics, config.model, config.train
    sr_px = o.pixel_size_um / 2
    formats = ", ".join(f"`{f}`" for f in info.get("weight_formats", []))
    in_id = info.get("input_id", "image")
    return f"""# {info['name']}

{config.metadata.description}

## What the model does

This is the network of **RED-fairSIM**, the second method of Shah et al. (Photonics Research 9, B168,
2021; doi:{SR_REDSIM_DOI}): a classical SIM reconstruction first, then a RED-Net (Mao, Shen and Yang,
NeurIPS 2016; doi:{RED_NET_DOI}) that removes the noise and reconstruction artifacts of that image.

**The input is not the raw stack.** It is **one classical 2D SIM reconstruction on the 2x grid**
(pixel size {sr_px:g} um for raw pixels of {o.pixel_size_um:g} um), made from a raw acquisition of
{o.angles} angles x {o.phases} phases by **fairSIM** in Fiji (Mueller et al., Nature Communications 7,
10980, 2016; doi:{FAIRSIM_DOI}) or by `srredsim reconstruct` (the same algorithm with fairSIM's default
settings; the model was trained on these). Widefield images, raw stacks or reconstructions on the raw
grid give meaningless results. The output is **the denoised reconstruction, the same size** as the
input. The resolution comes from the classical step; the network only cleans it up.

* Network: RED-Net, an encoder-decoder of 3x3 convolutions with symmetric additive skips at the
  reconstruction's grid ({m.filters} filters, {2 * m.depth + 1} encoder convolutions), the input
  itself as the outermost skip (the network learns the correction); {info.get('parameters', 'n/a')} parameters.
* Input tensor `{in_id}`: axes batch, y, x, channel (1 channel, `sim_reconstruction`); minimum
  {info['min_size']} pixels, step {info['step']}.
* Output tensor `sr`: axes batch, y, x, channel (1 channel), the input's height and width.
* Tiling and borders: a tile needs {info['halo']} pixels of context on each side (the network's
  receptive radius, rounded up); the output axes declare that halo, which tiling tools crop. Beyond the
  image border the input is mirrored (`pad: symmetric`), as DeepImageJ does, so DeepImageJ,
  bioimageio.core and `srredsim predict` give the same image, borders included.
* Normalisation: {_normalization_text(config)}

## Training data and optics

* Training data: {config.metadata.training_data}
* Optics of the raw data the reconstructions came from: NA {o.na:g}, emission wavelength
  {o.wavelength_nm:g} nm, immersion index {o.refractive_index:g}, raw pixel size {o.pixel_size_um:g} um,
  {o.beams}-beam illumination, {o.angles} angles x {o.phases} phases.
* Training: {t.loss.upper()} loss, Adam (learning rate {t.learning_rate:g}), batch size {t.batch_size},
  {t.epochs} epochs, patches of {config.data.patch_size} pixels of the 2x grid
  {"with random flips and 90-degree rotations" if config.data.augment else "without augmentation"}.
* Trained and exported with srredsim {config.srredsim_version}.

## How to run it

### Fiji / DeepImageJ

1. Reconstruct the raw stack with fairSIM (*Plugins > fairSIM*: your NA, wavelength and pixel size,
   *Estimate parameters*, *Run reconstruction*) and keep the reconstructed image (one 2D image of twice
   the raw width and height). srredsim ships a headless fairSIM script (`fairsim_reconstruct.py`).
2. Install DeepImageJ (Fiji update site `DeepImageJ`), then *Plugins > DeepImageJ > DeepImageJ Install
   Model* and choose this zip file (or unzip it into `Fiji.app/models/`).
3. Select the reconstruction, *Plugins > DeepImageJ > DeepImageJ Run*, choose this model and run. Pre- and
   post-processing are built into the package, so do not normalise the image yourself. Headless:

```
run("DeepImageJ Run", "model_path=[{info['folder_name']}] input_path=[reconstruction.tif] output_folder=[out] display_output=null");
```

DeepImageJ runs the `tensorflow_saved_model_bundle` weights (TensorFlow Java) or the `onnx` weights
(ONNX Runtime, opset 17). Weight formats in this package: {formats}.

### Python

```
# with srredsim installed (see its README): the classical reconstruction and this network, on a raw stack
srredsim predict {info['file_name']} raw.tif -o denoised.tif
```

or with bioimageio.core on a reconstruction you made (set `KERAS_BACKEND=tensorflow`):

```
from bioimageio.core import load_description, predict
model = load_description("{info['file_name']}")
sample = predict(model=model, inputs={{"{in_id}": reconstruction[None, ..., None]}})   # (2H, 2W) float32
```

## Validation

The package carries a test input (the classical reconstruction of a synthetic raw stack, or of the
stack given at export) and the output this model gave for it; bioimageio.core reproduces it (`srredsim
validate {info['file_name']}` runs bioimageio.core's test of every weight format, checks that ONNX, Keras
and SavedModel agree to 1e-4, and lints the package against DeepImageJ's rules). To validate the
*method* on your own data, compare the output with the classical reconstruction of a high-signal
acquisition of the same field, or with a known structure (beads, filaments): report PSNR, SSIM and
resolution (FRC).

## Limits

* Trained on reconstructions of {o.angles} x {o.phases}, {o.beams}-beam 2D SIM at the optics above, made
  with fairSIM's default settings (Wiener filter, apodization, OTF attenuation): reconstructions with
  other settings, other reconstruction software or other optics can carry artifacts the network did
  not learn to remove.
* A failed classical reconstruction (wrong pattern parameters, strong honeycomb or stripe artifacts)
  cannot be mended by the network: check the reconstruction first.
* A network learns priors from its training data: structures unlike the training data may be
  hallucinated or suppressed. Never use the output for quantitative intensity measurements without
  validating on your own data.

## Citation

Shah, Z. H. et al. Deep-learning based denoising and reconstruction of super-resolution structured
illumination microscopy images. Photonics Research 9, B168 (2021). doi:{SR_REDSIM_DOI}

Mao, X.-J., Shen, C., Yang, Y.-B. Image restoration using very deep convolutional encoder-decoder networks
with symmetric skip connections. Advances in Neural Information Processing Systems 29 (2016).
arXiv:1603.09056, doi:{RED_NET_DOI}

Mueller, M., Moenkemoeller, V., Hennig, S., Huebner, W., Huser, T. Open-source image reconstruction of
super-resolution structured illumination microscopy data in ImageJ. Nature Communications 7, 10980
(2016). doi:{FAIRSIM_DOI}
"""
