"""Block masks for masked-spectrum pretraining, built for a whole padded batch at once.

Conventions (as in :mod:`vitnirs.batching`): ``valid`` True = a real point, False = padding;
``mask`` True = masked (its tokens are removed from the encoder input and predicted by the decoder).

:func:`block_mask` draws, per row, contiguous blocks in wavelength order (the order of the
row's real points) with tensor ops over the batch: no Python loop over samples or blocks.
The number of masked points is **exact**: ``clamp(round(mask_ratio * n_valid), 1, n_valid - 1)``
per row (rows with fewer than 2 real points get no mask). The construction:

1. per row, a number of blocks ``k`` (about ``n_mask / s`` with ``s ~ U[min_block, max_block]``,
   clamped so that ``k`` blocks of length in ``[min_block, max_block]`` add up to ``n_mask``);
2. block lengths = ``min_block`` + a random composition of the remainder, capped at
   ``max_block - min_block`` (exact sum, random order);
3. the ``n_valid - n_mask`` visible points split into ``k + 1`` gaps (inner gaps >= 1, so
   blocks never merge; end gaps >= 0).

Block lengths are in ``[min_block, max_block]`` whenever the exact count allows it: some ``k``
blocks of allowed length sum to ``n_mask`` and ``k - 1`` visible points can separate them.
Otherwise (short spectra, very high ratios, ``min_block == max_block``) the count stays exact
and the blocks bend: shorter than ``min_block`` (e.g. ``n_mask < min_block``), or longer than
``max_block`` when the visible points cannot separate enough blocks. Blocks never cross the
ends of a spectrum, so no clipping is needed.

The tokenizer turns this point mask into a token mask (:mod:`vitnirs.model.tokenizer`); the
encoder drops the masked tokens and the decoder predicts them (:mod:`vitnirs.model.mae`).
"""

from __future__ import annotations

import torch

__all__ = ["block_mask"]


