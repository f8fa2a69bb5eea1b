"""Plain transformer over patch tokens (``model.tokens: patch``).

With patches of an absolute lattice (:mod:`vitnirs.model.lattice`) a NIR spectrum is 40–150
tokens, few enough for full self-attention: no Perceiver latents. The sequence is
``[level token, metadata token (if d_meta > 0), patch tokens]``, the side tokens of
:mod:`vitnirs.model.side_tokens` as in :class:`~vitnirs.model.perceiver.SpectralPerceiver`;
``n_self_layers`` pre-norm blocks with a key mask over the padding; the output is the normed
patch tokens, with their validity, and the embedding is their masked mean.

In pretraining the encoder sees only the valid, unmasked patches (gathered out, as MAE drops
its masked patches); the decoder predicts the masked patches' values from the output tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from vitnirs.model.attention import SelfAttentionBlock
from vitnirs.model.lattice import PatchTokenizer
from vitnirs.model.mae import masked_mean, select_first
from vitnirs.model.side_tokens import SideTokens

__all__ = ["PatchEncoder"]


class PatchEncoder(SideTokens, nn.Module):
    """Transformer encoder for patch tokens.

    Args:
        d_model, n_heads, n_self_layers, dropout: sizes of the transformer.
        d_meta, n_meta_fields, meta_vocab, meta_dropout, level_token: the side tokens, as
            :class:`~vitnirs.model.perceiver.SpectralPerceiver`.
        patch_size, channels, lattice_step, sg_window_nm, n_frequencies: the
            :class:`~vitnirs.model.lattice.PatchTokenizer`.
    """

    tokens = "patch"

    def __init__(
        self,
        *,
        d_model: int,
        n_heads: int,
        n_self_layers: int,
        d_meta: int = 0,
        n_meta_fields: int = 3,
        meta_vocab: int = 64,
        dropout: float = 0.0,
        meta_dropout: float = 0.1,
        n_frequencies: int = 32,
        level_token: bool = True,
        patch_size: int = 8,
        channels: tuple[str, ...] | list[str] = ("absorbance", "sg1"),
        lattice_step: float = 0.0016,
        sg_window_nm: float = 20.0,
    ):
        super().__init__()
        self.d_model = d_model
        self.tokenizer = PatchTokenizer(
            d_model=d_model, patch_size=patch_size, channels=channels, lattice_step=lattice_step,
            sg_window_nm=sg_window_nm, n_frequencies=n_frequencies,
        )  # fmt: skip
        self.init_side_tokens(d_model, d_meta, n_meta_fields, meta_vocab, meta_dropout, level_token)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(d_model=d_model, n_heads=n_heads, dropout=dropout)
            for _ in range(n_self_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        nn.init.trunc_normal_(self.level_type, std=0.02)

    def forward(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        level: torch.Tensor,
        meta: torch.Tensor | None = None,
        point_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode a padded batch of points (the batch contract) through its patches.

        Args:
            values, wavelengths, valid, level, meta: as :class:`~vitnirs.model.perceiver.SpectralPerceiver`.
            point_mask: bool (B, L) MAE mask of the points (True = masked) or None: patches
                that are mostly masked are dropped from the input.

        Returns:
            tokens: (B, T', D) the output patch tokens (visible, valid ones first);
            embedding: (B, D) their masked mean; token_valid: bool (B, T').
        """
        B = values.shape[0]
        p = self.tokenizer.patches(values, wavelengths, valid, point_mask)
        keep = p["valid"] & ~p["masked"]  # [B, T]
        tokens = self.tokenizer.embed(p["content"], p["centres"])  # [B, T, D]
        ids, token_valid = select_first(keep)  # [B, T'], [B, T']
        tokens = torch.gather(tokens, 1, ids[..., None].expand(-1, -1, tokens.shape[-1]))
        extra = self.side_tokens(level, meta)  # [B, E, D]
        E = extra.shape[1]
        x = torch.cat([extra, tokens], dim=1)  # [B, E + T', D]
        key_valid = torch.cat([torch.ones(B, E, dtype=torch.bool, device=values.device), token_valid], 1)
        for block in self.blocks:
            x = block(x, key_valid)
        out = self.norm(x)[:, E:]  # [B, T', D]
        return out, masked_mean(out, token_valid), token_valid

    def targets(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The masked patches of a batch, for the decoder: ``content (B, M, P·C)``, ``valid (B, M)``
        and ``centres (B, M)`` nm of the valid masked patches (first, in order)."""
        p = self.tokenizer.patches(batch["values"], batch["wavelengths"], batch["valid"], batch["mask"])
        ids, valid = select_first(p["masked"])  # [B, M]
        content = torch.gather(p["content"], 1, ids[..., None].expand(-1, -1, p["content"].shape[-1]))
        return {"content": content, "valid": valid, "centres": p["centres"][ids]}
