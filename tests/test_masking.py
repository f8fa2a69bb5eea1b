"""Block masks and the keep/masked index helpers (vitnirs.batching.masking)."""

from __future__ import annotations

import pytest
import torch

from vitnirs.batching.masking import block_mask
from vitnirs.model.tokenizer import select_first


def padded_valid(lengths: list[int], L: int | None = None) -> torch.Tensor:
    """bool (B, L): the first lengths[i] points of row i are real, the rest padding."""
    L = max(lengths) if L is None else L
    return torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]


def runs(row: list[bool]) -> list[int]:
    """Lengths of the runs of True in a row."""
    out, n = [], 0
    for x in [*row, False]:
        if x:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out


def expected_count(n_valid: torch.Tensor, ratio: float) -> torch.Tensor:
    n = torch.round(n_valid.double() * ratio).long().clamp(min=1)
    return torch.minimum(n, n_valid - 1).clamp(min=0)


@pytest.mark.parametrize(
    ("ratio", "min_block", "max_block"), [(0.7, 5, 50), (0.5, 3, 10), (0.75, 1, 4), (0.3, 8, 8)]
)
def test_block_mask_invariants(ratio: float, min_block: int, max_block: int) -> None:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 400, (256,), generator=g).tolist()
    valid = padded_valid(lengths, L=420)
    mask = block_mask(valid, mask_ratio=ratio, min_block=min_block, max_block=max_block, generator=g)
    n_valid = valid.sum(1)
    assert mask.dtype == torch.bool and mask.shape == valid.shape
    assert not (mask & ~valid).any(), "padding masked"
    # exact count (the documented tolerance is zero), >= 1 masked and >= 1 visible per row
    assert torch.equal(mask.sum(1), expected_count(n_valid, ratio))
    assert (mask.sum(1) >= 1).all() and ((valid & ~mask).sum(1) >= 1).all()
    # block lengths in [min, max] in every row where that is possible with the exact count:
    # some k blocks of allowed length sum to n_mask, with k - 1 visible points to separate them
    n_checked = 0
    for i, (n, m) in enumerate(zip(n_valid.tolist(), mask.sum(1).tolist(), strict=True)):
        k_lo, k_hi = -(-m // max_block), m // min_block
        if k_lo <= k_hi and k_lo <= n - m + 1:
            n_checked += 1
            assert all(min_block <= r <= max_block for r in runs(mask[i, :n].tolist())), (n, m)
    assert n_checked >= (200 if min_block < max_block else 20)  # most rows are checked


def test_block_lengths_strict_on_long_rows() -> None:
    g = torch.Generator().manual_seed(3)
    valid = padded_valid([700, 250, 2100, 1000] * 16)
    mask = block_mask(valid, mask_ratio=0.6, min_block=5, max_block=30, generator=g)
    lengths = [r for i in range(len(mask)) for r in runs(mask[i].tolist())]
    assert min(lengths) >= 5 and max(lengths) <= 30
    assert len(set(lengths)) > 10  # block sizes vary, not one fixed size


def test_blocks_follow_real_points_when_padding_is_not_at_the_end() -> None:
    valid = torch.ones(8, 100, dtype=torch.bool)
    valid[:, 40:60] = False  # a hole: blocks are contiguous among the real points
    mask = block_mask(
        valid, mask_ratio=0.5, min_block=3, max_block=9, generator=torch.Generator().manual_seed(0)
    )
    assert not (mask & ~valid).any()
    assert torch.equal(mask.sum(1), torch.full((8,), 40))


def test_deterministic_per_generator_seed() -> None:
    valid = padded_valid([300, 120, 64, 5, 2])

    def draw(seed: int) -> torch.Tensor:
        return block_mask(
            valid, mask_ratio=0.6, min_block=4, max_block=20, generator=torch.Generator().manual_seed(seed)
        )

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_degenerate_rows() -> None:
    valid = padded_valid([0, 1, 2, 3], L=10)
    mask = block_mask(
        valid, mask_ratio=0.9, min_block=5, max_block=10, generator=torch.Generator().manual_seed(0)
    )
    assert mask.sum(1).tolist() == [0, 0, 1, 2]
    with pytest.raises(ValueError, match="mask_ratio"):
        block_mask(valid, mask_ratio=1.0, min_block=1, max_block=2)
    with pytest.raises(ValueError, match="min_block"):
        block_mask(valid, mask_ratio=0.5, min_block=3, max_block=2)


def test_select_first_round_trip() -> None:
    """The visible / masked tokens gathered first (the encoder's and decoder's indices)."""
    g = torch.Generator().manual_seed(1)
    valid = padded_valid([50, 20, 35, 3])
    mask = block_mask(valid, mask_ratio=0.6, min_block=2, max_block=6, generator=g)
    values = torch.randn(valid.shape, generator=g)

    ids_keep, keep_valid = select_first(valid & ~mask)
    ids_masked, masked_valid = select_first(mask)
    assert ids_keep.shape[1] == (valid & ~mask).sum(1).max() and ids_masked.shape[1] == mask.sum(1).max()
    assert torch.equal(keep_valid.sum(1), (valid & ~mask).sum(1))
    assert torch.equal(masked_valid.sum(1), mask.sum(1))
    for i in range(len(values)):  # reference: boolean indexing, row by row (test only)
        kept = torch.gather(values, 1, ids_keep)[i][keep_valid[i]]
        assert torch.equal(kept, values[i][valid[i] & ~mask[i]])  # same values, same (wavelength) order
        masked = torch.gather(values, 1, ids_masked)[i][masked_valid[i]]
        assert torch.equal(masked, values[i][mask[i]])
    # scattering both sets back rebuilds every real value
    rebuilt = torch.zeros_like(values)
    rebuilt.scatter_(1, ids_keep, torch.gather(values, 1, ids_keep) * keep_valid)
    rebuilt.scatter_add_(1, ids_masked, torch.gather(values, 1, ids_masked) * masked_valid)
    assert torch.equal(rebuilt * valid, values * valid)
