"""The MiniRocket control: random convolutional features into the same heads as the embedding.

MiniRocket (Dempster et al. 2021; aeon's ``MiniRocket``) is the strongest *untrained*
time-series representation: 84 fixed kernels at many dilations, each output summarised by the
proportion of positive values against biases drawn from quantiles of the convolution outputs
of the rows it is fitted on. That fit is unsupervised (no target), so it plays the part the
pretraining plays for the embedding, and the control answers: does the pretrained encoder beat
a good representation that nobody trained?

Protocol (one dataset, its spectra on their native grid, ``(n, L)``):

- :func:`fit_minirocket` fits aeon's ``MiniRocket(random_state=seed)`` on **all** the rows of
  the dataset (train and test parts together, never a target) — as the encoder, which saw the
  spectra and not the targets before any split, and as the SNV + SG1 control, which needs no fit
  at all (each spectrum alone). The transform then maps any ``(m, L)`` spectra on the same grid
  to ``(m, F)`` features (F = 9,996 with the default 10,000 kernels), float64.
- The features go into the heads as they are: every head standardises on its own train rows
  (ridge, kernel ridge: ``StandardScaler``; PLS: ``scale=True``), as for the embedding and the
  SNV + SG1 features; standardising here on all rows would only add the test rows' statistics.
- Transfer (one group of instruments on one grid): one fit on the rows of every instrument of
  the group (:meth:`MiniRocketControl.group_features`), so that A's and B's features come from
  the same kernels and biases.
- Robustness: the transform fitted on the clean rows maps each perturbed copy of the test rows
  (:meth:`MiniRocketControl.transform`); nothing is refitted.
- The control does not depend on the checkpoint, and its heads on ~10,000 features are the
  slow part: :meth:`MiniRocketControl.run_heads`, :meth:`~MiniRocketControl.transfer` and
  :meth:`~MiniRocketControl.robustness` keep their records in the evaluation's baseline cache
  (keyed by a hash of the features, or of the datasets' content hashes, the split and the
  settings), so a study fits them once for all its checkpoints.

aeon is an optional dependency (``pip install 'vitnirs[eval]'``); :func:`require_aeon` says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vitnirs.errors import ConfigError
from vitnirs.evaluate.baselines import split_key
from vitnirs.evaluate.downstream import run_heads

__all__ = [
    "AEON_HELP",
    "MiniRocketControl",
    "aeon_available",
    "fit_minirocket",
    "minirocket_features",
    "require_aeon",
]

AEON_HELP = (
    "the MiniRocket control (evaluation.minirocket_control) needs aeon: pip install 'vitnirs[eval]' "
    "(or set evaluation.minirocket_control=false)"
)


def aeon_available() -> bool:
    """Whether aeon's MiniRocket can be imported here."""
    try:
        from aeon.transformations.collection.convolution_based import MiniRocket  # noqa: F401
    except ImportError:
        return False
    return True


def require_aeon() -> None:
    """Raise :class:`~vitnirs.errors.ConfigError` naming ``pip install 'vitnirs[eval]'`` when aeon is absent."""
    if not aeon_available():
        raise ConfigError(AEON_HELP)


def fit_minirocket(
    X: np.ndarray, *, seed: int, n_kernels: int = 10_000
) -> Callable[[np.ndarray], np.ndarray]:
    """Fit aeon's MiniRocket on the rows of ``X`` (unsupervised) and return its transform.

    Parameters
    ----------
    X : ``(n, L)`` spectra on one grid (L ≥ 9, MiniRocket's shortest series).
    seed : MiniRocket's ``random_state`` (the evaluation's ``training.seed``).
    n_kernels : aeon's ``n_kernels`` (rounded down by aeon to a multiple of 84).

    Returns
    -------
    callable
        ``(m, L)`` spectra on the same grid → ``(m, F)`` float64 features.
    """
    from aeon.transformations.collection.convolution_based import MiniRocket

    X = _rows(X)
    transform = MiniRocket(n_kernels=n_kernels, random_state=seed).fit(X)

    def features(spectra: np.ndarray) -> np.ndarray:
        S = _rows(spectra)
        if S.shape[1] != X.shape[1]:
            raise ValueError(f"MiniRocket was fitted on {X.shape[1]} points; got spectra of {S.shape[1]}")
        return np.asarray(transform.transform(S), dtype=np.float64)

    return features


def minirocket_features(X: np.ndarray, *, seed: int, n_kernels: int = 10_000) -> np.ndarray:
    """``(n, L)`` spectra → ``(n, F)`` MiniRocket features, fitted on these rows (float64)."""
    return fit_minirocket(X, seed=seed, n_kernels=n_kernels)(X)


