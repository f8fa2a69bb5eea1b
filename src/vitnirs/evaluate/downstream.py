"""Light heads on the frozen embedding (issue 5, evaluation 2).

Every head is fitted on the train rows only; its hyper-parameters are chosen by
cross-validation *inside* the train rows (GroupKFold on ``groups`` when given, else KFold(5)
shuffled by the seed; StratifiedKFold for class targets); the MLP's early stopping holds out a
part of the train rows. Test rows are only predicted, never seen by any choice.

Heads: ``ridge`` (standardised features, alpha by CV), ``pls`` (n_components by CV),
``kernel_ridge`` (RBF, alpha × gamma grid), ``mlp`` (one hidden layer, early stopping, alpha by
CV), ``logistic`` (class targets, C by CV), ``tabpfn`` (only when the package and its weights
are on this machine; never downloads; otherwise a skipped record that says how to enable it).

Records have the shape of the baselines' so both go in one table::

    {"method", "n_train", "n_test", "metrics", "params", "seconds", "skipped"}

``skipped`` is None, or the reason the head did not run (``metrics`` is then None).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.cross_decomposition import PLSRegression
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vitnirs.evaluate.head_search import (
    CLOSED_FORM_HEADS,
    KRR_ALPHAS,
    KRR_GAMMAS,
    MAX_PLS,
    RIDGE_ALPHAS,
    closed_form_search,
)
from vitnirs.evaluate.metrics import classification_metrics, regression_metrics

__all__ = [
    "HeadUnavailableError",
    "REGRESSION_HEADS",
    "CLASSIFICATION_HEADS",
    "cv_splits",
    "fit_head",
    "run_heads",
    "tabpfn_status",
]

REGRESSION_HEADS = ("ridge", "pls", "kernel_ridge", "mlp", "tabpfn")
CLASSIFICATION_HEADS = ("logistic", "mlp", "tabpfn")
DEFAULT_METHODS = {
    "regression": ("ridge", "pls", "kernel_ridge", "mlp"),
    "classification": ("logistic", "mlp"),
}
TABPFN_HELP = (
    "TabPFN skipped: install it (`pip install tabpfn`) and put its weights on this machine "
    "(a .ckpt file in $TABPFN_MODEL_PATH, ~/.cache/tabpfn or the platform cache dir); "
    "vitnirs never downloads them"
)


class HeadUnavailableError(RuntimeError):
    """A head that cannot run on this machine (TabPFN without its package or local weights)."""


# ----------------------------------------------------------------------------- CV on train
def cv_splits(
    y: np.ndarray, groups: np.ndarray | None, *, seed: int, task: str = "regression", n_splits: int = 5
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner CV folds over the *train* rows only: ``[(fit_idx, val_idx), …]`` into ``y``.

    GroupKFold when ``groups`` has ≥ 2 distinct values; else StratifiedKFold (class targets
    whose every class has ≥ ``n_splits`` members) or KFold, shuffled by ``seed``.
    """
    n = len(y)
    if groups is not None and len(np.unique(groups)) >= 2:
        cv = GroupKFold(n_splits=min(n_splits, len(np.unique(groups))))
        return list(cv.split(np.zeros(n), y, groups))
    k = max(2, min(n_splits, n))
    if task == "classification" and np.unique(y, return_counts=True)[1].min() >= k:
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n)))


def _scaled(model: BaseEstimator) -> BaseEstimator:
    return make_pipeline(StandardScaler(), model)


