"""Spectral Perceiver: learned latents cross-attend to the (λ, value) tokens of a padded batch.

Inputs follow the batch contract of :mod:`vitnirs.batching` (``valid`` True = real point).
The key set seen by the latents is ``[level token, metadata token (if d_meta > 0), point tokens]``:

- point token = Linear(1 -> D)(normalised value) + WavelengthEncoding(λ in nm);
- level token = MLP((mean, log std)) + a learned type vector: the per-spectrum normalisation
  removed the absolute level and scale, which carry chemistry; this token gives them back. It
  is always valid, so every row has at least one key even when all points are masked/padding;
- metadata token = one embedding table per field (id 0 = unknown) -> Linear -> D. In training,
  each id is replaced by 0 with probability ``meta_dropout``, so the model also works without it.

Cross-attention blocks (all first), then self-attention among the latents; the embedding is
the **mean of the final (normed) latents**, as in the roadmap.
"""

from __future__ import annotations

import torch
from torch import nn

from vitnirs.model.attention import CrossAttentionBlock, SelfAttentionBlock
from vitnirs.model.wavelength import WavelengthEncoding

__all__ = ["SpectralPerceiver"]


class SpectralPerceiver(nn.Module):
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
        self.level_token = level_token
        self.n_meta_fields = n_meta_fields
        self.meta_dropout = meta_dropout
        self.value_embed = nn.Linear(1, d_model)
        self.wavelength_encoding = WavelengthEncoding(d_model, n_frequencies=n_frequencies)
        self.level_embed = nn.Sequential(nn.Linear(2, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.level_type = nn.Parameter(torch.zeros(1, 1, d_model))
        if d_meta > 0:
            self.meta_tables = nn.ModuleList(nn.Embedding(meta_vocab, d_meta) for _ in range(n_meta_fields))
            self.meta_proj = nn.Linear(n_meta_fields * d_meta, d_model)
        else:
            self.meta_tables = None
            self.meta_proj = None
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

    def embed_meta(self, meta: torch.Tensor | None, batch_size: int, device: torch.device) -> torch.Tensor:
        """Metadata ids (B, K') with K' <= n_meta_fields (missing fields = unknown) -> token (B, 1, D)."""
        assert self.meta_tables is not None and self.meta_proj is not None
        ids = torch.zeros(batch_size, self.n_meta_fields, dtype=torch.long, device=device)
        if meta is not None:
            if meta.shape[1] > self.n_meta_fields:
                raise ValueError(f"meta has {meta.shape[1]} fields, the model takes {self.n_meta_fields}")
            ids[:, : meta.shape[1]] = meta.long()
        if self.training and self.meta_dropout > 0:
            ids = ids.masked_fill(torch.rand(ids.shape, device=device) < self.meta_dropout, 0)
        fields = [table(ids[:, i]) for i, table in enumerate(self.meta_tables)]  # K x [B, d_meta]
        return self.meta_proj(torch.cat(fields, dim=-1))[:, None, :]  # [B, 1, D]

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
        if not self.level_token:  # the token stays (every row keeps a valid key) but carries no level
            level = torch.zeros_like(level)
        extra = [self.level_embed(level.float())[:, None, :] + self.level_type]  # [B, 1, D]
        if self.meta_tables is not None:
            extra.append(self.embed_meta(meta, B, values.device))
        context = torch.cat([*extra, tokens], dim=1)  # [B, E + L, D]
        always = torch.ones(B, len(extra), dtype=torch.bool, device=values.device)
        key_valid = torch.cat([always, valid.bool()], dim=1)  # [B, E + L]

        x = self.latents.expand(B, -1, -1)  # [B, N, D]
        for block in self.cross_blocks:
            x = block(x, context, key_valid)
        for block in self.self_blocks:
            x = block(x)
        latents = self.norm(x)  # [B, N, D]
        return latents, latents.mean(dim=1)
