"""Pretraining losses besides MAE reconstruction (which lives with the model).

* :func:`baseline_consistency` — the embedding of a spectrum and of the same spectrum minus
  its cached AsLS baseline should agree. Both embeddings come from ONE encoder call on the
  batch ``[x; x - baseline]`` (see :func:`concat_views`), never a per-sample loop.
* :func:`vicreg` / :func:`info_nce` — invariance between two views of the same spectra
  (two augmentations of a real spectrum, or the paired views of a synthetic sample).
* :func:`combine` — the weighted total, with every term kept for logging.
* :class:`PretrainObjective` — all of them in one ``forward`` (what the loop and DDP wrap).

Every function takes pooled embeddings ``(B, D)`` and returns scalars; nothing loops over
the samples of a batch. The contrastive losses act on the pooled embedding itself (no
projector head, unlike VICReg's expander; a small weight keeps them from dominating).
:class:`TargetHead` is the optional semi-supervised head (``losses.semi_supervised_weight``,
off by default; it needs ``training_strategy.use_targets_in_pretraining`` and the evaluation
then warns that its numbers are not a fair comparison).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from vitnirs.batching.contract import PAD_WAVELENGTH

Tensor = torch.Tensor


def baseline_consistency(emb: Tensor, emb_corrected: Tensor) -> Tensor:
    """Mean ``1 - cosine`` between embeddings of spectra and of their baseline-corrected versions.

    emb, emb_corrected: (B, D). Returns a scalar in [0, 2]; 0 when the two agree in direction.
    Cosine (not MSE) so that the loss cannot be lowered by shrinking the embeddings.
    """
    return (1.0 - F.cosine_similarity(emb.float(), emb_corrected.float(), dim=-1, eps=1e-6)).mean()


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


VIEW_KEYS = ("values", "wavelengths", "valid", "level")
_PAD = {"values": 0.0, "wavelengths": PAD_WAVELENGTH, "valid": False, "mask": False}  # the contract's padding


def _pad_to(x: Tensor, length: int, fill: float | bool) -> Tensor:
    return x if x.shape[1] == length else F.pad(x, (0, length - x.shape[1]), value=fill)


def concat_views(views: Sequence[Mapping[str, Any]], keys: Sequence[str] = VIEW_KEYS) -> dict[str, Any]:
    """Several views of a batch as one batch: padded to the longest ``L_i`` (the batch
    contract's padding: values 0, wavelengths 1000 nm, valid/mask False) and concatenated
    along the batch axis; ``meta`` only when every view has it."""
    length = max(v["values"].shape[1] for v in views)
    cat: dict[str, Any] = {
        key: torch.cat([_pad_to(v[key], length, _PAD[key]) if key in _PAD else v[key] for v in views])
        for key in keys
    }
    metas = [v.get("meta") for v in views]
    cat["meta"] = torch.cat(metas) if all(m is not None for m in metas) else None
    return cat


class TargetHead(nn.Module):
    """The optional semi-supervised head: one linear map per dataset, embedding → its standardised y.

    ``forward(emb [B, D], dataset_id [B], target [B]) -> loss``: mean squared error over the
    rows whose target is finite (NaN = none: synthetic rows, datasets without numeric ``y_*``);
    ``0 * pred.sum()`` when the batch has none, so the head stays in the graph (DDP).
    """

    def __init__(self, n_datasets: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_datasets, dim))  # [N_datasets, D]
        self.bias = nn.Parameter(torch.zeros(n_datasets))  # [N_datasets]

    def forward(self, emb: Tensor, dataset_id: Tensor, target: Tensor) -> Tensor:
        pred = (emb.float() * self.weight[dataset_id]).sum(-1) + self.bias[dataset_id]  # [B]
        has = torch.isfinite(target)
        if not bool(has.any()):
            return 0.0 * pred.sum()
        return F.mse_loss(pred[has], target[has])


class PretrainObjective(nn.Module):
    """All pretraining losses in one ``forward``: what the loop (and DDP) wraps.

    ``forward(batch) -> (total, terms)``: ``mae`` (reconstruction of the masked points),
    ``baseline`` (embedding of the spectra vs of ``corrected_values``) and ``contrastive`` (the
    batch vs ``batch["view2"]``) with their sub-terms; every view is encoded on its visible
    points in one ``model.forward_encoder`` call, and the decoder reads the first view's latents. A term whose weight is 0 is not computed. Keeping every loss inside one
    module's ``forward`` is what lets DDP see the whole graph.

    Parameters
    ----------
    model:
        A ``SpectralMAE``: ``forward_encoder(batch) -> (latents, embedding, latent_valid)`` on
        the visible points (patches) and ``reconstruction_loss(latents, batch, latent_valid)``.
    weights:
        ``{"mae": w, "baseline": w, "contrastive": w}`` (the ``losses.*_weight`` keys).
    contrastive_kind, temperature:
        ``losses.contrastive`` and ``losses.temperature``.
    target_head:
        Optional :class:`TargetHead` (``weights["semi_supervised"]`` > 0 and batches carrying
        ``target``): the semi-supervised term on the first view's embedding.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        weights: Mapping[str, float],
        contrastive_kind: str = "vicreg",
        temperature: float = 0.1,
        target_head: TargetHead | None = None,
    ):
        super().__init__()
        self.model = model
        self.target_head = target_head
        self.weights = dict(weights)
        self.contrastive_kind = contrastive_kind
        self.temperature = temperature

    def forward(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        # Every view is encoded on its VISIBLE points only (the MAE mask drops ~70 % of the
        # tokens), all views in ONE encoder call: the baseline-consistency and contrastive
        # terms then cost about one more MAE encoder pass each, not a full-length encode
        # (measured: 1.5-2x faster steps at L = 700 than embedding every point; see
        # benchmarks/throughput.py). The corrected view shares the batch's mask, so both
        # embeddings see the same wavelengths.
        use_baseline = bool(self.weights.get("baseline", 0.0))
        use_contrastive = bool(self.weights.get("contrastive", 0.0))
        views: list[Mapping[str, Any]] = [batch]
        if use_baseline:
            views.append({**batch, "values": batch["corrected_values"], "level": batch["corrected_level"]})
        if use_contrastive:
            views.append(batch["view2"])
        n = batch["values"].shape[0]
        latents, emb, latent_valid = self.model.forward_encoder(
            concat_views(views, (*VIEW_KEYS, "mask"))
        )  # [V*B, N, D], [V*B, D], None or [V*B, N]
        terms: dict[str, Tensor] = {}
        if self.weights.get("mae", 0.0):
            first = None if latent_valid is None else latent_valid[:n]
            terms["mae"] = self.model.reconstruction_loss(latents[:n], batch, first)
        if use_baseline:
            terms["baseline"] = baseline_consistency(emb[:n], emb[n : 2 * n])
        if use_contrastive:
            parts = contrastive(emb[:n], emb[-n:], self.contrastive_kind, temperature=self.temperature)
            terms["contrastive"] = parts.pop("total")
            terms.update({f"contrastive_{k}": v for k, v in parts.items()})
        if self.target_head is not None and "target" in batch:
            terms["semi_supervised"] = self.target_head(emb[:n], batch["dataset_id"], batch["target"])
        return combine(terms, self.weights)


def combine(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted total of the loss terms present; returns ``(total, {term: value, "total": ...})``.

    ``weights`` maps a term name to its weight; a term with weight 0 or absent from
    ``terms`` is not added. Every term is returned detached (0-d tensors, so the caller can
    move them to the host in one transfer) for logging.
    """
    total = None
    for name, value in terms.items():
        w = weights.get(name, 0.0)
        if w:
            total = w * value if total is None else total + w * value
    if total is None:
        raise ValueError("no loss term with a positive weight: check the losses.* weights")
    logged = {name: value.detach() for name, value in terms.items()}
    logged["total"] = total.detach()
    return total, logged
