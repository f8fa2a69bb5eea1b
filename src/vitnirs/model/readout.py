"""Readouts: how an encoder's output tokens become one fixed-size embedding per spectrum.

Every readout is taken over the *valid* output tokens only (``valid`` bool (B, N); the
Perceiver trunk's latents are all valid, the transformer trunk's patch tokens are as many as
each spectrum's range covers). Their widths and column names live here too, so that the
estimator, ``vitnirs embed`` and the model card agree on them.

=================  ===========  =========================================================
kind               width        what
=================  ===========  =========================================================
``mean``           D            the mean of the valid tokens (the encoder's own pooling)
``mean+std``       2D           that, then their (population) std
``mean+level``     D + 2        the mean, then ``level`` (B, 2): each spectrum's mean and
                                log std, what the per-spectrum normalisation removed
``mean+max``       2D           the mean, then the max over the valid tokens
``groups4/8``      G·D          the valid tokens in G contiguous groups (token ``r`` of
                                ``n`` is in group ``floor(r·G/n)``), each group's mean,
                                concatenated group by group
=================  ===========  =========================================================
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["READOUTS", "SHIPPABLE_MAX_DIM", "feature_names", "masked_mean", "readout", "readout_dim"]

READOUTS = ("mean", "mean+std", "mean+level", "mean+max", "groups4", "groups8")

SHIPPABLE_MAX_DIM = 512
"""The largest embedding TabPFN can take: the limit on :func:`readout_dim` for a readout we ship."""


def _groups(kind: str) -> int | None:
    """G of a ``"groupsG"`` kind, else None."""
    if kind.startswith("groups") and kind in READOUTS:
        return int(kind[len("groups") :])
    return None


def _check(kind: str) -> None:
    if kind not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}; got {kind!r}")


def readout_dim(kind: str, d_model: int) -> int:
    """The width of :func:`readout` ``kind`` of tokens of width ``d_model`` (ValueError if unknown)."""
    _check(kind)
    D = int(d_model)
    if kind == "mean":
        return D
    if kind in ("mean+std", "mean+max"):
        return 2 * D
    if kind == "mean+level":
        return D + 2
    return int(_groups(kind)) * D  # type: ignore[arg-type]  # groupsG: _check passed


def feature_names(d_model: int, kind: str = "mean") -> np.ndarray:
    """Column names of readout ``kind`` (as many as :func:`readout_dim`).

    ``mean``: ``emb_0 … emb_{D-1}``; ``mean+std`` / ``mean+max`` / ``mean+level``: those, then
    ``emb_std_0 …`` / ``emb_max_0 …`` / ``level_mean, level_log_std``; ``groupsG``:
    ``emb_g0_0 … emb_g0_{D-1}, emb_g1_0 …`` (group by group).
    """
    _check(kind)
    D = int(d_model)
    mean = [f"emb_{i}" for i in range(D)]
    groups = _groups(kind)
    if groups is not None:
        names = [f"emb_g{g}_{i}" for g in range(groups) for i in range(D)]
    elif kind == "mean+std":
        names = mean + [f"emb_std_{i}" for i in range(D)]
    elif kind == "mean+max":
        names = mean + [f"emb_max_{i}" for i in range(D)]
    elif kind == "mean+level":
        names = mean + ["level_mean", "level_log_std"]
    else:
        names = mean
    return np.asarray(names, dtype=object)


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the valid rows: x (B, N, D), valid bool (B, N) -> (B, D) (0 for a row with none)."""
    w = valid.to(x.dtype)[..., None]
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def readout(
    tokens: torch.Tensor,
    kind: str = "mean",
    level: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Output tokens (B, N, D) → one embedding per spectrum, (B, :func:`readout_dim`).

    ``valid``: bool (B, N), True = a real token (None: all are). ``level``: (B, 2), needed by
    ``mean+level``. ValueError for an unknown kind or ``mean+level`` without a (B, 2) level.
    """
    _check(kind)
    B = tokens.shape[0]
    valid = (
        torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        if valid is None
        else valid.bool()
    )
    mean = masked_mean(tokens, valid)  # [B, D]
    if kind == "mean":
        return mean
    if kind == "mean+level":
        if level is None or level.shape != (B, 2):
            got = None if level is None else tuple(level.shape)
            raise ValueError(
                f"readout 'mean+level' needs the level (B, 2) = ({B}, 2) the normalisation removed; got {got}"
            )
        return torch.cat([mean, level.to(mean.dtype)], dim=-1)
    if kind == "mean+std":
        var = masked_mean((tokens - mean[:, None]) ** 2, valid)
        return torch.cat([mean, var.clamp_min(0).sqrt()], dim=-1)
    if kind == "mean+max":
        big = tokens.masked_fill(~valid[..., None], float("-inf")).amax(1).clamp_min(-1e4)
        return torch.cat([mean, big], dim=-1)
    groups = int(_groups(kind))  # type: ignore[arg-type]  # groupsG: _check passed
    n = valid.sum(1, keepdim=True)  # [B, 1]
    rank = valid.long().cumsum(1) - 1  # [B, N] position among the valid tokens
    group = torch.div(rank * groups, n.clamp_min(1), rounding_mode="floor")  # [B, N]
    onehot = (group[..., None] == torch.arange(groups, device=tokens.device)) & valid[..., None]  # [B, N, G]
    w = onehot.to(tokens.dtype)
    means = torch.einsum("bng,bnd->bgd", w, tokens) / w.sum(1)[..., None].clamp_min(1.0)  # [B, G, D]
    return means.reshape(B, -1)
