"""The named model sizes: the one table that both the config (without torch) and
:func:`vitnirs.model.presets.build_mae` read.

Encoder keys are :class:`~vitnirs.model.perceiver.SpectralPerceiver` arguments; decoder keys
carry a ``decoder_`` prefix. ``base`` is the roadmap's model; ``tiny`` is for tests on CPU.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DECODER_KEYS", "PRESETS"]

DECODER_KEYS = ("decoder_d_model", "decoder_n_heads", "decoder_n_layers")

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "d_model": 32, "n_latents": 8, "n_heads": 2, "n_cross_layers": 1, "n_self_layers": 1, "d_meta": 8,
        "decoder_d_model": 32, "decoder_n_heads": 2, "decoder_n_layers": 1,
    },
    "small": {
        "d_model": 64, "n_latents": 32, "n_heads": 4, "n_cross_layers": 1, "n_self_layers": 2, "d_meta": 16,
        "decoder_d_model": 64, "decoder_n_heads": 4, "decoder_n_layers": 1,
    },
    "base": {
        "d_model": 128, "n_latents": 64, "n_heads": 4, "n_cross_layers": 2, "n_self_layers": 3, "d_meta": 32,
        "decoder_d_model": 128, "decoder_n_heads": 4, "decoder_n_layers": 1,
    },
    "large": {
        "d_model": 256, "n_latents": 128, "n_heads": 8, "n_cross_layers": 2, "n_self_layers": 6, "d_meta": 32,
        "decoder_d_model": 128, "decoder_n_heads": 4, "decoder_n_layers": 2,
    },
}  # fmt: skip
