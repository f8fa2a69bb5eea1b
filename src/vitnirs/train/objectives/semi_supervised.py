"""The optional semi-supervised head (``losses.semi_supervised_weight``, off by default).

It needs ``training_strategy.use_targets_in_pretraining`` (the config refuses it otherwise), and
the evaluation then warns that its numbers are not a fair comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from vitnirs.model.encoder import EncoderOutput
from vitnirs.train.objectives.base import ObjectiveTerm

__all__ = ["SemiSupervised", "TargetHead"]


class TargetHead(nn.Module):
    """One linear map per dataset, embedding → its standardised y.

    ``forward(emb [B, D], dataset_id [B], target [B]) -> loss``: mean squared error over the
    rows whose target is finite (NaN = none: synthetic rows, datasets without numeric ``y_*``);
    ``0 * pred.sum()`` when the batch has none, so the head stays in the graph (DDP).
    """

    def __init__(self, n_datasets: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_datasets, dim))  # [N_datasets, D]
        self.bias = nn.Parameter(torch.zeros(n_datasets))  # [N_datasets]

    def forward(self, emb: torch.Tensor, dataset_id: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = (emb.float() * self.weight[dataset_id]).sum(-1) + self.bias[dataset_id]  # [B]
        has = torch.isfinite(target)
        if not bool(has.any()):
            return 0.0 * pred.sum()
        return F.mse_loss(pred[has], target[has])


class SemiSupervised(ObjectiveTerm):
    """``semi_supervised``: the :class:`TargetHead` on the input view's embedding (batches with ``target``)."""

    name = "semi_supervised"
    views = ("input",)

    def __init__(self, weight: float, n_datasets: int, dim: int):
        super().__init__(weight)
        self.head = TargetHead(n_datasets, dim)

    @classmethod
    def from_config(cls, losses: Any, *, model: nn.Module, n_datasets: int | None) -> SemiSupervised:
        if n_datasets is None:
            raise ValueError("the semi-supervised head needs n_datasets")
        return cls(losses.semi_supervised_weight, n_datasets, model.encoder.d_model)

    def forward(
        self, model: nn.Module, encoded: Mapping[str, EncoderOutput], batch: Mapping[str, Any]
    ) -> dict[str, torch.Tensor]:
        if "target" not in batch:
            return {}
        return {self.name: self.head(encoded["input"].embedding, batch["dataset_id"], batch["target"])}
