"""The model: absolute wavelength encoding -> Perceiver encoder -> latents / embedding -> MAE decoder.

Only torch here (no nirs4all), so the model runs where nirs4all is absent. The names below are
loaded on first use, so ``vitnirs.model.sizes`` (the preset table the config reads) does not
import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MAEDecoder": "vitnirs.model.decoder",
    "StandardisedLinearHead": "vitnirs.model.heads",
    "SpectralMAE": "vitnirs.model.mae",
    "SpectralPerceiver": "vitnirs.model.perceiver",
    "PRESETS": "vitnirs.model.sizes",
    "build_mae": "vitnirs.model.presets",
    "count_parameters": "vitnirs.model.presets",
    "preset_config": "vitnirs.model.presets",
    "WavelengthEncoding": "vitnirs.model.wavelength",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vitnirs.model' has no attribute {name!r}")
