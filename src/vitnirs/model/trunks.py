"""Trunks: the transformer that turns a spectrum's tokens into output tokens.

Every trunk has one call (:class:`Trunk`)::

    trunk(tokens (B, T, D), token_valid bool (B, T), side (B, E, D)) -> (out (B, N, D), out_valid bool (B, N))

``side`` are the encoder's side tokens (level, metadata: :mod:`vitnirs.model.side_tokens`),
always valid keys, so every row has at least one key even when all its tokens are masked.

- :class:`TransformerTrunk` (the default, the shipped model): pre-norm self-attention over
  ``[side, tokens]`` with a key mask over the padding; the output is the normed tokens (N = T,
  side tokens dropped) with their validity. A NIR spectrum is 40–150 patch tokens: few enough
  for full attention.
- :class:`PerceiverTrunk` (the roadmap's architecture): N learned latents cross-attend to
  ``[side, tokens]``, then self-attend; the output is the normed latents (all valid).

To add a trunk: a class with this call, its keyword sizes, and a name in :data:`TRUNKS`
(its size keys in :data:`vitnirs.model.sizes.TRUNK_KEYS`).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from vitnirs.model.attention import CrossAttentionBlock, SelfAttentionBlock

__all__ = ["TRUNKS", "PerceiverTrunk", "TransformerTrunk", "Trunk"]


class Trunk(Protocol):
    def __call__(
        self, tokens: torch.Tensor, token_valid: torch.Tensor, side: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def _with_side(
    tokens: torch.Tensor, token_valid: torch.Tensor, side: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[side, tokens]`` (B, E + T, D) and its key validity (B, E + T): side tokens always valid."""
    always = torch.ones(side.shape[:2], dtype=torch.bool, device=tokens.device)
    return torch.cat([side, tokens], dim=1), torch.cat([always, token_valid.bool()], dim=1)


class TransformerTrunk(nn.Module):
    """Pre-norm transformer over ``[side, tokens]``: ``n_self_layers`` blocks, then a LayerNorm."""

    def __init__(self, *, d_model: int, n_heads: int, n_self_layers: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(d_model=d_model, n_heads=n_heads, dropout=dropout)
            for _ in range(n_self_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self, tokens: torch.Tensor, token_valid: torch.Tensor, side: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> out (B, T, D) the normed tokens, out_valid = token_valid (B, T)."""
        x, key_valid = _with_side(tokens, token_valid, side)  # [B, E + T, D], [B, E + T]
        for block in self.blocks:
            x = block(x, key_valid)
        return self.norm(x)[:, side.shape[1] :], token_valid.bool()


class PerceiverTrunk(nn.Module):
    """Learned latents read the tokens by cross-attention, then attend among themselves.

    Args:
        d_model, n_heads, dropout: as :class:`TransformerTrunk`.
        n_latents: latents N (the output length, the same for every spectrum).
        n_cross_layers: cross-attention blocks (all first), then ``n_self_layers`` self-attention blocks.
    """

    def __init__(
        self,
        *,
        d_model: int,
        n_heads: int,
        n_self_layers: int,
        n_latents: int,
        n_cross_layers: int,
        dropout: float = 0.0,
    ):
        super().__init__()
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

    def forward(
        self, tokens: torch.Tensor, token_valid: torch.Tensor, side: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> out (B, N, D) the normed latents, out_valid all True (B, N)."""
        context, key_valid = _with_side(tokens, token_valid, side)  # [B, E + T, D], [B, E + T]
        x = self.latents.expand(tokens.shape[0], -1, -1)  # [B, N, D]
        for block in self.cross_blocks:
            x = block(x, context, key_valid)
        for block in self.self_blocks:
            x = block(x)
        out = self.norm(x)
        return out, torch.ones(out.shape[:2], dtype=torch.bool, device=out.device)


TRUNKS: dict[str, type[nn.Module]] = {"transformer": TransformerTrunk, "perceiver": PerceiverTrunk}
"""Trunks by ``model.trunk`` name."""
