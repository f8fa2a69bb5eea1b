"""Small heads on the pooled embedding (B, D) for fine-tuning."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RegressionHead", "ClassificationHead"]


def _head(d_in: int, d_out: int, hidden: int, dropout: float) -> nn.Module:
    """LayerNorm -> Linear, or LayerNorm -> Linear -> GELU -> Dropout -> Linear when hidden > 0."""
    if hidden <= 0:
        return nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, d_out))
    return nn.Sequential(
        nn.LayerNorm(d_in), nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_out)
    )


class RegressionHead(nn.Module):
    """embedding (B, d_in) -> predictions (B, n_targets)."""

    def __init__(self, d_in: int, n_targets: int, hidden: int = 0, *, dropout: float = 0.0):
        super().__init__()
        self.net = _head(d_in, n_targets, hidden, dropout)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(embedding)


class ClassificationHead(nn.Module):
    """embedding (B, d_in) -> logits (B, n_classes)."""

    def __init__(self, d_in: int, n_classes: int, hidden: int = 0, *, dropout: float = 0.0):
        super().__init__()
        self.net = _head(d_in, n_classes, hidden, dropout)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(embedding)
