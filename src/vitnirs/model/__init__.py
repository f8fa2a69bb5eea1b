"""The model: tokenizer (patches of an absolute lattice) × trunk (transformer or Perceiver),
side tokens, readouts, the MAE decoder.

Only torch here (no nirs4all), so the model runs where nirs4all is absent. The names below are
loaded on first use, so ``vitnirs.model.sizes`` (the preset table the config reads) does not
import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "EncoderOutput": "vitnirs.model.encoder",
    "MAEDecoder": "vitnirs.model.decoder",
    "PRESETS": "vitnirs.model.sizes",
    "PatchTokenizer": "vitnirs.model.tokenizer",
    "PerceiverTrunk": "vitnirs.model.trunks",
    "SpectralEncoder": "vitnirs.model.encoder",
    "SpectralMAE": "vitnirs.model.mae",
    "StandardisedLinearHead": "vitnirs.model.heads",
    "Tokens": "vitnirs.model.tokenizer",
    "TransformerTrunk": "vitnirs.model.trunks",
    "WavelengthEncoding": "vitnirs.model.wavelength",
    "build_mae": "vitnirs.model.presets",
    "count_parameters": "vitnirs.model.presets",
    "preset_config": "vitnirs.model.presets",
    "readout": "vitnirs.model.readout",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vitnirs.model' has no attribute {name!r}")