def _rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] < 9:
        raise ValueError(f"MiniRocket needs (n, L) spectra with L >= 9; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("MiniRocket needs finite spectra (no NaN)")
    return X


class MiniRocketControl:
    """MiniRocket features of a store's datasets, each fitted once and kept.

    ``store``: anything with ``values(name)`` → ``(n, L)`` spectra (a ``PreparedStore``);
    ``cache``: a :class:`~vitnirs.evaluate.baselines.BaselineCache` for :meth:`run_heads` (None:
    no cache). Raises :class:`~vitnirs.errors.ConfigError` when aeon is absent (:data:`AEON_HELP`).
    """

    def __init__(self, store: Any, *, seed: int, n_kernels: int = 10_000, cache: Any = None):
        require_aeon()
        self.store, self.seed, self.n_kernels, self.cache = store, seed, n_kernels, cache
        self._transforms: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        self._features: dict[str, np.ndarray] = {}

    def _spectra(self, name: str) -> np.ndarray:
        return np.asarray(self.store.values(name), dtype=np.float64)

    def transform(self, name: str) -> Callable[[np.ndarray], np.ndarray]:
        """The transform fitted on every row of dataset ``name`` (for its perturbed copies)."""
        if name not in self._transforms:
            self._transforms[name] = fit_minirocket(
                self._spectra(name), seed=self.seed, n_kernels=self.n_kernels
            )
        return self._transforms[name]

    def features(self, name: str) -> np.ndarray:
        """``(n, F)`` features of dataset ``name`` (fitted on its rows): the within-dataset control."""
        if name not in self._features:
            self._features[name] = self.transform(name)(self._spectra(name))
        return self._features[name]

    def __call__(self, name: str) -> np.ndarray:
        return self.features(name)

    def group_features(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """``{name: (n_i, F)}``: one fit on the rows of every dataset of ``names`` (one grid), for transfer."""
        blocks = [self._spectra(n) for n in names]
        transform = fit_minirocket(np.concatenate(blocks), seed=self.seed, n_kernels=self.n_kernels)
        return {n: transform(b) for n, b in zip(names, blocks, strict=True)}

    def run_heads(
        self, Z: np.ndarray, y: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray, **kwargs: Any
    ) -> list[dict]:
        """:func:`vitnirs.evaluate.downstream.run_heads` (same arguments), each head's record kept in
        the cache under a hash of ``Z``, ``y``, the split, the inner-CV groups, the task and the seed."""
        methods = list(kwargs.pop("methods", None) or [])
        if self.cache is None or not methods:
            return run_heads(Z, y, train_idx, test_idx, methods=methods or None, **kwargs)
        h = hashlib.sha256()
        for part in (Z, np.asarray(y).astype(str), train_idx, test_idx, kwargs.get("groups")):
            h.update(b"|" if part is None else np.ascontiguousarray(part).tobytes())
        h.update(repr((kwargs.get("task", "regression"), kwargs.get("seed", 0))).encode())
        keys = {m: f"minirocket_heads|{h.hexdigest()[:24]}|{m}" for m in methods}
        missing, fresh = [m for m in methods if keys[m] not in self.cache], {}
        if missing:
            for rec in run_heads(Z, y, train_idx, test_idx, methods=missing, **kwargs):
                fresh[rec["method"]] = rec
                if rec.get("metrics") is not None:  # a skipped head (TabPFN absent) is asked again
                    self.cache.put(keys[rec["method"]], rec)
            self.cache.save()
        return [fresh.get(m) or self.cache.get(keys[m]) for m in methods]

    def transfer(self, groups: dict[str, list[str]], **kwargs: Any) -> list[dict]:
        """:func:`vitnirs.evaluate.transfer.transfer_pairs` of one group (``groups``: ``{group:
        names}``, one grid) on :meth:`group_features`, no baselines; records named ``embedding+…``
        as that function names them. ``kwargs``: its ``heads``, ``seed``, ``k_values``, ``aom_bank``."""
        from vitnirs.evaluate.transfer import transfer_pairs

        names = [n for ns in groups.values() for n in ns]
        parts = [groups, kwargs]
        return self._cached("transfer", names, parts, lambda: transfer_pairs(
            self.store, None, groups=groups, baselines=(), embeddings=self.group_features(names), **kwargs
        ))  # fmt: skip

    def robustness(self, dataset: str, target: str, split: Any, **kwargs: Any) -> list[dict]:
        """:func:`vitnirs.evaluate.robustness.robustness_curves` of the heads on this control (the
        transform fitted on the clean rows maps each perturbed copy of the test rows), no baselines;
        records named ``embedding+<head>``. ``kwargs``: its ``heads``, ``seed``, ``severities``."""
        from vitnirs.evaluate.robustness import robustness_curves

        kwargs.pop("info", None)  # a network's; nothing of it is used here
        parts = [dataset, target, split_key(split), kwargs]
        return self._cached("robustness", [dataset], parts, lambda: robustness_curves(
            self.store, None, dataset, target, split, baselines=(), features=self.transform(dataset),
            embeddings={dataset: self.features(dataset)}, **kwargs,
        ))  # fmt: skip

    def _cached(
        self, what: str, names: list[str], parts: list, compute: Callable[[], list[dict]]
    ) -> list[dict]:
        """``compute()``, kept in the cache under a hash of ``parts``, the datasets' content hashes, the
        seed, the kernels and aeon's version; computed afresh when a dataset has no content hash."""
        import aeon

        hashes = [(getattr(self.store, "records", {}).get(n) or {}).get("content_hash") for n in names]
        if self.cache is None or None in hashes:
            return compute()
        doc = json.dumps(
            [parts, hashes, self.seed, self.n_kernels, aeon.__version__], sort_keys=True, default=str
        )
        key = f"minirocket_{what}|{hashlib.sha256(doc.encode()).hexdigest()[:24]}"
        if key not in self.cache:
            self.cache.put(key, {"records": compute()})
            self.cache.save()
        return self.cache.get(key)["records"]
