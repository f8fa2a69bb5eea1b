"""Spectral Perceiver: learned latents cross-attend to the (λ, value) tokens of a padded batch.

Inputs follow the batch contract of :mod:`vitnirs.batching` (``valid`` True = real point).
The key set seen by the latents is ``[level token, metadata token (if d_meta > 0), point tokens]``:

- point token = Linear(1 -> D)(normalised value) + WavelengthEncoding(λ in nm);
- level and metadata tokens: :mod:`vitnirs.model.side_tokens` (always valid keys).

Cross-attention blocks (all first), then self-attention among the latents; the embedding is
the **mean of the final (normed) latents**, as in the roadmap.
"""

from __future__ import annotations

import torch
from torch import nn

from vitnirs.model.attention import CrossAttentionBlock, SelfAttentionBlock
from vitnirs.model.side_tokens import SideTokens
from vitnirs.model.wavelength import WavelengthEncoding

__all__ = ["SpectralPerceiver"]


class SpectralPerceiver(SideTokens, nn.Module):
    """Perceiver encoder for variable-length spectra.

    Args:
        d_model: token / latent width D.
        n_latents: number of learned latents N.
        n_heads: attention heads (must divide d_model).
        n_cross_layers, n_self_layers: block counts.
        d_meta: width of each metadata field embedding (0 = no metadata token).
        n_meta_fields: number of metadata fields K (instrument, measurement mode, signal type).
        meta_vocab: ids per field (0 = unknown); ids must be < meta_vocab.
        dropout: dropout in attention and MLPs.
        meta_dropout: training-time probability of replacing a metadata id by 0 (unknown).
        n_frequencies: Fourier frequencies of the wavelength encoding.
        level_token: False blanks the level token's input (zeros): the encoder then sees only
            the normalised shape, as the roadmap's model did (the level-token ablation).
    """

    def __init__(
        self,
        *,
        d_model: int,
        n_latents: int,
        n_heads: int,
        n_cross_layers: int,
        n_self_layers: int,
        d_meta: int = 0,
        n_meta_fields: int = 3,
        meta_vocab: int = 64,
        dropout: float = 0.0,
        meta_dropout: float = 0.1,
        n_frequencies: int = 32,
        level_token: bool = True,
    ):
        super().__init__()
        self.d_model = d_model
        self.value_embed = nn.Linear(1, d_model)
        self.wavelength_encoding = WavelengthEncoding(d_model, n_frequencies=n_frequencies)
        self.init_side_tokens(d_model, d_meta, n_meta_fields, meta_vocab, meta_dropout, level_token)
        self.latents = nn.Parameter(torch.empty(1, n_latents, d_model))
        self.cross_blocks = nn.ModuleList(
            CrossAttentionBlock(d_model=d_model, n_heads=n_heads, dropout=dropout)
            for _ in range(n_cross_layers)
        )
        self.self_blocks = nn.ModuleList(
            SelfAttentionBlock(d_model=d_model, n_heads=n_heads, dropout=dropout)
            for _ in range(n_self_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        nn.init.trunc_normal_(self.latents, std=0.02)
        nn.init.trunc_normal_(self.level_type, std=0.02)

    def forward(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        level: torch.Tensor,
        meta: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch.

        Args:
            values: (B, L) normalised values (anything at padding).
            wavelengths: (B, L) in nm.
            valid: bool (B, L), True = real point to attend to.
            level: (B, 2) (mean, log std) removed by the normalisation.
            meta: int (B, K) metadata ids (0 = unknown) or None (all unknown).

        Returns:
            latents: (B, N, D); embedding: (B, D), the mean of the latents.
        """
        B = values.shape[0]
        tokens = self.value_embed(values[..., None]) + self.wavelength_encoding(wavelengths)  # [B, L, D]
        extra = self.side_tokens(level, meta)  # [B, E, D]
        context = torch.cat([extra, tokens], dim=1)  # [B, E + L, D]
        always = torch.ones(B, extra.shape[1], dtype=torch.bool, device=values.device)
        key_valid = torch.cat([always, valid.bool()], dim=1)  # [B, E + L]

        x = self.latents.expand(B, -1, -1)  # [B, N, D]
        for block in self.cross_blocks:
            x = block(x, context, key_valid)
        for block in self.self_blocks:
            x = block(x)
        latents = self.norm(x)  # [B, N, D]
        return latents, latents.mean(dim=1)
