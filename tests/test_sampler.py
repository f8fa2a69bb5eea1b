"""DatasetSampler: uniform-by-dataset, synthetic mix, determinism, length buckets, token budget."""

from __future__ import annotations

import numpy as np
import pytest

from vitnirs.batching.sampler import DatasetSampler, steps_per_epoch


def counts(sampler: DatasetSampler, n_steps: int) -> np.ndarray:
    out = np.zeros(len(sampler.sizes))
    for step in range(n_steps):
        d, r = sampler.draw(step)
        assert (r >= 0).all() and (r < sampler.sizes[d]).all()
        np.add.at(out, d, 1)
    return out


def test_uniform_across_datasets_of_very_different_sizes():
    sampler = DatasetSampler([10, 10_000, 500], synthetic=[False] * 3, p_synth=0.0, max_batch=64)
    c = counts(sampler, 300)
    assert np.abs(c / c.mean() - 1).max() < 0.1  # each dataset ≈ 1/3 of the draws


def test_rows_uniform_within_a_dataset():
    sampler = DatasetSampler([10], synthetic=[False], p_synth=0.0, max_batch=100)
    rows = np.concatenate([sampler.draw(s)[1] for s in range(100)])
    assert np.abs(np.bincount(rows, minlength=10) / 1000 - 1).max() < 0.15


def test_p_synth_fraction_and_uniform_synthetic():
    synthetic = [False, False, True, True]
    sampler = DatasetSampler([50, 5000, 20, 2000], synthetic=synthetic, p_synth=0.3, max_batch=64)
    c = counts(sampler, 300)
    assert abs(c[2:].sum() / c.sum() - 0.3) < 0.03
    assert abs(c[2] / c[3] - 1) < 0.15 and abs(c[0] / c[1] - 1) < 0.1


def test_no_synthetic_warns_and_ignores_p_synth():
    with pytest.warns(UserWarning, match="no synthetic"):
        sampler = DatasetSampler([5, 6], synthetic=[False, False], p_synth=0.5, max_batch=8)
    assert sampler.p_synth == 0.0


def test_weights_and_curriculum():
    sampler = DatasetSampler([10, 10], synthetic=[False, False], p_synth=0, weights=[1, 3], max_batch=64)
    c = counts(sampler, 200)
    assert abs(c[1] / c.sum() - 0.75) < 0.03
    cur = DatasetSampler(
        [10, 100_000], synthetic=[False, False], p_synth=0, curriculum_steps=100, max_batch=8
    )
    p0, p_end = cur.dataset_probabilities(0), cur.dataset_probabilities(100)
    assert p0[1] > p0[0] and np.allclose(p_end, [0.5, 0.5])


def test_pure_function_of_seed_rank_step():
    kw = dict(synthetic=[False, True], p_synth=0.3, max_batch=32, seed=7)
    a, b = DatasetSampler([100, 50], rank=0, **kw), DatasetSampler([100, 50], rank=0, **kw)
    other = DatasetSampler([100, 50], rank=1, world_size=2, **kw)
    for step in (5, 0, 1000, 5):  # any order: no hidden state
        assert all(np.array_equal(x, y) for x, y in zip(a.draw(step), b.draw(step), strict=True))
    assert not np.array_equal(a.draw(3)[1], other.draw(3)[1])
    assert not np.array_equal(a.draw(3)[1], a.draw(4)[1])


def test_buckets_group_lengths_and_respect_token_budget():
    lengths = [250, 256, 700, 750, 2100]
    sampler = DatasetSampler(
        [100] * 5, synthetic=[False] * 5, p_synth=0, lengths=lengths, token_budget=20_000, max_batch=64
    )
    L = np.array(lengths)
    seen = np.zeros(5)
    for step in range(400):
        d, _ = sampler.draw(step)
        assert len(d) * L[d].max() <= 20_000
        assert len(set(sampler.bucket[d])) == 1  # one bucket per batch: similar lengths
        np.add.at(seen, d, 1 / len(d))  # per-batch share: bucket chosen ∝ its datasets' share
    assert sampler.batch_size(sampler.bucket[0]) == 64 and sampler.batch_size(sampler.bucket[4]) == 9
    assert np.abs(seen / seen.mean() - 1).max() < 0.25


def test_steps_per_epoch():
    assert steps_per_epoch(45) == 9000
    assert steps_per_epoch(45, 50) == 50
    assert steps_per_epoch(3, None, k=10) == 30