def _search(
    model: BaseEstimator, grid: dict[str, Sequence[Any]], Z: np.ndarray, y: np.ndarray, cv: list, scoring: str
) -> tuple[BaseEstimator, dict[str, Any]]:
    search = GridSearchCV(model, grid, cv=cv, scoring=scoring, n_jobs=1, error_score="raise")
    search.fit(Z, y)
    params = {k.rsplit("__", 1)[-1]: _plain(v) for k, v in search.best_params_.items()}
    return search.best_estimator_, params


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ----------------------------------------------------------------------------- TabPFN
def tabpfn_status(task: str = "regression") -> tuple[str | None, str]:
    """``(weights_path, "")`` when TabPFN can run offline here, else ``(None, reason + how to enable)``."""
    kind = "regressor" if task == "regression" else "classifier"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: no hub access from here on
    try:
        import tabpfn  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return None, f"{TABPFN_HELP} (import tabpfn failed: {type(exc).__name__})"
    candidates = [os.environ.get("TABPFN_MODEL_PATH"), Path.home() / ".cache" / "tabpfn"]
    try:
        from platformdirs import user_cache_dir

        candidates.append(user_cache_dir("tabpfn"))
    except ImportError:
        pass
    for c in filter(None, candidates):
        p = Path(c)
        found = [p] if p.is_file() else sorted(p.glob(f"*{kind}*.ckpt")) if p.is_dir() else []
        if found:
            return str(found[0]), ""
    return None, f"{TABPFN_HELP} (no local weights found)"


