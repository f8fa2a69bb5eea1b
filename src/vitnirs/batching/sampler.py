"""Which spectra make up the batch of a step: uniform-by-dataset sampling, synthetic mix, length buckets.

The draw of a step is a pure function of ``(seed, rank, step)``: resuming a run, or running it
with another number of data workers, never changes the stream of sampled spectra.

Per slot, the marginal law is the roadmap's: with probability ``p_synth`` a synthetic dataset
(uniform over the synthetic ones), otherwise a real dataset (uniform, or by ``weights``), then a
row uniform within that dataset. Length buckets (timm NaFlex style) keep padding small: each step
first picks a bucket of similar lengths, with probability equal to the bucket's share of that
marginal law, then draws every slot within it, so the marginal law per dataset is unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["BUCKET_EDGES", "DatasetSampler", "step_rng", "steps_per_epoch"]

BUCKET_EDGES = (300, 800, 1400)  # points: ≤300, ≤800, ≤1400, more


def steps_per_epoch(n_datasets: int, steps_per_epoch: int | None = None, k: int = 200) -> int:
    """Steps of a virtual epoch: ``steps_per_epoch`` if given, else ``k × n_datasets``."""
    return int(steps_per_epoch) if steps_per_epoch else int(k) * int(n_datasets)


def step_rng(seed: int, rank: int, step: int, stream: int = 0) -> np.random.Generator:
    """The numpy generator of one ``(seed, rank, step, stream)``; streams separate independent uses."""
    return np.random.default_rng([int(seed), int(rank), int(step), int(stream)])


class DatasetSampler:
    """Draw ``(dataset_idx, row_idx)`` for a step: uniform by dataset, not by row.

    Every dataset gets the same share of a batch whatever its size (a 40-spectrum dataset
    as much as a 15,000-spectrum one), unless ``weights`` say otherwise; rows are uniform
    within a dataset. The draw of a step is a pure function of ``(seed, rank, step)``.

    Parameters
    ----------
    sizes:
        Rows per dataset.
    synthetic:
        Per dataset, True when it is synthetic.
    p_synth:
        Probability that a slot holds a synthetic spectrum (ignored, with one warning, when
        there is no synthetic dataset; 1 when there is no real one).
    weights:
        Optional relative weights of the real datasets (synthetic entries are ignored).
    seed:
        Seed of the stream of draws.
    rank:
        Data-parallel rank: each rank draws its own stream (``step_rng(seed, rank, step)``).
    world_size:
        Number of data-parallel ranks (recorded; the draw depends on ``rank`` only).
    curriculum_steps:
        During the first ``curriculum_steps`` steps the real datasets are weighted by
        ``log(n_rows)`` (larger datasets first), blending linearly into ``weights``.
    lengths:
        Points per spectrum of each dataset (after any ``max_points`` cap); enables length buckets.
    token_budget:
        With ``lengths``: batch size ``min(max_batch, token_budget // longest length in the bucket)``.
    max_batch:
        The most spectra in a batch.

    Examples
    --------
    >>> sampler = DatasetSampler([5000, 40], synthetic=[False, False], p_synth=0.0, max_batch=8)
    >>> dataset_idx, row_idx = sampler.draw(step=0)  # (8,) int64 each: a dataset, a row in it
    >>> sampler.dataset_probabilities(step=0).tolist()
    [0.5, 0.5]
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        synthetic: Sequence[bool],
        p_synth: float,
        weights: Sequence[float] | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        curriculum_steps: int = 0,
        lengths: Sequence[int] | None = None,
        token_budget: int | None = None,
        max_batch: int,
    ):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.synthetic = np.asarray(synthetic, dtype=bool)
        n = len(self.sizes)
        if n == 0 or self.synthetic.shape != (n,) or (self.sizes < 1).any():
            raise ValueError("need at least one dataset, one `synthetic` flag per dataset and sizes >= 1")
        if max_batch < 1 or not 0.0 <= p_synth <= 1.0:
            raise ValueError(f"need max_batch >= 1 and 0 <= p_synth <= 1, got {max_batch}, {p_synth}")
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.max_batch, self.token_budget = int(max_batch), token_budget
        self.curriculum_steps = int(curriculum_steps)
        if not self.synthetic.any() and p_synth > 0:
            warnings.warn(
                "p_synth > 0 but there is no synthetic dataset: sampling real spectra only", stacklevel=2
            )
        self.p_synth = 0.0 if not self.synthetic.any() else 1.0 if self.synthetic.all() else float(p_synth)
        base = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if base.shape != (n,) or (base < 0).any():
            raise ValueError(f"weights must be {n} non-negative numbers")
        self.base_weights = np.where(self.synthetic, 0.0, base)
        self.clean_weights = np.where(self.synthetic, 0.0, np.log(np.maximum(self.sizes, 2)))
        if not self.synthetic.all() and self.base_weights.sum() <= 0:
            raise ValueError("the real datasets' weights sum to 0")
        self.lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
        if self.lengths is not None and self.lengths.shape != (n,):
            raise ValueError(f"lengths must have {n} entries")
        # bucket of each dataset (one bucket when no lengths are known)
        self.bucket = (
            np.zeros(n, dtype=np.int64)
            if self.lengths is None
            else np.searchsorted(BUCKET_EDGES, self.lengths)
        )
        self.buckets = np.unique(self.bucket)
        self.bucket_max_len = {
            int(b): (None if self.lengths is None else int(self.lengths[self.bucket == b].max()))
            for b in self.buckets
        }

    def dataset_probabilities(self, step: int) -> np.ndarray:
        """``(n_datasets,)`` marginal probability that a slot of ``step`` holds each dataset."""
        real = self.base_weights / max(self.base_weights.sum(), 1e-300)
        if self.curriculum_steps > 0 and step < self.curriculum_steps:
            t = step / self.curriculum_steps
            clean = self.clean_weights / max(self.clean_weights.sum(), 1e-300)
            real = (1 - t) * clean + t * real
        synth = self.synthetic / max(self.synthetic.sum(), 1)
        return (1 - self.p_synth) * real + self.p_synth * synth

    def batch_size(self, bucket: int) -> int:
        """Spectra in a batch of ``bucket``: the token budget over its longest length, at most ``max_batch``."""
        longest = self.bucket_max_len[int(bucket)]
        if self.token_budget is None or longest is None:
            return self.max_batch
        return int(max(1, min(self.max_batch, self.token_budget // longest)))

    def draw(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(dataset_idx (B,), row_idx (B,))`` int64 for ``step``; a pure function of (seed, rank, step)."""
        rng = step_rng(self.seed, self.rank, step)
        probs = self.dataset_probabilities(step)
        bucket_mass = np.array([probs[self.bucket == b].sum() for b in self.buckets])
        bucket = self.buckets[rng.choice(len(self.buckets), p=bucket_mass / bucket_mass.sum())]
        within = np.where(self.bucket == bucket, probs, 0.0)
        size = self.batch_size(bucket)
        dataset_idx = rng.choice(len(within), size=size, p=within / within.sum())
        row_idx = (rng.random(size) * self.sizes[dataset_idx]).astype(np.int64)
        return dataset_idx.astype(np.int64), np.minimum(row_idx, self.sizes[dataset_idx] - 1)
