"""The side tokens every encoder puts before its spectral tokens: level, then metadata.

- level token = MLP((mean, log std)) + a learned type vector: the per-spectrum normalisation
  removed the absolute level and scale, which carry chemistry; this token gives them back. It
  is always valid, so every row has at least one key even when all its tokens are masked;
- metadata token (when ``d_meta > 0``) = one embedding table per field (id 0 = unknown) ->
  Linear -> D. In training each id is replaced by 0 with probability ``meta_dropout``, so the
  model also works without it.

:class:`SideTokens` is a mixin of :class:`~vitnirs.model.perceiver.SpectralPerceiver` and
:class:`~vitnirs.model.patch_encoder.PatchEncoder`: it sets its weights as attributes of the
encoder itself (``level_embed``, ``level_type``, ``meta_tables``, ``meta_proj``), so the
state-dict keys of shipped checkpoints stay what they were.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SideTokens"]


class SideTokens:
    """Level and metadata tokens, mixed into an ``nn.Module`` encoder."""

    level_embed: nn.Sequential
    level_type: nn.Parameter
    meta_tables: nn.ModuleList | None
    meta_proj: nn.Linear | None

    def init_side_tokens(
        self,
        d_model: int,
        d_meta: int,
        n_meta_fields: int,
        meta_vocab: int,
        meta_dropout: float,
        level_token: bool,
    ) -> None:
        """Create the side-token weights (call it in ``__init__`` after ``nn.Module.__init__``).

        ``level_type`` is left at zeros: the encoder draws it (``trunc_normal_``) where it always
        has, so that a seed gives the same initial weights as before this mixin existed.
        False ``level_token`` blanks the level token's input (the level-token ablation)."""
        self.level_token, self.n_meta_fields, self.meta_dropout = level_token, n_meta_fields, meta_dropout
        self.level_embed = nn.Sequential(nn.Linear(2, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.level_type = nn.Parameter(torch.zeros(1, 1, d_model))
        if d_meta > 0:
            self.meta_tables = nn.ModuleList(nn.Embedding(meta_vocab, d_meta) for _ in range(n_meta_fields))
            self.meta_proj = nn.Linear(n_meta_fields * d_meta, d_model)
        else:
            self.meta_tables = None
            self.meta_proj = None

    def embed_meta(self, meta: torch.Tensor | None, batch_size: int, device: torch.device) -> torch.Tensor:
        """Metadata ids (B, K') with K' <= n_meta_fields (missing fields = unknown) -> token (B, 1, D)."""
        assert self.meta_tables is not None and self.meta_proj is not None
        ids = torch.zeros(batch_size, self.n_meta_fields, dtype=torch.long, device=device)
        if meta is not None:
            if meta.shape[1] > self.n_meta_fields:
                raise ValueError(f"meta has {meta.shape[1]} fields, the model takes {self.n_meta_fields}")
            ids[:, : meta.shape[1]] = meta.long()
        if self.training and self.meta_dropout > 0:  # type: ignore[attr-defined]  # nn.Module's flag
            ids = ids.masked_fill(torch.rand(ids.shape, device=device) < self.meta_dropout, 0)
        fields = [table(ids[:, i]) for i, table in enumerate(self.meta_tables)]  # K x [B, d_meta]
        return self.meta_proj(torch.cat(fields, dim=-1))[:, None, :]  # [B, 1, D]

    def side_tokens(self, level: torch.Tensor, meta: torch.Tensor | None) -> torch.Tensor:
        """(B, 2) level (mean, log std) and (B, K) metadata ids or None -> side tokens (B, E, D),
        E = 1 (level) + 1 if the encoder has a metadata token; every one of them is a valid key."""
        if not self.level_token:  # the token stays (every row keeps a valid key) but carries no level
            level = torch.zeros_like(level)
        extra = [self.level_embed(level.float())[:, None, :] + self.level_type]  # [B, 1, D]
        if self.meta_tables is not None:
            extra.append(self.embed_meta(meta, level.shape[0], level.device))
        return torch.cat(extra, dim=1)  # [B, E, D]
