"""Nuisance projection at the readout: EPO (Roger et al. 2003) on the frozen embedding.

External parameter orthogonalisation removes from the data the subspace a known nuisance moves
it along. Classical EPO does it on spectra; here it is done on the embedding, on top of any
checkpoint, with no training and no target:

1. each spectrum of a dataset is rendered with two nuisances (:func:`nuisance_copies`): a
   baseline drift (offset + linear tilt) and a scatter (gain + offset), the ``drift`` and
   ``scatter`` kinds of :func:`vitnirs.evaluate.robustness.perturb` at :data:`NUISANCE`;
2. the clean and the nuisance copies are embedded with the same encoder, and the differences
   ``D = Z_nuisance - Z_clean`` ``(2n, D)`` (both copies stacked) give the directions: the top-k
   right singular vectors ``V`` ``(D, k)`` of ``D`` (:func:`nuisance_directions`), *not* centred —
   a constant offset of the embedding is a direction to remove;
3. every embedding of that dataset, train and test rows alike, is projected onto the orthogonal
   complement, ``Z - (Z V) Vᵀ`` (:func:`project_out`).

The directions are fitted on all the rows of a dataset (never a target; MiniRocket is fitted on
a dataset's rows the same way), on clean spectra only; a perturbed copy of test rows (the
robustness curves) is projected with the clean rows' ``V``. For cross-instrument transfer one
``V`` is fitted on the union of the instrument group's rows, so that the model fitted on A and
the rows of B it predicts live in the same projected space (:meth:`NuisanceProjection.projected`).

The nuisance draws are seeded by ``np.random.SeedSequence([seed, EPO_STREAM, kind])``: a stream
independent of the robustness perturbations (seeded by ``seed`` itself).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from vitnirs.evaluate.robustness import perturb

__all__ = [
    "EPO_STREAM",
    "NUISANCE",
    "NuisanceProjection",
    "nuisance_copies",
    "nuisance_directions",
    "nuisance_record",
    "nuisance_seed",
    "project_out",
    "removed_shares",
]

# Severities of robustness.perturb: drift 0.1 AU (offset up to ±0.1 AU, plus a tilt reaching ±0.1 AU
# at the grid edge) and scatter 0.1 (gain in 1 ± 0.1, offset ±0.1 × mean |X|): the third non-zero
# step of both robustness ladders, a gross but realistic instrument / sample-presentation change.
NUISANCE: dict[str, float] = {"drift": 0.1, "scatter": 0.1}
EPO_STREAM = 0x45504F  # "EPO": the seed stream of the nuisance draws (not the robustness ones)
RTOL = 1e-6  # singular values of D below RTOL × ‖Z_clean‖_F are float32 rounding, not directions


def nuisance_seed(seed: int, kind: str) -> int:
    """The seed of one nuisance kind's draws: independent of ``seed`` as the robustness curves use it."""
    index = list(NUISANCE).index(kind)
    return int(np.random.SeedSequence([int(seed), EPO_STREAM, index]).generate_state(1)[0])


def nuisance_copies(
    X: np.ndarray, wavelengths_nm: np.ndarray, *, seed: int, nuisance: dict[str, float] | None = None
) -> dict[str, np.ndarray]:
    """Each spectrum rendered with each nuisance: ``{kind: (n, L) float64}``.

    Parameters
    ----------
    X : ``(n, L)`` absorbance spectra.
    wavelengths_nm : ``(L,)`` their grid.
    seed : the evaluation's seed; each kind draws from :func:`nuisance_seed` of it.
    nuisance : ``{kind: severity}`` of :func:`~vitnirs.evaluate.robustness.perturb`
        (default :data:`NUISANCE`, drift and scatter).
    """
    levels = NUISANCE if nuisance is None else nuisance
    return {
        kind: perturb(X, wavelengths_nm, kind, s, seed=nuisance_seed(seed, kind))
        for kind, s in levels.items()
    }


