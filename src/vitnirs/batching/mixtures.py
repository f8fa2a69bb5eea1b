"""Mixtures of real spectra: new plausible samples of a matrix, with labels no person wrote.

Absorbance is linear in concentration (Beer–Lambert), so a convex combination of real spectra of
one dataset is a plausible spectrum of that matrix: ``x = Σ_k w_k x_k`` with Dirichlet weights
``w`` over K = 2 … ``max_components`` base spectra. A *group* is ``group`` mixtures of the same K
base spectra of one dataset (one few-shot task: the weights are its labels). Mixing happens on the
raw rows, before the nuisance views (:mod:`vitnirs.batching.augment`) render each mixture with
its own draws; the cached AsLS baseline is mixed with the same weights (AsLS is nearly linear in
its input). Only numpy and torch here.

``training_strategy.p_mix`` is the share of a batch's slots given to mixtures: the last
``n_groups × group`` slots of the sampled batch are replaced, each group taking the dataset of a
real spectrum drawn in the same step (so length buckets keep their padding small).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vitnirs.batching.collate import RawRows
from vitnirs.batching.contract import PAD_WAVELENGTH

__all__ = ["MAX_COMPONENTS", "MixPlan", "cat_rows", "mix_rows", "plan_mixtures"]

MAX_COMPONENTS = 4  # the width of ``mix_weights``


@dataclass(frozen=True)
class MixPlan:
    """The mixtures of one step: G groups of M mixtures, each of K ≤ ``MAX_COMPONENTS`` base rows.

    dataset, rows: int64 (G·MAX_COMPONENTS,) the base spectra, group-major (a group with
    K < MAX_COMPONENTS repeats its first row, with weight 0); weights: float32 (G, M,
    MAX_COMPONENTS), rows sum to 1, zero after K.
    """

    dataset: np.ndarray
    rows: np.ndarray
    weights: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.weights.shape[0] * self.weights.shape[1])


def plan_mixtures(
    dataset_idx: np.ndarray,
    sizes: np.ndarray,
    synthetic: np.ndarray,
    *,
    p_mix: float,
    group: int,
    max_components: int,
    rng: np.random.Generator,
) -> MixPlan | None:
    """The mixtures of a batch whose sampled datasets are ``dataset_idx (B,)``; None when there are
    none (``p_mix`` 0, a batch smaller than a group, or no real spectrum drawn)."""
    n_groups = min(int(round(p_mix * len(dataset_idx) / group)), len(dataset_idx) // group)
    real = dataset_idx[~synthetic[dataset_idx]]
    if n_groups < 1 or not len(real):
        return None
    datasets = rng.choice(real, size=n_groups)
    dataset = np.repeat(datasets, MAX_COMPONENTS)
    rows = np.zeros(n_groups * MAX_COMPONENTS, dtype=np.int64)
    weights = np.zeros((n_groups, group, MAX_COMPONENTS), dtype=np.float32)
    for g, d in enumerate(datasets):  # a loop over the few groups of a step
        k = int(min(rng.integers(2, max_components + 1), sizes[d]))
        base = rng.choice(sizes[d], size=k, replace=False)
        rows[g * MAX_COMPONENTS : (g + 1) * MAX_COMPONENTS] = np.concatenate(
            [base, np.repeat(base[:1], MAX_COMPONENTS - k)]
        )
        weights[g, :, :k] = rng.dirichlet(np.ones(k), size=group)
    return MixPlan(dataset.astype(np.int64), rows, weights)


def mix_rows(base: RawRows, weights: np.ndarray | torch.Tensor) -> RawRows:
    """Base rows ``(G·K, L)`` (group-major, one dataset and grid per group) mixed with ``weights
    (G, M, K)`` → ``(G·M, L)`` rows: values and baselines ``Σ_k w_k x_k``; grid, validity,
    dataset and metadata of the group's first base row."""
    w = torch.as_tensor(weights, dtype=torch.float32)
    G, M, K = w.shape

    def mixed(x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("gmk,gkl->gml", w, x.reshape(G, K, -1)).reshape(G * M, -1)

    first = torch.arange(G).repeat_interleave(M) * K  # [G*M] each mixture's first base row
    return RawRows(
        values=mixed(base.values),
        baseline=mixed(base.baseline),
        wavelengths=base.wavelengths[first],
        valid=base.valid[first],
        dataset_id=base.dataset_id[first],
        is_synthetic=torch.zeros(G * M, dtype=torch.bool),
        meta=base.meta[first],
    )


def cat_rows(a: RawRows, b: RawRows) -> RawRows:
    """Two sets of raw rows as one, padded to the wider (values 0, wavelengths ``PAD_WAVELENGTH``)."""
    width = max(a.values.shape[1], b.values.shape[1])

    def cat(x: torch.Tensor, y: torch.Tensor, fill: float | bool) -> torch.Tensor:
        pad = lambda t: torch.cat([t, t.new_full((t.shape[0], width - t.shape[1]), fill)], 1)  # noqa: E731
        return torch.cat([pad(x), pad(y)])

    return RawRows(
        values=cat(a.values, b.values, 0.0),
        baseline=cat(a.baseline, b.baseline, 0.0),
        wavelengths=cat(a.wavelengths, b.wavelengths, PAD_WAVELENGTH),
        valid=cat(a.valid, b.valid, False),
        dataset_id=torch.cat([a.dataset_id, b.dataset_id]),
        is_synthetic=torch.cat([a.is_synthetic, b.is_synthetic]),
        meta=torch.cat([a.meta, b.meta]),
    )
