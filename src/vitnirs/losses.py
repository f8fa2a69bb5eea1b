"""Pretraining losses besides MAE reconstruction (which lives with the model).

* :func:`baseline_consistency` — the embedding of a spectrum and of the same spectrum minus
  its cached AsLS baseline should agree. Both embeddings come from ONE encoder call on the
  batch ``[x; x - baseline]`` (see :func:`paired_embeddings`), never a per-sample loop.
* :func:`vicreg` / :func:`info_nce` — invariance between two views of the same spectra
  (two augmentations of a real spectrum, or the paired views of a synthetic sample).
* :func:`combine` — the weighted total, with every term kept for logging.

Every function takes pooled embeddings ``(B, D)`` and returns scalars; nothing loops over
the samples of a batch. The optional semi-supervised head is not implemented (off by
default in the roadmap; targets are never used in pretraining).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

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


def paired_embeddings(
    encode: Callable[..., tuple[Tensor, Tensor]],
    first: Mapping[str, Tensor],
    second: Mapping[str, Tensor],
) -> tuple[Tensor, Tensor]:
    """Embeddings of two batches of the same padded shape from ONE batched encoder call.

    ``first`` and ``second`` hold ``values``, ``wavelengths``, ``valid``, ``level`` (and
    optionally ``meta``), each ``(B, L)`` (``level``: ``(B, 2)``). They are concatenated along
    the batch, encoded once, and split: returns ``(emb_first, emb_second)``, each ``(B, D)``.
    """
    b = first["values"].shape[0]
    meta = None
    if first.get("meta") is not None and second.get("meta") is not None:
        meta = torch.cat([first["meta"], second["meta"]])
    _, emb = encode(
        torch.cat([first["values"], second["values"]]),
        torch.cat([first["wavelengths"], second["wavelengths"]]),
        torch.cat([first["valid"], second["valid"]]),
        torch.cat([first["level"], second["level"]]),
        meta=meta,
    )
    return emb[:b], emb[b:]


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