def nuisance_directions(z_clean: np.ndarray, z_nuisance: np.ndarray, k: int) -> np.ndarray:
    """The top-``k`` right singular vectors of ``D = z_nuisance - z_clean`` (not centred).

    Parameters
    ----------
    z_clean, z_nuisance : ``(n, D)`` embeddings, row ``i`` of both the same sample (clean; with a
        nuisance).
    k : the number of directions asked for (``>= 0``).

    Returns
    -------
    np.ndarray
        ``(D, k')`` float64 orthonormal columns, ``k' = min(k, rank(D))``: the singular values
        below ``RTOL × ‖z_clean‖_F`` (float32 rounding of an encoder that ignores the nuisance)
        are not directions, so ``k'`` may be smaller than ``k`` (``0``: nothing to remove).
    """
    z_clean = np.asarray(z_clean, dtype=np.float64)
    z_nuisance = np.asarray(z_nuisance, dtype=np.float64)
    if z_clean.ndim != 2 or z_clean.shape != z_nuisance.shape:
        raise ValueError(
            f"z_clean and z_nuisance must be the same (n, D); got {z_clean.shape}, {z_nuisance.shape}"
        )
    if k < 0:
        raise ValueError(f"k must be >= 0; got {k}")
    dim = z_clean.shape[1]
    if k == 0 or len(z_clean) == 0:
        return np.zeros((dim, 0))
    _, s, vt = np.linalg.svd(z_nuisance - z_clean, full_matrices=False)  # vt [min(n, D), D]
    rank = int(np.sum(s > RTOL * max(np.linalg.norm(z_clean), np.finfo(np.float64).tiny)))
    return vt[: min(k, rank)].T.copy()


