"""srredsim: train, run and export SR-REDSIM for raw structured-illumination microscopy.

SR-REDSIM (Shah et al., Photonics Research 9, B168, 2021) maps a stack of noisy raw SIM frames
(angles x phases, H x W) to one denoised, 2x super-resolved image (2H x 2W). This package holds
the network, its training pipeline, a physically based SIM simulator, a fairSIM-equivalent
classical reconstruction (Mueller et al., Nat. Commun. 7, 10980, 2016) and exporters to
SavedModel, ONNX and bioimage.io packages that run in Fiji/DeepImageJ.

Importing the package is cheap: TensorFlow/Keras are imported only by the modules that need them.
"""

__version__ = "0.1.0"

PAPER_DOI = "10.1364/PRJ.416437"
FAIRSIM_DOI = "10.1038/ncomms10980"
