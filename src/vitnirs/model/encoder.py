"""The spectral encoder: a tokenizer, the side tokens, a trunk.

``values (B, L), wavelengths (B, L) nm, valid (B, L)`` (the batch contract) → tokens
(:mod:`vitnirs.model.tokenizer`) → the visible ones gathered first (valid and not masked: MAE
*drops* its masked tokens, it does not hide them) → ``[level token, metadata token, tokens]``
(:mod:`vitnirs.model.side_tokens`) → trunk (:mod:`vitnirs.model.trunks`) → output tokens
(B, N, D) with their validity; the embedding is their masked mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vitnirs.model.readout import masked_mean
from vitnirs.model.side_tokens import SideTokens
from vitnirs.model.tokenizer import Tokens, select_first, take_tokens

__all__ = ["EncoderOutput", "SpectralEncoder"]


@dataclass
class EncoderOutput:
    """What one encoder call gives.

    Attributes:
        tokens: (B, N, D) output tokens (transformer trunk: the visible input tokens, valid ones
            first; Perceiver trunk: the N latents).
        valid: bool (B, N), True = a real output token.
        embedding: (B, D) the masked mean of ``tokens``.
        input: the tokenizer's :class:`~vitnirs.model.tokenizer.Tokens` of the whole batch
            (masked ones included): the reconstruction targets come from here, not a second pass.
    """

    tokens: torch.Tensor
    valid: torch.Tensor
    embedding: torch.Tensor
    input: Tokens

    def rows(self, index: slice) -> EncoderOutput:
        """The same output for a slice of the batch's rows (several views share one call)."""
        return EncoderOutput(
            self.tokens[index], self.valid[index], self.embedding[index], self.input.rows(index)
        )


class SpectralEncoder(SideTokens, nn.Module):
    """Tokenizer × trunk, with the level and metadata side tokens.

    Args:
        tokenizer: a :class:`~vitnirs.model.tokenizer.Tokenizer` (``content_dim``, token width D).
        trunk_factory: builds the :class:`~vitnirs.model.trunks.Trunk` of width D (called after
            the side tokens exist).
        d_model: D.
        d_meta, n_meta_fields, meta_vocab, meta_dropout, level_token: the side tokens
            (:meth:`~vitnirs.model.side_tokens.SideTokens.init_side_tokens`).

    The side tokens are created between the tokenizer and the trunk, and ``level_type`` drawn
    last: the order of the random draws the patch encoder always had, so a seed gives the same
    initial weights (``tests/test_model.py`` checks it against a recorded hash).
    """

    def __init__(
        self,
        *,
        tokenizer: nn.Module,
        trunk_factory: Callable[[], nn.Module],
        d_model: int,
        d_meta: int = 0,
        n_meta_fields: int = 3,
        meta_vocab: int = 64,
        meta_dropout: float = 0.1,
        level_token: bool = True,
    ):
        super().__init__()
        self.d_model = d_model
        self.tokenizer = tokenizer
        self.init_side_tokens(d_model, d_meta, n_meta_fields, meta_vocab, meta_dropout, level_token)
        self.trunk = trunk_factory()
        nn.init.trunc_normal_(self.level_type, std=0.02)

    def forward(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        level: torch.Tensor,
        meta: torch.Tensor | None = None,
        point_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Encode a padded batch.

        Args:
            values: (B, L) normalised values (anything at padding).
            wavelengths: (B, L) in nm.
            valid: bool (B, L), True = a real point.
            level: (B, 2) (mean, log std) removed by the normalisation.
            meta: int (B, K) metadata ids (0 = unknown) or None (all unknown).
            point_mask: bool (B, L) MAE mask of the points (True = masked) or None: the tokens
                it masks are dropped from the trunk's input.
        """
        tokens = self.tokenizer(values, wavelengths, valid, point_mask)
        ids, visible = select_first(tokens.valid & ~tokens.masked)  # [B, T'], [B, T']
        out, out_valid = self.trunk(
            take_tokens(tokens.vectors, ids), visible, self.side_tokens(level, meta)
        )  # [B, N, D], [B, N]
        return EncoderOutput(out, out_valid, masked_mean(out, out_valid), tokens)