def project_out(z: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``z - (z V) Vᵀ``: ``z`` ``(n, D)`` on the orthogonal complement of ``V``'s ``(D, k)`` orthonormal
    columns → ``(n, D)`` float64 (``k = 0``: a float64 copy of ``z``)."""
    z = np.asarray(z, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    if V.ndim != 2 or V.shape[0] != z.shape[-1]:
        raise ValueError(f"V must be (D, k) with D = {z.shape[-1]}; got {V.shape}")
    return z - (z @ V) @ V.T


def removed_shares(z_clean: np.ndarray, z_nuisance: np.ndarray, V: np.ndarray) -> dict[str, float]:
    """What a projection removes: ``nuisance_share``, the share of ``‖D‖²_F`` in span(V) (1 = every
    nuisance move is gone), and ``variance_share``, the share of the centred clean embedding's total
    variance in span(V) (what the heads lose with it)."""
    z_clean = np.asarray(z_clean, dtype=np.float64)
    D = np.asarray(z_nuisance, dtype=np.float64) - z_clean
    Zc = z_clean - z_clean.mean(axis=0)
    return {
        "nuisance_share": _share(D, V),
        "variance_share": _share(Zc, V),
    }


def _share(A: np.ndarray, V: np.ndarray) -> float:
    total = float(np.sum(A**2))
    return round(float(np.sum((A @ V) ** 2)) / total, 6) if total > 0 else 0.0


class NuisanceProjection:
    """EPO at the readout for one encoder: per dataset (or group of datasets) the nuisance
    directions, fitted once, and the projected embeddings.

    Parameters
    ----------
    model : the encoder (a :class:`~vitnirs.model.mae.SpectralMAE`), frozen.
    info : its :class:`~vitnirs.checkpoint.CheckpointInfo` (readout, point cap, metadata vocabulary).
    store : the :class:`~vitnirs.data.store.PreparedStore`.
    clean : ``name -> (n, D)`` the clean embedding of a dataset (the evaluation's cache).
    k : directions removed per dataset (``>= 1``).
    seed : the evaluation's seed (:func:`nuisance_seed`).

    Calling it, ``projection(name)``, gives the dataset's ``(n, D)`` float64 embedding projected
    with its own directions: a feature source as the evaluation's heads take them.
    """

    def __init__(
        self, model: Any, info: Any, store: Any, clean: Callable[[str], np.ndarray], *, k: int, seed: int
    ) -> None:
        self.model, self.info, self.store, self.clean = model, info, store, clean
        self.k, self.seed = int(k), int(seed)
        self._fitted: dict[tuple[str, ...], np.ndarray] = {}  # names -> V (D, k')
        self._projected: dict[str, np.ndarray] = {}  # name -> (n, D), with its own V
        self.stats: dict[tuple[str, ...], dict[str, Any]] = {}  # names -> what was removed

    def _meta(self, name: str) -> np.ndarray | None:
        from vitnirs.embedding import meta_ids

        vocab = self.info.meta_vocab if self.info is not None else {}
        return meta_ids(self.store, name, vocab) if vocab else None

    def _embed(self, name: str, X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(m, L)`` spectra of dataset ``name`` (its rows ``rows``; all when None) → ``(m, D)``."""
        from vitnirs.embedding import embed_spectra

        meta = self._meta(name)
        if meta is not None and rows is not None:
            meta = meta[rows]
        if meta is not None and len(meta) != len(X):  # several copies of the rows stacked
            meta = np.tile(meta, (len(X) // len(meta), 1))
        w = np.asarray(self.store.wavelengths_nm(name), dtype=np.float64)
        return np.asarray(embed_spectra(self.model, X, w, meta=meta, info=self.info), dtype=np.float64)

    def directions(self, names: Sequence[str]) -> np.ndarray:
        """``(D, k')`` directions fitted on every row of ``names`` (one dataset, or a group's union)."""
        key = tuple(names)
        if key not in self._fitted:
            clean, moved = [], []
            for name in key:
                X = np.asarray(self.store.values(name), dtype=np.float64)
                w = np.asarray(self.store.wavelengths_nm(name), dtype=np.float64)
                copies = nuisance_copies(X, w, seed=self.seed)  # {kind: (n, L)}
                Z = np.asarray(self.clean(name), dtype=np.float64)  # [n, D]
                clean += [Z] * len(copies)
                moved.append(self._embed(name, np.concatenate(list(copies.values()))))  # [kinds·n, D]
            z_clean, z_moved = np.concatenate(clean), np.concatenate(moved)
            V = nuisance_directions(z_clean, z_moved, self.k)
            self._fitted[key] = V
            self.stats[key] = {"directions": V.shape[1], "pairs": len(z_clean)} | removed_shares(
                z_clean, z_moved, V
            )
        return self._fitted[key]

    def __call__(self, name: str) -> np.ndarray:
        """Dataset ``name``'s ``(n, D)`` embedding projected with its own directions."""
        if name not in self._projected:
            self._projected[name] = project_out(self.clean(name), self.directions([name]))
        return self._projected[name]

    def projected(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """``{name: (n, D)}``, every dataset of ``names`` projected with the directions of their union."""
        V = self.directions(names)
        return {name: project_out(self.clean(name), V) for name in names}

    def features(self, name: str, rows: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``(m, L)`` spectra of the rows ``rows`` of ``name`` (a perturbed copy) → their ``(m, D)``
        embedding projected with the clean dataset's directions (robustness: nothing refitted)."""
        V = self.directions([name])
        return lambda X: project_out(self._embed(name, X, np.asarray(rows)), V)


def nuisance_record(k: int, projections: Mapping[str, NuisanceProjection]) -> dict[str, Any]:
    """``metrics.json``'s ``nuisance_projection``: what was done and what it removed.

    ``{"k", "nuisance" ({kind: severity}), "seeds" ({kind: seed}), "fitted_on", "datasets": {dataset:
    {encoder: stats}}, "groups": {"a+b": {encoder: stats}}}`` — ``encoder`` is ``embedding`` or
    ``untrained_seed<s>``; ``stats`` (:func:`removed_shares`) has ``directions`` (``k'``), ``pairs``
    (rows of ``D``), ``nuisance_share`` and ``variance_share``; ``groups`` are the transfer groups.
    """
    some = next(iter(projections.values()), None)
    seed = some.seed if some is not None else 0
    record: dict[str, Any] = {
        "k": int(k),
        "nuisance": dict(NUISANCE),
        "seeds": {kind: nuisance_seed(seed, kind) for kind in NUISANCE},
        "fitted_on": "every row of the dataset, clean spectra, no target (transfer: the union of the group's rows)",
        "datasets": {},
        "groups": {},
    }
    for encoder, projection in projections.items():
        for names, stats in projection.stats.items():
            where = record["datasets" if len(names) == 1 else "groups"]
            where.setdefault("+".join(names), {})[encoder] = stats
    return record
