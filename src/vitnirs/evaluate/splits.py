"""The split protocol: one set of train/test splits per dataset, shared by every method.

Fairness rule (issue 5): the classical baselines and every head on the embedding are scored
on *the same* splits, and no test row is used for any choice. :func:`make_splits` is the
only place that decides what is train and what is test.

Protocol, in order of preference:

1. **native** — the dataset's own ``partition`` column (``cal`` → train, ``test`` → test;
   ``transfer`` and any other value are in neither).
2. otherwise **kennard_stone** 80/20 (nirs4all ``KennardStoneSplitter``), or **spxy**
   (``SPXYSplitter``, needs ``y``) when asked; both are O(n³) in nirs4all, so above
   ``large`` samples a seeded **random** 80/20 split is used instead and its ``note`` says so.
3. plus ``n_repeats`` seeded random 80/20 splits (``random_rep_0`` …) when the dataset has
   fewer than ``small`` usable rows, so tables can show mean ± std.

A ``fold`` column is *not* turned into an outer "each fold held out once" protocol (kept
simple on purpose): the outer split is chosen as above and the ``fold`` values of the train
rows are passed on as ``groups`` for the inner model selection (GroupKFold).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Split", "make_splits", "class_targets", "regression_targets", "usable_rows"]


@dataclass
class Split:
    """One outer train/test split.

    Attributes
    ----------
    name : str
        ``"native"``, ``"kennard_stone"``, ``"spxy"``, ``"random"`` or ``"random_rep_<k>"``.
    train, test : np.ndarray
        Integer row indices into the *original* rows of the dataset.
    groups : np.ndarray or None
        CV groups for inner model selection on the train part (the dataset's ``fold``
        column restricted to ``train``, aligned with ``train``), else None.
    note : str
        Human-readable description of how the split was made.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    groups: np.ndarray | None = None
    note: str = ""


def usable_rows(y: np.ndarray | None, n: int) -> np.ndarray:
    """Indices of rows whose target is present (all rows when ``y`` is None)."""
    if y is None:
        return np.arange(n)
    return np.flatnonzero(~pd.isna(pd.Series(np.asarray(y, dtype=object))).to_numpy())


def _groups(metadata: pd.DataFrame, train: np.ndarray) -> np.ndarray | None:
    if "fold" not in metadata.columns:
        return None
    g = metadata["fold"].to_numpy()[train]
    return None if pd.isna(pd.Series(g)).any() or len(np.unique(g)) < 2 else g


