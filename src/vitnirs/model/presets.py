"""Named models and the one function that builds a :class:`SpectralMAE`: tokenizer × trunk.

>>> model = build_mae("small")           # the shipped model's shape  # doctest: +SKIP
>>> model = build_mae("perceiver_tiny")  # the roadmap's Perceiver trunk on patch tokens  # doctest: +SKIP

Keys: ``tokenizer`` and its options (``channels``, ``patch_size``, ``lattice_step``,
``sg_window_nm``, ``n_frequencies``), ``trunk`` and its sizes (:data:`~vitnirs.model.sizes.TRUNK_KEYS`),
the side tokens' (``d_meta``, ``n_meta_fields``, ``meta_vocab``, ``meta_dropout``,
``level_token``) and the decoder's (``decoder_*``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from vitnirs.model.decoder import MAEDecoder
from vitnirs.model.encoder import SpectralEncoder
from vitnirs.model.mae import SpectralMAE
from vitnirs.model.sizes import DECODER_KEYS, PRESETS, SHIPPED_PRESET, TRUNK_KEYS
from vitnirs.model.tokenizer import TOKENIZERS
from vitnirs.model.trunks import TRUNKS

__all__ = ["PRESETS", "build_mae", "count_parameters", "preset_config"]

_DEFAULTS: dict[str, Any] = {
    "tokenizer": "patch", "trunk": "transformer", "n_meta_fields": 3, "meta_vocab": 64, "dropout": 0.0,
    "meta_dropout": 0.1, "n_frequencies": 32, "level_token": True, "channels": ["absorbance", "sg1"],
    "patch_size": 8, "lattice_step": 0.0016, "sg_window_nm": 20.0,
}  # fmt: skip
_TOKENIZER_KEYS = ("patch_size", "channels", "lattice_step", "sg_window_nm", "n_frequencies")
_SIDE_KEYS = ("d_meta", "n_meta_fields", "meta_vocab", "meta_dropout", "level_token")
_PERCEIVER_ONLY = sorted(set(TRUNK_KEYS["perceiver"]) - set(TRUNK_KEYS["transformer"]))
_KNOWN = {"tokenizer", "trunk", *_TOKENIZER_KEYS, *_SIDE_KEYS, *DECODER_KEYS, "decoder_dropout"} | {
    k for keys in TRUNK_KEYS.values() for k in keys
}


def preset_config(preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The full, resolved keyword set of a model: preset (default the shipped ``small``) + overrides.

    ``None`` overrides are ignored (an unset config field keeps the preset's value). ValueError
    for an unknown preset or key, an unknown tokenizer or trunk, a Perceiver trunk without its
    sizes, or Perceiver-only sizes given to another trunk.
    """
    name = preset or SHIPPED_PRESET
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    unknown = set(overrides) - _KNOWN
    if unknown:
        raise ValueError(f"unknown model option(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
    cfg = {**_DEFAULTS, **PRESETS[name]}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg.setdefault("decoder_dropout", cfg["dropout"])
    if cfg["tokenizer"] not in TOKENIZERS:
        raise ValueError(f"model.tokenizer must be one of {sorted(TOKENIZERS)}; got {cfg['tokenizer']!r}")
    if cfg["trunk"] not in TRUNKS:
        raise ValueError(f"model.trunk must be one of {sorted(TRUNKS)}; got {cfg['trunk']!r}")
    missing = [k for k in TRUNK_KEYS[cfg["trunk"]] if cfg.get(k) is None]
    if missing:
        raise ValueError(f"the {cfg['trunk']} trunk needs {missing} (or a preset that has them)")
    stray = [k for k in _PERCEIVER_ONLY if cfg["trunk"] != "perceiver" and cfg.get(k) is not None]
    if stray:
        raise ValueError(
            f"{stray} are sizes of the perceiver trunk; the {cfg['trunk']} trunk does not read them"
        )
    return cfg


def build_mae(preset: str | None = None, **overrides: Any) -> SpectralMAE:
    """Build a :class:`SpectralMAE` from a preset name (default the shipped ``small``) and overrides."""
    cfg = preset_config(preset, **overrides)
    tokenizer = TOKENIZERS[cfg["tokenizer"]](d_model=cfg["d_model"], **{k: cfg[k] for k in _TOKENIZER_KEYS})
    trunk_cls, trunk_keys = TRUNKS[cfg["trunk"]], TRUNK_KEYS[cfg["trunk"]]
    encoder = SpectralEncoder(
        tokenizer=tokenizer,
        trunk_factory=lambda: trunk_cls(**{k: cfg[k] for k in trunk_keys}),
        d_model=cfg["d_model"],
        **{k: cfg[k] for k in _SIDE_KEYS},
    )
    decoder = MAEDecoder(
        d_model=cfg["decoder_d_model"],
        n_heads=cfg["decoder_n_heads"],
        n_layers=cfg["decoder_n_layers"],
        dropout=cfg["decoder_dropout"],
        d_latent=cfg["d_model"],
        n_frequencies=cfg["n_frequencies"],
        out_dim=tokenizer.content_dim,
    )
    return SpectralMAE(encoder, decoder)


def count_parameters(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
