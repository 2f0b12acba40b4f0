"""fairSIM-equivalent classical SIM reconstruction: parameter estimation, band separation, Wiener.

Public API::

    from srredsim.classical import reconstruct, estimate_parameters, ReconOptions, SimParams
    rec = reconstruct(raw, optics)            # raw (A·P, n, n); optics: srredsim.config.OpticsConfig
    rec.sr, rec.widefield                     # float32 (2n, 2n)
    rec.params.to_dict()                      # pattern vectors, phases, modulations
"""

from srredsim.classical.core import (Reconstruction, estimate_parameters, preprocess, reconstruct,
                                     separate_bands, separation_matrix, validate_stack)
from srredsim.classical.params import AngleParams, ReconOptions, SimParams

__all__ = ["AngleParams", "ReconOptions", "Reconstruction", "SimParams", "estimate_parameters",
           "preprocess", "reconstruct", "separate_bands", "separation_matrix", "validate_stack"]