def _random(rows: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows)
    n_test = max(1, int(round(test_size * len(rows))))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _ks(
    X: np.ndarray, y: np.ndarray | None, rows: np.ndarray, test_size: float, method: str
) -> tuple[np.ndarray, np.ndarray]:
    from nirs4all.operators.splitters import KennardStoneSplitter, SPXYSplitter

    Xr = np.asarray(X[rows], dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "spxy":
            if y is None:
                raise ValueError("method='spxy' needs y")
            yr = np.asarray(y[rows], dtype=np.float64)
            tr, te = next(SPXYSplitter(test_size=test_size).split(Xr, yr))
        else:
            tr, te = next(KennardStoneSplitter(test_size=test_size).split(Xr))
    return np.sort(rows[np.asarray(tr)]), np.sort(rows[np.asarray(te)])


def make_splits(
    metadata: pd.DataFrame,
    X: np.ndarray,
    y: np.ndarray | None,
    *,
    seed: int = 0,
    method: str = "kennard_stone",
    n_repeats: int = 5,
    small: int = 200,
    large: int = 2000,
    test_size: float = 0.2,
) -> list[Split]:
    """The outer splits of one dataset/target (see the module docstring for the protocol).

    Parameters
    ----------
    metadata : pd.DataFrame
        One row per spectrum; ``partition`` (cal/test/transfer) and ``fold`` are used.
    X : np.ndarray
        ``(n, L)`` spectra (used by Kennard–Stone / SPXY).
    y : np.ndarray or None
        Target; rows where it is missing (NaN/None) are dropped *before* splitting. The
        returned indices still refer to the original rows.
    seed : int
        Seed of the random splits (the first random repeat uses ``seed``, then ``seed+1``…).
    method : {"kennard_stone", "spxy"}
        Outer split when there is no native partition.
    n_repeats, small : int
        ``n_repeats`` extra random splits when fewer than ``small`` usable rows.
    large : int
        Above this many usable rows KS/SPXY are replaced by a random split.
    test_size : float
        Test fraction of the non-native splits.

    Returns
    -------
    list of Split
        The primary split first, then the random repeats.
    """
    if method not in ("kennard_stone", "spxy"):
        raise ValueError(f"unknown split method {method!r}; use 'kennard_stone' or 'spxy'")
    n = len(X)
    if len(metadata) != n:
        raise ValueError(f"metadata has {len(metadata)} rows but X has {n}")
    rows = usable_rows(y, n)
    n_dropped = n - len(rows)
    dropped = f"; {n_dropped} rows without target dropped" if n_dropped else ""
    splits: list[Split] = []
    part = metadata["partition"].astype(str).str.lower().to_numpy() if "partition" in metadata else None
    if part is not None and {"cal", "test"} <= set(part[rows]):
        train, test = rows[part[rows] == "cal"], rows[part[rows] == "test"]
        pool = np.concatenate([train, test])
        n_other = len(rows) - len(pool)
        note = "native partition: cal → train, test → test"
        note += f" ({n_other} transfer/other rows excluded)" if n_other else ""
        splits.append(Split("native", train, test, _groups(metadata, train), note + dropped))
    else:
        pool = rows
        if len(rows) > large:
            train, test = _random(rows, test_size, seed)
            note = (
                f"random {1 - test_size:.0%}/{test_size:.0%} split (seed {seed}): {len(rows)} samples > "
                f"{large}, Kennard–Stone/SPXY (O(n³) in nirs4all) skipped"
            )
            splits.append(Split("random", train, test, _groups(metadata, train), note + dropped))
        else:
            train, test = _ks(X, y, rows, test_size, method)
            label = "Kennard–Stone" if method == "kennard_stone" else "SPXY"
            note = f"{label} {1 - test_size:.0%}/{test_size:.0%} split (nirs4all)"
            splits.append(Split(method, train, test, _groups(metadata, train), note + dropped))
    if len(pool) < small:
        for k in range(n_repeats):
            train, test = _random(pool, test_size, seed + k)
            note = f"random {1 - test_size:.0%}/{test_size:.0%} repeat {k} (seed {seed + k}), n < {small}"
            splits.append(Split(f"random_rep_{k}", train, test, _groups(metadata, train), note + dropped))
    return splits


def _is_numeric(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col)) and not pd.api.types.is_bool_dtype(col)


def regression_targets(targets: pd.DataFrame) -> dict[str, np.ndarray]:
    """Numeric ``y_*`` columns as float arrays (NaN where missing)."""
    return {
        str(c): targets[c].to_numpy(dtype=np.float64)
        for c in targets.columns
        if str(c).startswith("y_") and _is_numeric(targets[c])
    }


def class_targets(
    targets: pd.DataFrame, metadata: pd.DataFrame, class_columns: Sequence[str] = ("class",)
) -> dict[str, np.ndarray]:
    """Class targets: non-numeric ``y_*`` columns plus the named metadata columns.

    Values are object arrays (``None`` where missing), labels kept as strings.
    """
    out: dict[str, np.ndarray] = {}
    cols = [
        (str(c), targets[c])
        for c in targets.columns
        if str(c).startswith("y_") and not _is_numeric(targets[c])
    ]
    cols += [(str(c), metadata[c]) for c in class_columns if c in metadata.columns]
    for name, col in cols:
        vals = col.astype(object).where(~col.isna(), None).to_numpy()
        out[name] = np.array([None if v is None else str(v) for v in vals], dtype=object)
    return out