# ----------------------------------------------------------------------------- heads
def fit_head(
    method: str,
    Z: np.ndarray,
    y: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    task: str = "regression",
    seed: int = 0,
    exhaustive: bool = False,
) -> tuple[BaseEstimator, dict[str, Any]]:
    """Fit one head on ``Z (n_train, D)``, ``y (n_train,)``, its hyper-parameters by inner CV.

    Returns the fitted estimator (``predict`` on ``(m, D)``) and the chosen parameters. The
    regression heads ``ridge``, ``pls`` and ``kernel_ridge`` search their grid in closed form
    (:mod:`vitnirs.evaluate.head_search`: the same choice, 20–50× faster); ``exhaustive=True``
    runs scikit-learn's ``GridSearchCV`` over the same grid instead (the reference the tests use).
    Raises ``ValueError`` for a method that does not apply to ``task``, :class:`HeadUnavailableError` when
    TabPFN is not available offline.
    """
    known = REGRESSION_HEADS if task == "regression" else CLASSIFICATION_HEADS
    if method not in known:
        raise ValueError(f"head {method!r} does not apply to {task} targets; choose from {known}")
    cv = cv_splits(y, groups, seed=seed, task=task)
    scoring = "neg_mean_squared_error" if task == "regression" else "accuracy"
    min_fit = min(len(f) for f, _ in cv)
    D = Z.shape[1]
    if task == "regression" and method in CLOSED_FORM_HEADS and not exhaustive:
        return closed_form_search(method, Z, y, cv)
    if method == "ridge":
        # SVD, not Cholesky: standardised embeddings are near-collinear (n < D, tiny std), so the
        # normal equations of the grid's small alphas are singular (116 "Singular matrix" warnings and a
        # least-squares fallback in one demo run); the SVD solves every alpha exactly
        return _search(_scaled(Ridge(solver="svd")), {"ridge__alpha": RIDGE_ALPHAS}, Z, y, cv, scoring)
    if method == "pls":
        top = max(1, min(MAX_PLS, D, min_fit - 1))
        grid = {"n_components": list(range(1, top + 1))}
        return _search(PLSRegression(scale=True), grid, Z, y, cv, scoring)
    if method == "kernel_ridge":
        grid = {
            "kernelridge__alpha": list(KRR_ALPHAS),
            "kernelridge__gamma": [g / D for g in KRR_GAMMAS],
        }
        model = TransformedTargetRegressor(_scaled(KernelRidge(kernel="rbf")), transformer=StandardScaler())
        return _search(model, {f"regressor__{k}": v for k, v in grid.items()}, Z, y, cv, scoring)
    if method == "mlp":
        # early stopping on a held-out 20 % of the rows it is given (train rows only); mini-batches of
        # 32 at lr 1e-2: with sklearn's full-batch default a 30-row set gets one step per epoch and
        # early stopping ends it near chance
        kw = dict(hidden_layer_sizes=(64,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=50)
        kw |= dict(
            batch_size=max(1, min(32, int(0.8 * min_fit))),
            learning_rate_init=1e-2,
            max_iter=1000,
            random_state=seed,
        )
        if task == "regression":
            model = TransformedTargetRegressor(_scaled(MLPRegressor(**kw)), transformer=StandardScaler())
            return _search(model, {"regressor__mlpregressor__alpha": [1e-3, 1e-1, 1.0]}, Z, y, cv, scoring)
        return _search(
            _scaled(MLPClassifier(**kw)), {"mlpclassifier__alpha": [1e-3, 1e-1, 1.0]}, Z, y, cv, scoring
        )
    if method == "logistic":
        grid = {"logisticregression__C": np.logspace(-3, 3, 7)}
        return _search(_scaled(LogisticRegression(max_iter=5000)), grid, Z, y, cv, scoring)
    # tabpfn: no hyper-parameter search (its in-context fit is the point)
    path, reason = tabpfn_status(task)
    if path is None:
        raise HeadUnavailableError(reason)
    from tabpfn import TabPFNClassifier, TabPFNRegressor

    cls = TabPFNRegressor if task == "regression" else TabPFNClassifier
    model = cls(model_path=path, device="cpu", random_state=seed)
    return model.fit(Z, y), {"model_path": path}


def run_heads(
    Z: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    methods: Sequence[str] | None = None,
    task: str = "regression",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Fit each head on ``Z[train_idx]`` and score it on ``Z[test_idx]``.

    Parameters
    ----------
    Z : (n, D) embedding of every row.
    y : (n,) targets (float for regression, labels for classification).
    train_idx, test_idx : integer row indices into ``Z`` / ``y``.
    groups : inner-CV groups, aligned with all rows ``(n,)`` or with ``train_idx``
        (as ``Split.groups``); None = KFold.
    methods : heads to run; default ``ridge, pls, kernel_ridge, mlp`` (regression) or
        ``logistic, mlp`` (classification).
    task : ``"regression"`` or ``"classification"``.
    seed : seeds the CV shuffles and the MLP.

    Returns
    -------
    One record per method: ``{"method", "n_train", "n_test", "metrics", "params",
    "seconds", "skipped"}``; a head that cannot run (TabPFN absent) has ``metrics`` None and
    ``skipped`` saying why.
    """
    if task not in DEFAULT_METHODS:
        raise ValueError(f"task must be 'regression' or 'classification'; got {task!r}")
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y) if task == "classification" else np.asarray(y, dtype=np.float64).ravel()
    train_idx, test_idx = np.asarray(train_idx, dtype=np.int64), np.asarray(test_idx, dtype=np.int64)
    if np.intersect1d(train_idx, test_idx).size:
        raise ValueError("train_idx and test_idx overlap")
    g = None
    if groups is not None:
        groups = np.asarray(groups)
        g = groups[train_idx] if len(groups) == len(Z) else groups
        if len(g) != len(train_idx):
            raise ValueError(f"groups has {len(groups)} values: need {len(Z)} (all rows) or {len(train_idx)}")
    score = regression_metrics if task == "regression" else classification_metrics
    records = []
    for method in methods or DEFAULT_METHODS[task]:
        rec: dict[str, Any] = {"method": method, "n_train": len(train_idx), "n_test": len(test_idx)}
        t0 = time.perf_counter()
        try:
            model, params = fit_head(method, Z[train_idx], y[train_idx], groups=g, task=task, seed=seed)
        except HeadUnavailableError as exc:
            rec |= {"metrics": None, "params": {}, "seconds": 0.0, "skipped": str(exc)}
            records.append(rec)
            continue
        pred = np.asarray(model.predict(Z[test_idx])).reshape(len(test_idx), -1)
        pred = pred[:, 0] if pred.shape[1] == 1 else pred
        rec |= {"metrics": score(y[test_idx], pred), "params": params}
        rec |= {"seconds": round(time.perf_counter() - t0, 3), "skipped": None}
        records.append(rec)
    return records
