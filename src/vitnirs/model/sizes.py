"""The named models and the keys each part reads: the one table that both the config (without
torch) and :func:`vitnirs.model.presets.build_mae` read.

A preset names a whole model: its trunk and sizes, its decoder (``decoder_*`` keys); the
tokenizer's keys (patch size, channels, lattice step) keep :data:`vitnirs.model.presets`'
defaults unless set. ``small`` is the shipped model's shape; ``tiny`` is for tests on CPU;
``perceiver_base`` is the roadmap's Perceiver (latents cross-attending to the tokens), run on
today's patch tokens.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DECODER_KEYS", "PRESETS", "SHIPPED_PRESET", "TOKENIZER_NAMES", "TRUNK_KEYS"]

DECODER_KEYS = ("decoder_d_model", "decoder_n_heads", "decoder_n_layers")

TOKENIZER_NAMES = ("patch",)  # vitnirs.model.tokenizer.TOKENIZERS (a test checks they agree)

TRUNK_KEYS: dict[str, tuple[str, ...]] = {
    "transformer": ("d_model", "n_heads", "n_self_layers", "dropout"),
    "perceiver": ("d_model", "n_heads", "n_self_layers", "n_latents", "n_cross_layers", "dropout"),
}
"""The keyword sizes each trunk of :data:`vitnirs.model.trunks.TRUNKS` takes."""

SHIPPED_PRESET = "small"
"""The shape of the shipped model (``vitnirs/pretrained/default``): patch tokens, transformer trunk."""

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "trunk": "transformer", "d_model": 32, "n_heads": 2, "n_self_layers": 1, "d_meta": 8,
        "decoder_d_model": 32, "decoder_n_heads": 2, "decoder_n_layers": 1,
    },
    "small": {
        "trunk": "transformer", "d_model": 64, "n_heads": 4, "n_self_layers": 3, "d_meta": 16,
        "decoder_d_model": 64, "decoder_n_heads": 4, "decoder_n_layers": 1,
    },
    "base": {
        "trunk": "transformer", "d_model": 128, "n_heads": 4, "n_self_layers": 6, "d_meta": 32,
        "decoder_d_model": 128, "decoder_n_heads": 4, "decoder_n_layers": 1,
    },
    "large": {
        "trunk": "transformer", "d_model": 256, "n_heads": 8, "n_self_layers": 8, "d_meta": 32,
        "decoder_d_model": 128, "decoder_n_heads": 4, "decoder_n_layers": 2,
    },
    "perceiver_tiny": {
        "trunk": "perceiver", "d_model": 32, "n_latents": 8, "n_heads": 2, "n_cross_layers": 1,
        "n_self_layers": 1, "d_meta": 8, "decoder_d_model": 32, "decoder_n_heads": 2, "decoder_n_layers": 1,
    },
    "perceiver_base": {
        "trunk": "perceiver", "d_model": 128, "n_latents": 64, "n_heads": 4, "n_cross_layers": 2,
        "n_self_layers": 3, "d_meta": 32, "decoder_d_model": 128, "decoder_n_heads": 4, "decoder_n_layers": 1,
    },
}  # fmt: skip
