"""The model: absolute wavelength encoding -> Perceiver encoder -> latents / embedding -> MAE decoder.

Only torch here (no nirs4all), so the model runs where nirs4all is absent.
"""

from vitnirs.model.decoder import MAEDecoder
from vitnirs.model.heads import ClassificationHead, RegressionHead
from vitnirs.model.mae import SpectralMAE
from vitnirs.model.perceiver import SpectralPerceiver
from vitnirs.model.presets import PRESETS, build_mae, count_parameters, preset_config
from vitnirs.model.wavelength import WavelengthEncoding

__all__ = [
    "PRESETS",
    "ClassificationHead",
    "MAEDecoder",
    "RegressionHead",
    "SpectralMAE",
    "SpectralPerceiver",
    "WavelengthEncoding",
    "build_mae",
    "count_parameters",
    "preset_config",
]
