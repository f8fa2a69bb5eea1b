"""Masked prediction of the clean spectrum: the encoder reads a nuisance view, masked; the decoder
predicts the masked patches of the same spectrum *before* its nuisances (every channel).

Today's ``mae`` term predicts the patches of the view it reads, nuisances included: to predict a
drifted patch the encoder must carry the drift. Here the target is the ``clean`` view (same points,
same mask, no nuisance draws), so what the view's nuisance adds is never rewarded. The clean
patches come from the tokenizer alone (no second trunk pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vitnirs.model.encoder import EncoderOutput
from vitnirs.train.objectives.base import ObjectiveTerm

__all__ = ["CleanReconstruction", "clean_content"]


def clean_content(model: nn.Module, encoded: EncoderOutput, batch: Mapping[str, Any]) -> torch.Tensor:
    """The clean view's patch content ``(B, T, P·C)`` on the tokens of ``encoded`` (same T, same order)."""
    tokenizer = model.encoder.tokenizer
    with torch.no_grad():
        chans, _ = tokenizer.channel_values(batch["clean_values"], batch["wavelengths"], batch["valid"])
        content = chans.reshape(chans.shape[0], -1, tokenizer.content_dim)  # [B, Np, P*C] whole lattice
        start = int(torch.searchsorted(tokenizer.centres, encoded.input.centres[:1]))
    return content[:, start : start + encoded.input.centres.shape[0]]


class CleanReconstruction(ObjectiveTerm):
    """``mae_clean``: MSE of every channel of every masked patch of the input view against the clean view's."""

    name = "mae_clean"
    views = ("input",)

    def forward(
        self, model: nn.Module, encoded: Mapping[str, EncoderOutput], batch: Mapping[str, Any]
    ) -> dict[str, torch.Tensor]:
        out = encoded["input"]
        return {self.name: model.reconstruction_loss(out, target=clean_content(model, out, batch))}
