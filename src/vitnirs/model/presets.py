"""Named model sizes and the one function that builds a :class:`SpectralMAE` from them.

Encoder keys are :class:`SpectralPerceiver` arguments; decoder keys carry a ``decoder_``
prefix (``decoder_d_model``, ``decoder_n_heads``, ``decoder_n_layers``). ``base`` is the
roadmap's model (``configs/default.yaml``); ``tiny`` is for tests on CPU.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from vitnirs.model.decoder import MAEDecoder
from vitnirs.model.mae import SpectralMAE
from vitnirs.model.patch_encoder import PatchEncoder
from vitnirs.model.perceiver import SpectralPerceiver
from vitnirs.model.sizes import PRESETS

__all__ = ["PRESETS", "build_mae", "count_parameters", "preset_config"]

_DEFAULTS: dict[str, Any] = {
    "n_meta_fields": 3, "meta_vocab": 64, "dropout": 0.0, "meta_dropout": 0.1, "n_frequencies": 32,
    "level_token": True, "tokens": "point", "channels": ["absorbance", "sg1"], "patch_size": 8,
    "lattice_step": 0.0016, "sg_window_nm": 20.0,
}  # fmt: skip
_ENCODER_KEYS = {
    "d_model", "n_latents", "n_heads", "n_cross_layers", "n_self_layers", "d_meta",
    "n_meta_fields", "meta_vocab", "dropout", "meta_dropout", "n_frequencies", "level_token",
}  # fmt: skip
_PATCH_KEYS = {"tokens", "channels", "patch_size", "lattice_step", "sg_window_nm"}
_DECODER_KEYS = {"decoder_d_model", "decoder_n_heads", "decoder_n_layers", "decoder_dropout"}
_SIDE_KEYS = {"d_model", "n_heads", "n_self_layers", "d_meta", "n_meta_fields", "meta_vocab", "dropout",
              "meta_dropout", "n_frequencies", "level_token"}  # fmt: skip


def preset_config(preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The full, resolved keyword set of a model: preset (default ``base``) + overrides.

    Unknown keys raise ``ValueError`` naming them; ``None`` overrides are ignored (so an unset
    config field keeps the preset's value).
    """
    name = preset or "base"
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    unknown = set(overrides) - _ENCODER_KEYS - _DECODER_KEYS - _PATCH_KEYS
    if unknown:
        raise ValueError(
            f"unknown model option(s) {sorted(unknown)}; "
            f"known: {sorted(_ENCODER_KEYS | _DECODER_KEYS | _PATCH_KEYS)}"
        )
    cfg = {**_DEFAULTS, **PRESETS[name]}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg.setdefault("decoder_dropout", cfg["dropout"])
    return cfg


def build_mae(preset: str | None = None, **overrides: Any) -> SpectralMAE:
    """Build a :class:`SpectralMAE` from a preset name (default ``base``) and overrides.

    ``tokens="point"``: a :class:`SpectralPerceiver` (``channels``, ``patch_size``, ... unused);
    ``tokens="patch"``: a :class:`PatchEncoder` (``n_latents``, ``n_cross_layers`` unused).
    """
    cfg = preset_config(preset, **overrides)
    if cfg["tokens"] == "patch":
        keys = _SIDE_KEYS | (_PATCH_KEYS - {"tokens"})
        encoder: nn.Module = PatchEncoder(**{k: cfg[k] for k in keys})
        out_dim = cfg["patch_size"] * len(cfg["channels"])
    elif cfg["tokens"] == "point":
        encoder, out_dim = SpectralPerceiver(**{k: cfg[k] for k in _ENCODER_KEYS}), 1
    else:
        raise ValueError(f"model.tokens must be 'point' or 'patch'; got {cfg['tokens']!r}")
    decoder = MAEDecoder(
        d_model=cfg["decoder_d_model"],
        n_heads=cfg["decoder_n_heads"],
        n_layers=cfg["decoder_n_layers"],
        dropout=cfg["decoder_dropout"],
        d_latent=cfg["d_model"],
        n_frequencies=cfg["n_frequencies"],
        out_dim=out_dim,
    )
    return SpectralMAE(encoder, decoder)


def count_parameters(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
