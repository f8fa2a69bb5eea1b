"""Baseline consistency: a spectrum and the same spectrum minus its AsLS baseline embed alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from vitnirs.model.encoder import EncoderOutput
from vitnirs.train.objectives.base import ObjectiveTerm

__all__ = ["BaselineConsistency", "baseline_consistency"]


def baseline_consistency(emb: torch.Tensor, emb_corrected: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cosine`` between embeddings (B, D) of spectra and of their baseline-corrected versions.

    A scalar in [0, 2]; 0 when the two agree in direction. Cosine (not MSE) so that the loss
    cannot be lowered by shrinking the embeddings.
    """
    return (1.0 - F.cosine_similarity(emb.float(), emb_corrected.float(), dim=-1, eps=1e-6)).mean()


class BaselineConsistency(ObjectiveTerm):
    """``baseline`` (config ``losses.baseline_consistency_weight``): input vs corrected view."""

    name = "baseline"
    views = ("input", "corrected")
    weight_key = "baseline_consistency_weight"

    def forward(
        self, model: nn.Module, encoded: Mapping[str, EncoderOutput], batch: Mapping[str, Any]
    ) -> dict[str, torch.Tensor]:
        return {self.name: baseline_consistency(encoded["input"].embedding, encoded["corrected"].embedding)}
