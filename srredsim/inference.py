"""Kept for old imports: the model handle lives in :mod:`srredsim.runtime`.

``from srredsim.inference import open_model`` still works (user scripts, and commands not yet
moved); new code imports :func:`srredsim.runtime.open_model`. ``LoadedModel`` is the old name of
:class:`srredsim.runtime.ModelHandle`.
"""

from srredsim.runtime import ModelHandle as LoadedModel
from srredsim.runtime import open_model

__all__ = ["LoadedModel", "open_model"]
