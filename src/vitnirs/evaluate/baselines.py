"""Phase 0 classical baselines: the numbers the encoder must beat.

Every method is fitted on ``split.train`` only; every hyper-parameter (PLS components,
ridge/kernel alphas, C, gamma) is chosen by cross-validation *inside* the train part —
``GroupKFold`` on ``split.groups`` when present, else ``KFold(5)`` shuffled with the seed.
The test rows are only predicted, once, at the end.

How the nirs4all pipelines are driven
-------------------------------------
The preprocessing steps (``ASLSBaseline``, ``SNV``, ``SavitzkyGolay``) are per-spectrum
(stateless) operators, so they are applied once to every row — no statistic crosses from
one row to another, so no test information leaks. Model selection is then done in
scikit-learn on the train part: PLS components by a prefix CV (one PLS fit per fold gives
the predictions of every ``k ≤ k_max``, identical to refitting with ``k``; ~20× faster than
``GridSearchCV``), PCA + ridge by a per-fold PCA and a ridge grid. The final model
(preprocessing + chosen estimator) is fitted and scored through ``nirs4all.run`` with
``save_artifacts=False`` and ``verbose=0`` (nothing is written to the working directory),
on the dataset form ``(X[train ∪ test], y, {"train": n_train})``; ``engine="sklearn"``
fits the same model directly (faster, used by tests). AOM-PLS / AOM-Ridge (``nirs4all-aom``)
use their own internal CV (operator and components / alpha) with the same inner splitter
and are fitted directly. The nonlinear references (kernel ridge RBF, SVR, on standardised
X and y) use ``GridSearchCV`` on small grids.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, PredefinedSplit, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from vitnirs.evaluate.metrics import classification_metrics, regression_metrics
from vitnirs.evaluate.splits import Split

__all__ = [
    "LINEAR_METHODS",
    "NONLINEAR_METHODS",
    "CLASS_METHODS",
    "inner_cv",
    "run_baselines",
    "best_classical",
    "best_overall",
    "BaselineCache",
    "cached_baselines",
    "split_key",
]

LINEAR_METHODS = ("pls_raw", "asls_snv_pls", "snv_sg1_pls", "pca_ridge", "aom_pls", "aom_ridge")
NONLINEAR_METHODS = ("krr_raw", "krr_snv_sg1", "svr_raw", "svr_snv_sg1")
CLASS_METHODS = ("logreg_snv_sg1",)
MAX_PLS = 20


def _prep_steps(prep: str, n_points: int) -> list:
    """Fresh nirs4all per-spectrum operators of a preprocessing name."""
    from nirs4all.operators.transforms import SNV, ASLSBaseline, SavitzkyGolay

    if prep == "raw":
        return []
    if prep == "asls_snv":
        return [ASLSBaseline(), SNV()]
    if prep == "snv_sg1":
        w = min(11, n_points if n_points % 2 else n_points - 1)
        return [SNV(), SavitzkyGolay(window_length=w, polyorder=min(2, w - 1), deriv=1)]
    raise ValueError(f"unknown preprocessing {prep!r}")


def _apply(prep: str, X: np.ndarray) -> np.ndarray:
    out = np.asarray(X, dtype=np.float64)
    for step in _prep_steps(prep, X.shape[1]):
        out = np.asarray(step.fit_transform(out), dtype=np.float64)
    return out


def snv_sg1_features(X: np.ndarray) -> np.ndarray:
    """``(n, L)`` spectra → their SNV + Savitzky–Golay first derivative (nirs4all operators, the
    ``snv_sg1_pls`` preprocessing): the classical features the embedding heads are compared on.
    Both steps act on each spectrum alone, so no row sees another."""
    return _apply("snv_sg1", X)


def inner_cv(n_train: int, groups: np.ndarray | None, seed: int, n_splits: int = 5):
    """The inner CV splitter of the train part (a fixed fold assignment).

    ``GroupKFold`` on ``groups`` (expressed as a ``PredefinedSplit`` so that splitters that
    call ``split(X, y)`` without groups, such as AOM's, use the same folds), else a
    shuffled ``KFold`` seeded with ``seed``.
    """
    if groups is not None and len(np.unique(groups)) >= 2:
        k = min(n_splits, len(np.unique(groups)))
        test_fold = np.empty(n_train, dtype=int)
        for i, (_, va) in enumerate(GroupKFold(n_splits=k).split(np.zeros(n_train), groups=groups)):
            test_fold[va] = i
        return PredefinedSplit(test_fold)
    return KFold(n_splits=min(n_splits, n_train), shuffle=True, random_state=seed)


def _pls_select(X: np.ndarray, y: np.ndarray, cv, k_max: int) -> tuple[int, list[float]]:
    """Components minimising the CV RMSE; prefix trick: W[:, :k] Q[:, :k] of a k_max fit."""
    sse = np.zeros(k_max)
    for tr, va in cv.split(X, y):
        k_fold = max(1, min(k_max, len(tr) - 1, X.shape[1]))
        m = PLSRegression(n_components=k_fold, scale=False).fit(X[tr], y[tr])
        T = (X[va] - m._x_mean) @ m.x_rotations_
        Q = m.y_loadings_.ravel()
        preds = np.cumsum(T * Q, axis=1) + m.intercept_.ravel()[0]  # (n_va, k_fold)
        err = (preds - y[va, None]) ** 2
        sse[:k_fold] += err.sum(0)
        sse[k_fold:] += err[:, -1].sum()
    rmse = np.sqrt(sse / len(y))
    return int(np.argmin(rmse)) + 1, rmse.tolist()


def _pca_ridge_select(X: np.ndarray, y: np.ndarray, cv, ks: list[int], alphas: np.ndarray) -> tuple:
    sse = np.zeros((len(ks), len(alphas)))
    for tr, va in cv.split(X, y):
        pca = PCA(n_components=min(max(ks), len(tr) - 1)).fit(X[tr])
        Ttr, Tva = pca.transform(X[tr]), pca.transform(X[va])
        for i, k in enumerate(ks):
            for j, a in enumerate(alphas):
                r = Ridge(alpha=a).fit(Ttr[:, :k], y[tr])
                sse[i, j] += np.sum((r.predict(Tva[:, :k]) - y[va]) ** 2)
    i, j = np.unravel_index(np.argmin(sse), sse.shape)
    return ks[i], float(alphas[j])


def _nirs4all_fit_predict(steps: list, estimator, X: np.ndarray, y: np.ndarray, split: Split, seed: int):
    import nirs4all

    Xa = np.concatenate([X[split.train], X[split.test]]).astype(np.float64)
    ya = np.concatenate([y[split.train], y[split.test]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = nirs4all.run(
            pipeline=[*steps, estimator],
            dataset=(Xa, ya, {"train": len(split.train)}),
            verbose=0,
            save_artifacts=False,
            random_state=seed,
        )
    best = r.best
    y_true = np.asarray(best["y_true"], dtype=np.float64).ravel()
    if best.get("partition") != "test" or not np.allclose(y_true, y[split.test]):
        raise RuntimeError("nirs4all.run returned predictions that are not the test rows in order")
    return np.asarray(best["y_pred"], dtype=np.float64).ravel()


def _linear(method: str, X, y, split: Split, cv, seed: int, engine: str, aom_bank: str | None):
    tr, te = split.train, split.test
    if method in ("aom_pls", "aom_ridge"):
        from aom_nirs.pls import AOMPLSRegressor
        from aom_nirs.ridge import AOMRidgeRegressor

        Xtr, Xte = np.asarray(X[tr], np.float64), np.asarray(X[te], np.float64)
        if method == "aom_pls":
            kw = {"operator_bank": aom_bank} if aom_bank else {}
            m = AOMPLSRegressor(
                max_components=max(1, min(25, len(tr) - 2)), cv_splitter=cv, random_state=seed, **kw
            )
            m.fit(Xtr, y[tr])
            names = m.diagnostics_.selected_operator_names
            params = {"n_components": int(m.n_components_), "operator": names[0] if names else None}
        else:
            m = AOMRidgeRegressor(cv=cv, random_state=seed).fit(Xtr, y[tr])
            params = {"alpha": float(m.alpha_), "operators": list(m.diagnostics_["selected_operator_names"])}
        return np.asarray(m.predict(Xte), np.float64).ravel(), params
    prep = {"pls_raw": "raw", "asls_snv_pls": "asls_snv", "snv_sg1_pls": "snv_sg1", "pca_ridge": "raw"}[
        method
    ]
    Xp = _apply(prep, X[np.concatenate([tr, te])])
    Xtr, Xte = Xp[: len(tr)], Xp[len(tr) :]
    if method == "pca_ridge":
        cap = min(len(tr) - len(tr) // 5 - 1, X.shape[1])
        ks = sorted({min(k, cap) for k in (2, 5, 10, 20, 40)})
        k, alpha = _pca_ridge_select(Xtr, y[tr], cv, ks, np.logspace(-4, 2, 7))
        est, params = (
            make_pipeline(PCA(n_components=k), Ridge(alpha=alpha)),
            {"n_components": k, "alpha": alpha},
        )
    else:
        k_max = max(1, min(MAX_PLS, len(tr) - len(tr) // 5 - 1, X.shape[1]))
        k, curve = _pls_select(Xtr, y[tr], cv, k_max)
        est, params = PLSRegression(n_components=k, scale=False), {"n_components": k, "cv_rmse": curve[k - 1]}
    if engine == "nirs4all":
        return _nirs4all_fit_predict(_prep_steps(prep, X.shape[1]), est, X, y, split, seed), params
    return np.asarray(clone(est).fit(Xtr, y[tr]).predict(Xte), np.float64).ravel(), params


def _nonlinear(method: str, X, y, split: Split, cv):
    kind, prep = method.split("_", 1)
    Xp = _apply(prep, X[np.concatenate([split.train, split.test])])
    Xtr, Xte = Xp[: len(split.train)], Xp[len(split.train) :]
    # gamma relative to 1/L (standardised X: squared distances scale with L); spectra are
    # highly collinear, so the useful gammas sit well below 1/L.
    g = np.array([1e-3, 1e-2, 1e-1, 1.0]) / Xtr.shape[1]
    if kind == "krr":
        reg, grid = KernelRidge(kernel="rbf"), {"alpha": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "gamma": g}
    else:
        reg, grid = SVR(kernel="rbf", epsilon=0.05), {"C": [1.0, 10.0, 100.0, 1000.0], "gamma": g}
    name = type(reg).__name__.lower()
    model = TransformedTargetRegressor(make_pipeline(StandardScaler(), reg), transformer=StandardScaler())
    grid = {f"regressor__{name}__{k}": v for k, v in grid.items()}
    search = GridSearchCV(model, grid, cv=cv, scoring="neg_root_mean_squared_error", n_jobs=1)
    search.fit(Xtr, y[split.train])
    params = {k.rsplit("__", 1)[1]: float(v) for k, v in search.best_params_.items()}
    return np.asarray(search.predict(Xte), np.float64).ravel(), params


def _classifier(X, labels, split: Split, seed: int):
    Xp = _apply("snv_sg1", X[np.concatenate([split.train, split.test])])
    Xtr, Xte = Xp[: len(split.train)], Xp[len(split.train) :]
    ytr = labels[split.train].astype(str)
    if split.groups is not None:
        cv = inner_cv(len(ytr), split.groups, seed)
    else:
        min_count = min(np.unique(ytr, return_counts=True)[1])
        cv = (
            StratifiedKFold(min(5, min_count), shuffle=True, random_state=seed)
            if min_count >= 2
            else KFold(min(5, len(ytr)), shuffle=True, random_state=seed)
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    search = GridSearchCV(
        model, {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}, cv=cv, scoring="balanced_accuracy"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(Xtr, ytr)
    return search.predict(Xte), {"C": float(search.best_params_["logisticregression__C"])}


def _is_class_target(y: np.ndarray) -> bool:
    return np.asarray(y).dtype.kind in "OUSb"


def run_baselines(
    X: np.ndarray,
    y: np.ndarray,
    split: Split,
    *,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    engine: str = "nirs4all",
    aom_bank: str | None = None,
    progress: Callable[[str], None] | None = None,
    return_predictions: bool = False,
) -> list[dict]:
    """Fit and score the classical baselines on one split.

    Parameters
    ----------
    X : np.ndarray
        ``(n, L)`` spectra of the whole dataset (indexed by ``split.train`` / ``split.test``).
    y : np.ndarray
        ``(n,)`` float target, or object/str labels for a class target (then the class
        methods are run: logistic regression on SNV + SG 1st derivative).
    split : Split
        From :func:`vitnirs.evaluate.splits.make_splits`.
    methods : sequence of str, optional
        Default: every regression method (``LINEAR_METHODS + NONLINEAR_METHODS``), or
        ``CLASS_METHODS`` for a class target.
    seed : int
        Seed of the inner KFold.
    engine : {"nirs4all", "sklearn"}
        How the final PLS / PCA-ridge pipelines are fitted (see module docstring).
    aom_bank : str, optional
        AOM-PLS operator bank preset (default: the package's ``"default"``, ~77 operators;
        ``"compact"`` is several times faster).
    progress : callable, optional
        Called with each method name before it is fitted.
    return_predictions : bool
        Add ``"y_pred"`` (list, in ``split.test`` order) to each record.

    Returns
    -------
    list of dict
        ``{"method", "protocol", "n_train", "n_test", "metrics", "params", "seconds"}``.
    """
    if engine not in ("nirs4all", "sklearn"):
        raise ValueError(f"engine must be 'nirs4all' or 'sklearn', not {engine!r}")
    is_class = _is_class_target(y)
    methods = list(methods or (CLASS_METHODS if is_class else LINEAR_METHODS + NONLINEAR_METHODS))
    X = np.asarray(X)
    y = np.asarray(y, dtype=object if is_class else np.float64)
    cv = inner_cv(len(split.train), split.groups, seed)
    records = []
    for method in methods:
        if progress:
            progress(method)
        t0 = time.perf_counter()
        if method in CLASS_METHODS:
            pred, params = _classifier(X, y, split, seed)
            metrics = classification_metrics(y[split.test].astype(str), pred)
        elif is_class:
            raise ValueError(f"{method!r} is a regression method but the target holds classes")
        elif method in LINEAR_METHODS:
            pred, params = _linear(method, X, y, split, cv, seed, engine, aom_bank)
            metrics = regression_metrics(y[split.test], pred)
        elif method in NONLINEAR_METHODS:
            pred, params = _nonlinear(method, X, y, split, cv)
            metrics = regression_metrics(y[split.test], pred)
        else:
            raise ValueError(f"unknown baseline method {method!r}")
        records.append(
            {
                "method": method,
                "protocol": split.name,
                "n_train": len(split.train),
                "n_test": len(split.test),
                "metrics": metrics,
                "params": params,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        if return_predictions:
            records[-1]["y_pred"] = np.asarray(pred).tolist()
    return records


def _best(records: Sequence[dict], allowed: Sequence[str]) -> dict | None:
    cands = [r for r in records if r["method"] in allowed and np.isfinite(r["metrics"].get("rmsep", np.nan))]
    return min(cands, key=lambda r: r["metrics"]["rmsep"]) if cands else None


def best_classical(records: Sequence[dict]) -> dict | None:
    """The linear method (PLS variants, PCA + ridge, AOM) with the lowest RMSEP, or None.

    Pass the records of one dataset/target/protocol (or summarised records of one).
    """
    return _best(records, LINEAR_METHODS)


def best_overall(records: Sequence[dict]) -> dict | None:
    """The baseline with the lowest RMSEP, kernel ridge and SVR included, or None."""
    return _best(records, LINEAR_METHODS + NONLINEAR_METHODS)


def split_key(split: Split) -> str:
    """``name#digest``: the split's name plus a short hash of its train/test indices."""
    h = hashlib.sha1(np.asarray(split.train, np.int64).tobytes())
    h.update(b"|" + np.asarray(split.test, np.int64).tobytes())
    return f"{split.name}#{h.hexdigest()[:12]}"


class BaselineCache:
    """JSON file of baseline records keyed by (dataset hash, target, split, method).

    The split part of the key is :func:`split_key` (name + a hash of the indices), so a
    changed split protocol or seed never returns stale numbers. The file is rewritten
    atomically (temp file + rename) by :meth:`save`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            doc = json.loads(self.path.read_text())
            self.entries = dict(doc.get("entries", {})) if doc.get("version") == 1 else {}

    @staticmethod
    def key(dataset_hash: str, target: str, split: Split, method: str) -> str:
        return f"{dataset_hash}|{target}|{split_key(split)}|{method}"

    def get(self, key: str) -> dict | None:
        rec = self.entries.get(key)
        return copy.deepcopy(rec) if rec is not None else None

    def put(self, key: str, record: dict) -> None:
        self.entries[key] = copy.deepcopy(record)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": 1, "entries": self.entries}, fh, indent=1, default=_json_default)
        os.replace(tmp, self.path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def cached_baselines(
    cache: BaselineCache,
    dataset_hash: str,
    target: str,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[Split],
    methods: Sequence[str] | None = None,
    **kwargs,
) -> list[dict]:
    """:func:`run_baselines` over ``splits``, fitting only what ``cache`` lacks.

    Records come back in (split, method) order, each also carrying ``"target"``; new ones
    are stored and the cache file saved after each split. ``kwargs`` go to
    :func:`run_baselines` (``seed``, ``engine``, ``aom_bank``, ``progress``).
    """
    if methods is None:
        methods = CLASS_METHODS if _is_class_target(y) else LINEAR_METHODS + NONLINEAR_METHODS
    out = []
    for split in splits:
        keys = {m: cache.key(dataset_hash, target, split, m) for m in methods}
        missing = [m for m in methods if keys[m] not in cache]
        if missing:
            for rec in run_baselines(X, y, split, methods=missing, **kwargs):
                cache.put(keys[rec["method"]], {**rec, "target": target})
            cache.save()
        out.extend(cache.get(keys[m]) for m in methods)
    return out
