"""Exact, batched asymmetric least squares (AsLS) baseline for many spectra at once.

nirs4all's ``ASLSBaseline`` loops over rows in Python and calls ``pybaselines.whittaker.asls``
on each. Every row solves the same kind of system, ``(W + lam * DᵀD) z = W y``, with ``D``
the second-difference matrix, so the pentadiagonal matrices of a chunk of spectra are
stacked into one block-diagonal banded matrix (bandwidth 2, zero coupling between blocks)
and solved with ONE ``scipy.linalg.solveh_banded`` call per iteration. Spectra that have
converged are frozen and leave the active set.

The result is bit-for-bit equal to pybaselines 1.2.1 (``solveh_banded`` path, i.e. pentapy
NOT installed): LAPACK's banded Cholesky (``dpbtf2``) and triangular solves only ever
multiply the zero coupling entries, which leaves the neighbouring blocks unchanged to the bit.
The convergence test is pybaselines' ``relative_difference`` on the weights; rows whose ratio
lies within 1e-9 (relative) of ``tol`` are re-tested with ``np.linalg.norm`` on the 1-D row,
exactly as pybaselines computes it, so every row stops at the same iteration.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solveh_banded

__all__ = ["asls_baseline"]

# pybaselines.utils._MIN_FLOAT: floor of the denominator in relative_difference.
_MIN_FLOAT = np.finfo(float).eps
# Rows whose vectorised relative difference is this close to tol are re-tested exactly.
_BORDERLINE_RTOL = 1e-9


def second_difference_bands(n_points: int) -> np.ndarray:
    """Lower bands of ``DᵀD`` for the second-difference matrix ``D`` of shape (L-2, L).

    Returns (3, L) float64 in LAPACK lower banded form: row 0 the main diagonal, row 1 the
    first sub-diagonal (last entry 0), row 2 the second sub-diagonal (last two entries 0).
    The trailing zeros are what decouples stacked blocks. Valid for every ``L >= 3``
    (``[1, 5, 6, ..., 6, 5, 1]``, ``[-2, -4, ..., -4, -2]``, ``[1, ..., 1]`` for L >= 5).
    """
    if n_points < 3:
        raise ValueError(f"AsLS needs at least 3 points per spectrum, got {n_points}")
    stencil = (1.0, -2.0, 1.0)
    bands = np.zeros((3, n_points))
    n_rows = n_points - 2  # rows of D; row j holds the stencil at columns j, j+1, j+2
    for a in range(3):
        for b in range(a, 3):
            # DᵀD[j+a, j+b] += stencil[a] * stencil[b] for every row j of D.
            bands[b - a, a : a + n_rows] += stencil[a] * stencil[b]
    return bands


def _relative_difference(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Row-wise ``norm(new - old) / max(norm(old), eps)`` for (k, L) arrays -> (k,).

    Vectorised sums may differ from ``np.linalg.norm`` of a 1-D row in the last bit; callers
    re-test rows near the threshold with :func:`_relative_difference_row`.
    """
    numerator = np.sqrt(np.einsum("ij,ij->i", new - old, new - old))
    denominator = np.maximum(np.sqrt(np.einsum("ij,ij->i", old, old)), _MIN_FLOAT)
    return numerator / denominator


def _relative_difference_row(old: np.ndarray, new: np.ndarray) -> float:
    """pybaselines' ``relative_difference`` on one (L,) row, the same operations in order."""
    return float(np.linalg.norm(new - old) / np.maximum(np.linalg.norm(old), _MIN_FLOAT))


def _asls_chunk(spectra: np.ndarray, penalty: np.ndarray, p: float, max_iter: int, tol: float) -> np.ndarray:
    """AsLS baselines of one chunk: spectra (m, L) float64, penalty lam·bands (3, L) -> (m, L)."""
    m, L = spectra.shape
    baseline = np.empty_like(spectra)
    stacked_bands = np.tile(penalty[1:], (1, m))  # (2, m*L); the sub-diagonals never change
    active = np.arange(m)  # rows of the chunk still iterating
    y = spectra
    weights = np.ones((m, L))
    for iteration in range(max_iter + 1):
        k = active.size
        lhs = np.empty((3, k * L))  # (3, k*L) lower banded form of blockdiag(W + lam·DᵀD)
        lhs[0] = (penalty[0] + weights).ravel()
        lhs[1:] = stacked_bands[:, : k * L]
        rhs = (weights * y).ravel()  # (k*L,)
        fit = solveh_banded(
            lhs, rhs, overwrite_ab=True, overwrite_b=True, lower=True, check_finite=False
        ).reshape(k, L)
        new_weights = np.where(y > fit, p, 1 - p)
        difference = _relative_difference(weights, new_weights)
        for row in np.flatnonzero(np.abs(difference - tol) <= _BORDERLINE_RTOL * tol):
            difference[row] = _relative_difference_row(weights[row], new_weights[row])
        done = difference < tol
        if iteration == max_iter:  # pybaselines returns the last fit even if not converged
            done[:] = True
        baseline[active[done]] = fit[done]
        if done.all():
            break
        keep = ~done
        active, y, weights = active[keep], y[keep], new_weights[keep]
    return baseline


def asls_baseline(
    X: np.ndarray,
    *,
    lam: float = 1e6,
    p: float = 0.01,
    max_iter: int = 50,
    tol: float = 1e-3,
    chunk_size: int = 512,
) -> np.ndarray:
    """AsLS baseline of each spectrum, identical to nirs4all's ``ASLSBaseline``.

    ``ASLSBaseline(lam, p, max_iter, tol).fit_transform(X)`` returns the corrected spectra,
    so this returns ``X - ASLSBaseline(...).fit_transform(X)`` (equal to the bit for
    float64 input; for float32 input pybaselines rounds its baseline to float32, which is
    this float64 result rounded to float32). Rows are independent: the result of a row does
    not depend on the other rows or on ``chunk_size``.

    Parameters
    ----------
    X : (n, L) array of spectra, any float dtype (computed in float64). ``n`` may be 0.
    lam : smoothness, ``lam > 0``; the penalty is ``lam * DᵀD`` with 2nd differences.
    p : asymmetry, ``0 < p < 1``: points above the baseline get weight p, others 1 - p.
    max_iter : at most ``max_iter + 1`` weighted solves per spectrum (pybaselines' count).
    tol : stop a spectrum when ``||w_new - w|| / ||w|| < tol``.
    chunk_size : spectra stacked into one banded system; bounds memory (~10 arrays of
        chunk_size × L float64; X is converted to float64 one chunk at a time).

    Returns
    -------
    (n, L) float64 baselines.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_spectra, n_points), got shape {X.shape}")
    if not 0 < p < 1:
        raise ValueError(f"p must be between 0 and 1, got {p}")
    if not lam > 0:
        raise ValueError(f"lam must be greater than 0, got {lam}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n, L = X.shape
    penalty = float(lam) * second_difference_bands(L)  # (3, L); raises for L < 3
    for start in range(0, n, chunk_size):  # checked before any work, a chunk at a time
        if not np.isfinite(X[start : start + chunk_size].astype(np.float64, copy=False)).all():
            raise ValueError("X contains NaN or infinite values")
    baseline = np.empty((n, L))
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        spectra = X[start:stop].astype(np.float64, copy=False)  # [m, L]; a float32 X is never copied whole
        baseline[start:stop] = _asls_chunk(spectra, penalty, p, max_iter, tol)
    return baseline
