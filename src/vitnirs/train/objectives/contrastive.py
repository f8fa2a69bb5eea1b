"""Two-view invariance: VICReg or InfoNCE between the embeddings of the input view and ``view2``.

The losses act on the pooled embedding itself (no projector head, unlike VICReg's expander; a
small weight keeps them from dominating). ``view2`` is another augmentation of the same real
spectrum, or the paired view of a synthetic sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from vitnirs.model.encoder import EncoderOutput
from vitnirs.train.objectives.base import ObjectiveTerm

__all__ = ["Contrastive", "contrastive", "info_nce", "vicreg"]

Tensor = torch.Tensor


def vicreg(
    z1: Tensor, z2: Tensor, *, sim: float = 25.0, var: float = 25.0, cov: float = 1.0, eps: float = 1e-4
) -> dict[str, Tensor]:
    """VICReg (Bardes et al. 2022) between two views ``z1, z2: (B, D)``.

    Returns ``{"invariance", "variance", "covariance", "total"}``: the mean squared distance
    between views; a hinge pushing each dimension's std up to 1 (what prevents the collapse
    of every embedding onto one point); the squared off-diagonal covariances (decorrelates
    dimensions); and their weighted sum ``sim*inv + var*var + cov*cov``.
    """
    z1, z2 = z1.float(), z2.float()
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)

    def variance(z: Tensor) -> Tensor:
        std = torch.sqrt(z.var(dim=0, unbiased=n > 1) + eps)
        return F.relu(1.0 - std).mean()

    def covariance(z: Tensor) -> Tensor:
        z = z - z.mean(dim=0)
        c = (z.T @ z) / max(n - 1, 1)  # (D, D)
        off = c - torch.diag_embed(torch.diagonal(c))
        return off.pow(2).sum() / d

    v = 0.5 * (variance(z1) + variance(z2))
    c = covariance(z1) + covariance(z2)
    total = sim * invariance + var * v + cov * c
    return {"invariance": invariance, "variance": v, "covariance": c, "total": total}


def info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> Tensor:
    """Symmetric InfoNCE (SimCLR/CLIP style): row ``i`` of ``z1`` must pick row ``i`` of ``z2``.

    z1, z2: (B, D). Cosine similarities divided by ``temperature``; the other rows of the
    batch are the negatives. Returns a scalar (>= 0; ``log B`` at chance).
    """
    a = F.normalize(z1.float(), dim=-1)
    b = F.normalize(z2.float(), dim=-1)
    logits = a @ b.T / temperature  # (B, B)
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def contrastive(z1: Tensor, z2: Tensor, kind: str, *, temperature: float = 0.1) -> dict[str, Tensor]:
    """The configured invariance loss (``losses.contrastive``) as ``{"total", ...terms}``."""
    if kind == "vicreg":
        return vicreg(z1, z2)
    if kind == "infonce":
        return {"total": info_nce(z1, z2, temperature)}
    raise ValueError(f"unknown contrastive loss {kind!r}; allowed: vicreg, infonce")


class Contrastive(ObjectiveTerm):
    """``contrastive``: ``losses.contrastive`` (vicreg / infonce) between input and ``view2``;
    its parts are logged as ``contrastive_<part>``."""

    name = "contrastive"
    views = ("input", "view2")

    def __init__(self, weight: float, kind: str = "vicreg", temperature: float = 0.1):
        super().__init__(weight)
        self.kind, self.temperature = kind, float(temperature)

    @classmethod
    def from_config(cls, losses: Any, *, model: nn.Module, n_datasets: int | None) -> Contrastive:
        return cls(losses.contrastive_weight, losses.contrastive, losses.temperature)

    def forward(
        self, model: nn.Module, encoded: Mapping[str, EncoderOutput], batch: Mapping[str, Any]
    ) -> dict[str, Tensor]:
        parts = contrastive(
            encoded["input"].embedding, encoded["view2"].embedding, self.kind, temperature=self.temperature
        )
        return {self.name: parts.pop("total"), **{f"{self.name}_{k}": v for k, v in parts.items()}}
