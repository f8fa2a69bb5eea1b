"""The hyper-parameter search of the regression heads, in closed form over the whole grid.

:func:`vitnirs.evaluate.downstream.fit_head` chooses ``ridge``'s alpha, ``pls``'s component
count and ``kernel_ridge``'s (alpha, gamma) by inner cross-validation. Done as scikit-learn's
``GridSearchCV`` does it, that is one fit per fold and grid point (21 ridge fits, up to 20 PLS
fits, 12 kernel ridge fits a fold); here, per fold, **one** SVD solves every ridge alpha, **one**
PLS fit at the largest count predicts every smaller count (NIPALS components are sequential),
and one eigendecomposition of the kernel per gamma solves every alpha. The choice is the same
(same grids, folds and scoring; the first best on ties, as ``GridSearchCV``), and the chosen
estimator is then refitted on all the rows given, exactly as ``GridSearchCV(refit=True)``.
``tests/test_fewshot.py`` checks the choices and predictions against ``GridSearchCV``.

Why: head fitting was ~90 % of the transfer section and most of the evaluation's time (measured
in issue 22: 1,200 of 1,330 s of a demo's transfer; 20–50× faster here on 10–300 rows).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.cross_decomposition import PLSRegression
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["CLOSED_FORM_HEADS", "KRR_ALPHAS", "KRR_GAMMAS", "MAX_PLS", "RIDGE_ALPHAS", "closed_form_search"]

RIDGE_ALPHAS = np.logspace(-6, 4, 21)
KRR_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0)
KRR_GAMMAS = (0.1, 1.0, 10.0)  # × 1 / D
MAX_PLS = 20
CLOSED_FORM_HEADS = ("ridge", "pls", "kernel_ridge")


def _mse_first_best(errors: np.ndarray) -> int:
    """GridSearchCV's choice: the first grid point of the lowest fold-mean MSE; ``errors`` (folds, grid)."""
    return int(np.argmin(errors.mean(axis=0)))


def _ridge_errors(Z: np.ndarray, y: np.ndarray, cv: list) -> np.ndarray:
    """Fold × alpha validation MSE of StandardScaler + Ridge(svd) (scikit-learn's SVD solve)."""
    errors = np.zeros((len(cv), len(RIDGE_ALPHAS)))
    for i, (fit, val) in enumerate(cv):
        scaler = StandardScaler().fit(Z[fit])
        A, B = scaler.transform(Z[fit]), scaler.transform(Z[val])
        a_mean, y_mean = A.mean(axis=0), y[fit].mean()
        U, s, Vt = np.linalg.svd(A - a_mean, full_matrices=False)
        keep = s > 1e-15
        d = np.zeros((len(s), len(RIDGE_ALPHAS)))
        d[keep] = s[keep, None] / (s[keep, None] ** 2 + RIDGE_ALPHAS[None, :])
        coef = Vt.T @ (d * (U.T @ (y[fit] - y_mean))[:, None])  # (D, alphas)
        pred = (B - a_mean) @ coef + y_mean
        errors[i] = ((pred - y[val, None]) ** 2).mean(axis=0)
    return errors


def _pls_errors(Z: np.ndarray, y: np.ndarray, cv: list, top: int) -> np.ndarray:
    """Fold × components validation MSE of PLSRegression(scale=True): one ``top``-component fit
    per fold predicts every k ≤ top (NIPALS components are sequential)."""
    errors = np.zeros((len(cv), top))
    for i, (fit, val) in enumerate(cv):
        m = PLSRegression(n_components=top, scale=True).fit(Z[fit], y[fit])
        T = ((Z[val] - m._x_mean) / m._x_std) @ m.x_rotations_  # (n_val, top)
        pred = np.cumsum(T * m.y_loadings_.ravel(), axis=1) * m._y_std[0] + m._y_mean[0]
        errors[i] = ((pred - y[val, None]) ** 2).mean(axis=0)
    return errors


def _krr_errors(Z: np.ndarray, y: np.ndarray, cv: list) -> np.ndarray:
    """Fold × (alpha, gamma) validation MSE of the standardised RBF kernel ridge (y standardised too),
    in the order of scikit-learn's grid (alpha outer, gamma inner): one eigendecomposition of the
    kernel per fold and gamma solves every alpha."""
    D, alphas = Z.shape[1], np.asarray(KRR_ALPHAS)
    errors = np.zeros((len(cv), len(KRR_ALPHAS), len(KRR_GAMMAS)))
    for i, (fit, val) in enumerate(cv):
        scaler = StandardScaler().fit(Z[fit])
        A, B = scaler.transform(Z[fit]), scaler.transform(Z[val])
        ys = StandardScaler().fit(y[fit, None])
        t = ys.transform(y[fit, None]).ravel()
        d_fit, d_val = euclidean_distances(A, A, squared=True), euclidean_distances(B, A, squared=True)
        for j, g in enumerate(KRR_GAMMAS):
            lam, V = np.linalg.eigh(np.exp(-(g / D) * d_fit))
            dual = V @ ((V.T @ t)[:, None] / (lam[:, None] + alphas[None, :]))  # (n_fit, alphas)
            pred = np.exp(-(g / D) * d_val) @ dual * ys.scale_[0] + ys.mean_[0]
            errors[i, :, j] = ((pred - y[val, None]) ** 2).mean(axis=0)
    return errors.reshape(len(cv), -1)


def closed_form_search(
    method: str, Z: np.ndarray, y: np.ndarray, cv: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[BaseEstimator, dict[str, Any]]:
    """Choose ``method``'s hyper-parameters on the folds ``cv`` (into ``Z (n, D)``, ``y (n,)``) by
    validation MSE, then refit on every row → ``(fitted estimator, chosen parameters)``."""
    Z, y = np.asarray(Z, dtype=np.float64), np.asarray(y, dtype=np.float64).ravel()
    D = Z.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PLS: "y residual is constant" on tiny folds
        if method == "ridge":
            alpha = float(RIDGE_ALPHAS[_mse_first_best(_ridge_errors(Z, y, cv))])
            model = make_pipeline(StandardScaler(), Ridge(alpha=alpha, solver="svd"))
            params: dict[str, Any] = {"alpha": alpha}
        elif method == "pls":
            top = max(1, min(MAX_PLS, D, min(len(f) for f, _ in cv) - 1))
            k = _mse_first_best(_pls_errors(Z, y, cv, top)) + 1
            model, params = PLSRegression(n_components=k, scale=True), {"n_components": k}
        elif method == "kernel_ridge":
            best = _mse_first_best(_krr_errors(Z, y, cv))
            alpha, gamma = KRR_ALPHAS[best // len(KRR_GAMMAS)], KRR_GAMMAS[best % len(KRR_GAMMAS)] / D
            model = TransformedTargetRegressor(
                make_pipeline(StandardScaler(), KernelRidge(kernel="rbf", alpha=alpha, gamma=gamma)),
                transformer=StandardScaler(),
            )
            params = {"alpha": alpha, "gamma": gamma}
        else:
            raise ValueError(f"no closed-form search for {method!r}; these have one: {CLOSED_FORM_HEADS}")
        return model.fit(Z, y), params
