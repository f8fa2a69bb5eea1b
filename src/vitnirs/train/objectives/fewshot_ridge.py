"""Few-shot ridge (MetaOptNet / R2-D2 style): a closed-form ridge fitted on half of a mixture group
must predict the mixing weights of the other half from the input view's embedding.

A group (``batch["mix_group"]``) is M convex combinations of the same K base spectra of one
dataset; ``batch["mix_weights"]`` (B, 4) are each row's weights, zero-padded after K. Absorbance is
linear in the weights, so an embedding that keeps the chemistry linear lets a ridge read them off
from a few rows. Rows outside a group have ``mix_group = -1``; groups under 4 rows are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vitnirs.model.encoder import EncoderOutput
from vitnirs.train.objectives.base import ObjectiveTerm

__all__ = ["FewShotRidge", "group_rows", "ridge_task_loss"]

Tensor = torch.Tensor
MIN_GROUP = 4  # rows: 2 support + 2 query at least


def ridge_task_loss(
    z_support: Tensor, y_support: Tensor, z_query: Tensor, y_query: Tensor, lam: float
) -> Tensor:
    """Normalised query error of a ridge fitted on the support set, for each of G tasks.

    z_support: (G, S, D), y_support: (G, S, K), z_query: (G, Q, D), y_query: (G, Q, K).
    Embeddings and labels are centred on the support means (the intercept); the ridge is solved in
    its dual form, ``W = Zs^T (Zs Zs^T + λ' I)^{-1} Ys`` (an S x S solve: S < D), with
    ``λ' = lam * mean_i ||zs_i||^2`` over the centred support rows, so the loss is invariant to the
    embedding's scale. ``λ'`` is NOT detached: the loss is then a scale-invariant function of the
    embeddings and its gradient has no radial part; detached, the fixed penalty would reward
    inflating the embedding norm (a larger norm is a weaker effective penalty).

    Returns (G,): the squared error over the Q x K query entries divided by the query labels'
    squared deviations from their own mean (population variance), i.e. MSE / mean column variance;
    0 for a perfect fit, exactly 1 for a head predicting the query mean. All-zero label columns (the
    padding after K) add nothing to either sum. Computed in float32 at least, autocast off.
    """
    dtype = torch.promote_types(z_support.dtype, torch.float32)
    with torch.autocast(z_support.device.type, enabled=False):
        zs, zq, ys, yq = (t.to(dtype) for t in (z_support, z_query, y_support, y_query))
        z_mean, y_mean = zs.mean(1, keepdim=True), ys.mean(1, keepdim=True)  # (G, 1, D), (G, 1, K)
        zc, yc = zs - z_mean, ys - y_mean
        scale = zc.pow(2).sum(-1).mean(-1).clamp_min(1e-12)  # (G,): a collapsed support stays solvable
        gram = zc @ zc.transpose(1, 2)  # (G, S, S)
        eye = torch.eye(gram.shape[-1], dtype=dtype, device=gram.device)
        alpha = torch.linalg.solve(gram + (lam * scale)[:, None, None] * eye, yc)  # (G, S, K)
        pred = (zq - z_mean) @ zc.transpose(1, 2) @ alpha + y_mean  # (G, Q, K) = (zq - z̄) W + ȳ
        error = (pred - yq).pow(2).sum((1, 2))
        spread = (yq - yq.mean(1, keepdim=True)).pow(2).sum((1, 2)).clamp_min(1e-12)
        return error / spread


def group_rows(mix_group: Tensor, min_rows: int = MIN_GROUP) -> list[Tensor]:
    """The rows of every group with at least ``min_rows`` rows, as (G_m, m) index tensors, one per
    group size m (one tensor when all groups are the same size), row order kept within a group."""
    ids, counts = torch.unique(mix_group[mix_group >= 0], return_counts=True)  # sorted ids
    order = torch.argsort(mix_group, stable=True)  # rows grouped by id, each group in row order
    starts = torch.searchsorted(mix_group[order].contiguous(), ids)  # first sorted position of each id
    out = []
    for m in counts[counts >= min_rows].unique().tolist():  # a loop over sizes, never over rows
        first = starts[counts == m]  # (G_m,)
        out.append(order[first[:, None] + torch.arange(m, device=first.device)])  # (G_m, m)
    return out


class FewShotRidge(ObjectiveTerm):
    """``fewshot_ridge``: ridge on the first half of each mixture group (by row order) predicts the
    second half's mixing weights; logged with ``fewshot_ridge_groups`` (the groups used)."""

    name = "fewshot_ridge"
    views = ("input",)

    def __init__(self, weight: float, lam: float = 0.1):
        super().__init__(weight)
        if lam <= 0:
            raise ValueError(f"fewshot_ridge lambda must be > 0, got {lam}")
        self.lam = float(lam)

    @classmethod
    def from_config(cls, losses: Any, *, model: nn.Module, n_datasets: int | None) -> FewShotRidge:
        return cls(losses.fewshot_ridge_weight, losses.fewshot_ridge_lambda)

    def forward(
        self, model: nn.Module, encoded: Mapping[str, EncoderOutput], batch: Mapping[str, Any]
    ) -> dict[str, Tensor]:
        emb = encoded["input"].embedding  # (B, D)
        losses = []
        if "mix_group" in batch and "mix_weights" in batch:
            weights = batch["mix_weights"].to(emb.device)  # (B, 4)
            for rows in group_rows(batch["mix_group"].to(emb.device)):
                s = rows.shape[1] // 2  # support: the first half
                z, y = emb[rows], weights[rows]  # (G, m, D), (G, m, 4)
                losses.append(ridge_task_loss(z[:, :s], y[:, :s], z[:, s:], y[:, s:], self.lam))
        if not losses:  # no usable group: a zero that keeps the encoder in the graph (DDP)
            loss, n_groups = 0.0 * emb.float().sum(), 0
        else:
            per_group = torch.cat(losses)  # (G,)
            loss, n_groups = per_group.mean(), per_group.numel()
        return {self.name: loss, f"{self.name}_groups": loss.new_tensor(float(n_groups))}