def _random_composition(
    total: torch.Tensor, n_parts: torch.Tensor, n_slots: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Split ``total`` (B,) into ``n_parts`` (B,) random non-negative integer parts.

    Discretised uniform (Dirichlet(1)) cuts: part j = floor(total * C_j) - floor(total * C_{j-1})
    with C the normalised cumulative sum of uniform weights. Returns (B, n_slots) int64, zero
    beyond ``n_parts``; each row sums exactly to ``total``.
    """
    B = total.shape[0]
    slot = torch.arange(n_slots, device=total.device)
    active = slot[None, :] < n_parts[:, None]  # [B, S]
    w = torch.rand(B, n_slots, generator=generator, device=total.device, dtype=torch.float64)
    w = w * active
    cum = torch.cumsum(w, dim=1)
    cum = cum / cum[:, -1:].clamp_min(1e-12)
    cuts = torch.floor(total[:, None].double() * cum).long()  # [B, S]
    cuts = torch.where(slot[None, :] >= n_parts[:, None] - 1, total[:, None], cuts)  # exact end
    parts = torch.diff(cuts, dim=1, prepend=torch.zeros_like(cuts[:, :1]))
    return parts * active


def _shuffle_active(
    x: torch.Tensor, n_parts: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Randomly permute the first ``n_parts`` entries of each row of ``x`` (B, S)."""
    B, S = x.shape
    keys = torch.rand(B, S, generator=generator, device=x.device)
    keys = torch.where(torch.arange(S, device=x.device)[None, :] < n_parts[:, None], keys, 2.0)
    return torch.gather(x, 1, torch.argsort(keys, dim=1))


def block_mask(
    valid: torch.Tensor,
    *,
    mask_ratio: float,
    min_block: int,
    max_block: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Contiguous block mask over the real points of each row.

    Args:
        valid: bool (B, L), True = real point. Points are taken in their stored (wavelength) order.
        mask_ratio: fraction of each row's real points to mask, in (0, 1).
        min_block, max_block: block length bounds (1 <= min_block <= max_block).
        generator: torch generator for the draws (the mask is a pure function of its state).

    Returns:
        mask: bool (B, L), True = masked; never True at padding; exactly
        ``clamp(round(mask_ratio * n_valid), 1, n_valid - 1)`` True per row with n_valid >= 2.

    Example:
        >>> valid = torch.ones(2, 100, dtype=torch.bool)
        >>> valid[1, 60:] = False  # the second spectrum has 60 points, then padding
        >>> mask = block_mask(valid, mask_ratio=0.5, min_block=4, max_block=12,
        ...                   generator=torch.Generator().manual_seed(0))
        >>> mask.sum(dim=1).tolist(), bool((mask & ~valid).any())
        ([50, 30], False)
    """
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    if not 1 <= min_block <= max_block:
        raise ValueError(f"need 1 <= min_block <= max_block, got {min_block}, {max_block}")
    device = valid.device
    valid = valid.bool()
    B, L = valid.shape
    n_valid = valid.sum(dim=1)  # [B]
    n_mask = torch.round(n_valid.double() * mask_ratio).long().clamp(min=1)
    n_mask = torch.minimum(n_mask, n_valid - 1).clamp(min=0)  # at least one visible point
    n_vis = n_valid - n_mask

    # 1. number of blocks per row: about n_mask / s, s ~ U[min_block, max_block]
    size = torch.empty(B, device=device, dtype=torch.float64).uniform_(
        min_block, max_block, generator=generator
    )
    k = torch.round(n_mask / size).long()
    k_lo = torch.div(n_mask + max_block - 1, max_block, rounding_mode="floor")  # blocks <= max_block
    k_hi = torch.maximum(torch.div(n_mask, min_block, rounding_mode="floor"), k_lo)  # blocks >= min_block
    k = torch.maximum(torch.minimum(k, k_hi), k_lo).clamp(min=1)
    k = torch.minimum(k, n_vis + 1) * (n_mask > 0)  # inner gaps need >= 1 visible point each
    k_safe = k.clamp(min=1)
    lo = torch.minimum(torch.full_like(n_mask, min_block), torch.div(n_mask, k_safe, rounding_mode="floor"))

    # 2. block lengths: lo + capped random composition of the remainder
    K = max(int(k.max()), 1)
    rem = (n_mask - k * lo).clamp(min=0)
    cap = torch.maximum(torch.full_like(rem, max_block) - lo, -torch.div(-rem, k_safe, rounding_mode="floor"))
    extra = torch.minimum(_random_composition(rem, k, K, generator), cap[:, None])
    spare = (cap[:, None] - extra) * (torch.arange(K, device=device)[None, :] < k[:, None])
    overflow = rem - extra.sum(dim=1)  # what the cap cut off, refilled where there is room
    before = torch.cumsum(spare, dim=1) - spare
    extra = extra + torch.minimum((overflow[:, None] - before).clamp(min=0), spare)
    extra = _shuffle_active(extra, k, generator)
    lengths = (lo[:, None] + extra) * (torch.arange(K, device=device)[None, :] < k[:, None])  # [B, K]

    # 3. gaps: k + 1 of them, inner ones >= 1
    free = (n_vis - (k - 1).clamp(min=0)).clamp(min=0)
    gaps = _random_composition(free, k + 1, K + 1, generator)  # [B, K+1]
    inner = (torch.arange(K + 1, device=device)[None, :] >= 1) & (
        torch.arange(K + 1, device=device)[None, :] < k[:, None]
    )
    gaps = gaps + inner.long()
    starts = torch.cumsum(gaps[:, :K], dim=1) + torch.cumsum(lengths, dim=1) - lengths  # [B, K]

    # paint the blocks in rank space (rank = index among the row's real points) with a difference array
    delta = torch.zeros(B, L + 1, dtype=torch.long, device=device)
    delta.scatter_add_(1, starts.clamp(max=L), (lengths > 0).long())
    delta.scatter_add_(1, (starts + lengths).clamp(max=L), -(lengths > 0).long())
    in_block = torch.cumsum(delta[:, :L], dim=1) > 0  # [B, L] indexed by rank
    rank = (torch.cumsum(valid.long(), dim=1) - 1).clamp(min=0)
    return torch.gather(in_block, 1, rank) & valid
