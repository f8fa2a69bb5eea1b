"""PDS: the per-window regression, a planted shift + gain + offset, identity, and no test leakage."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import absorbance_table
from sklearn.cross_decomposition import PLSRegression

import vitnirs.evaluate.transfer as transfer_mod
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.data.table import SpectralTable
from vitnirs.evaluate.pds import PDS
from vitnirs.evaluate.transfer import transfer_pairs

GRID = np.linspace(1000.0, 2000.0, 150)
NOISE = 1e-3


def _spectra(n: int, seed: int = 0, noise: float = NOISE) -> tuple[np.ndarray, np.ndarray]:
    """``(n, L)`` three overlapping bands plus noise; y = concentration of the first band."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, (n, 3))
    centres, widths = np.array([1300.0, 1500.0, 1750.0]), np.array([40.0, 60.0, 50.0])
    bands = np.exp(-0.5 * ((GRID[None, :] - centres[:, None]) / widths[:, None]) ** 2)
    return 0.3 + c @ bands + rng.normal(0, noise, (n, len(GRID))), c[:, 0]


def _slave(X: np.ndarray, shift_points: float = 1.5) -> np.ndarray:
    """Instrument B: the master's spectra shifted by ``shift_points``, a gain, and a sloped offset."""
    step = GRID[1] - GRID[0]
    shifted = np.stack([np.interp(GRID - shift_points * step, GRID, row) for row in X])
    return 1.2 * shifted + 0.3 + 0.2 * (GRID - GRID[0]) / np.ptp(GRID)


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(a**2)))


@pytest.mark.parametrize("n_components", [1, 2, 3])
def test_each_window_is_the_pls1_of_its_truncated_window(n_components):
    rng = np.random.default_rng(1)
    Xs, Xm, Xt = rng.normal(size=(8, 30)), rng.normal(size=(8, 30)), rng.normal(size=(4, 30))
    out = PDS(window=7, n_components=n_components).fit(Xs, Xm).transform(Xt)
    for j in (0, 2, 15, 28, 29):  # both truncated edges and the interior
        lo, hi = max(0, j - 3), min(30, j + 4)
        ref = PLSRegression(n_components=n_components, scale=False).fit(Xs[:, lo:hi], Xm[:, j])
        np.testing.assert_allclose(out[:, j], ref.predict(Xt[:, lo:hi]).ravel(), atol=1e-10)
    # a global (not per-window) fit, or no window truncation, would give other predictions
    glob = PLSRegression(n_components=n_components, scale=False).fit(Xs, Xm).predict(Xt)
    assert not np.allclose(out, glob, atol=1e-3)


@pytest.mark.parametrize("k", [10, 5])
def test_shifted_instrument_is_mapped_onto_the_master(k):
    X, _ = _spectra(40)
    Xb = _slave(X)
    std, held = slice(0, k), slice(10, 40)  # the standards never include a held-out spectrum
    before = _rms(Xb[held] - X[held])
    pds = PDS(window=5).fit(Xb[std], X[std])
    err = pds.transform(Xb[held]) - X[held]
    assert _rms(err) < 0.01 * before, (before, _rms(err))
    assert _rms(err) < 3 * NOISE
    assert max(_rms(err[:, :3]), _rms(err[:, -3:])) < 3 * NOISE  # the truncated edge windows too
    assert pds.n_components_ == 2 and pds.coef_.shape == (len(GRID), 5)
    # a per-wavelength gain/offset (window 1) cannot undo the shift: clearly worse
    err_1 = PDS(window=1).fit(Xb[std], X[std]).transform(Xb[held]) - X[held]
    assert _rms(err_1) > 2 * _rms(err), (_rms(err_1), _rms(err))


def test_identical_instruments_give_near_identity():
    X, _ = _spectra(40, seed=3)
    pds = PDS().fit(X[:10], X[:10])
    err = pds.transform(X[10:]) - X[10:]
    assert _rms(err) < 1.5 * NOISE, _rms(err)  # at the noise level of the spectra
    assert _rms(err) < 0.01 * _rms(_slave(X[10:]) - X[10:])
    # noiseless spectra: the default 2 components per window reproduce them (to ~1e-6, round-off
    # of the deflations), where a single component is visibly off
    Xc, _ = _spectra(40, seed=3, noise=0.0)
    np.testing.assert_allclose(PDS().fit(Xc[:10], Xc[:10]).transform(Xc[10:]), Xc[10:], atol=1e-5)
    one = PDS(n_components=1).fit(Xc[:10], Xc[:10]).transform(Xc[10:])
    assert np.abs(one - Xc[10:]).max() > 1e-3


def test_components_are_capped_and_bad_input_raises():
    X, _ = _spectra(12)
    assert PDS(n_components=9).fit(X[:3], X[:3]).n_components_ == 2  # k - 1
    assert PDS(window=3, n_components=9).fit(X, X).n_components_ == 3  # window
    with pytest.raises(ValueError, match="odd"):
        PDS(window=4).fit(X, X)
    with pytest.raises(ValueError, match="same shape"):
        PDS().fit(X, X[:, :-1])
    with pytest.raises(ValueError, match="at least 2"):
        PDS().fit(X[:1], X[:1])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PDS().fit(bad, X)
    with pytest.raises(RuntimeError, match="not fitted"):
        PDS().transform(X)
    with pytest.raises(ValueError, match="expected"):
        PDS().fit(X, X).transform(X[:, :10])


# --- in the transfer evaluation -------------------------------------------------------------

N_CAL, N_TRANSFER, N_TEST = 40, 12, 24


def _table(name: str, X: np.ndarray, y: np.ndarray, ids: list[str], part: list[str]) -> SpectralTable:
    return absorbance_table(name, X, GRID, targets={"y_c": y}, metadata={"sample_id": ids, "partition": part})


class _RecordingPDS(PDS):
    fitted_on: list[np.ndarray] = []

    def fit(self, X_slave, X_master):
        type(self).fitted_on.append(np.array(X_slave))
        return super().fit(X_slave, X_master)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    X, y = _spectra(N_CAL + N_TRANSFER + N_TEST, noise=2e-3)
    ids = [f"s{i:03d}" for i in range(len(y))]
    part = ["cal"] * N_CAL + ["transfer"] * N_TRANSFER + ["test"] * N_TEST
    tables = [_table("inst_a", X, y, ids, part), _table("inst_b", _slave(X), y, ids, part)]
    path = tmp_path_factory.mktemp("pds_store")
    prepare(table_jobs(tables, "real"), path, progress=False)
    store = PreparedStore(path)
    _RecordingPDS.fitted_on = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transfer_mod, "PDS", _RecordingPDS)
        records = transfer_pairs(
            store, None, groups={"toy": ["inst_a", "inst_b"]}, baselines=("pls_raw", "snv_sg1_pls"),
            engine="sklearn", seed=0, pds={"window": 5, "n_components": 2},  # what undoes a noiseless shift
        )  # fmt: skip
    return store, records, list(_RecordingPDS.fitted_on)


def _get(records, source, target, k, method):
    (r,) = [
        x
        for x in records
        if (x["source"], x["target_instrument"], x["k"], x["method"]) == (source, target, k, method)
    ]
    return r


def test_pls_pds_repairs_the_planted_pair(planted):
    _, records, _ = planted
    for a, b in [("inst_a", "inst_b"), ("inst_b", "inst_a")]:
        within = _get(records, a, a, 0, "pls_raw")["metrics"]["rmsep"]
        cross = _get(records, a, b, 0, "pls_raw")["metrics"]["rmsep"]
        assert cross > 5 * within, (a, b, within, cross)
        for k in (5, 10):
            pds = _get(records, a, b, k, "pls_raw+pds")
            assert pds["metrics"]["rmsep"] < 0.2 * cross, (a, b, k, cross, pds["metrics"])
            assert pds["metrics"]["rmsep"] < 2.5 * within, (a, b, k, within, pds["metrics"])
            assert pds["params"]["n_transfer"] == k and pds["params"]["pds_window"] == 5
            assert f"PDS on {k} transfer standards, window=5" in pds["note"]
            # the model under PDS is the k = 0 model: A cal only, same components
            assert pds["n_train"] == N_CAL
            k0 = _get(records, a, b, 0, "pls_raw")["params"]["n_components"]
            assert pds["params"]["n_components"] == k0
            snv = _get(records, a, b, k, "snv_sg1_pls+pds")["metrics"]["rmsep"]
            assert np.isfinite(snv)


def test_pds_is_fitted_on_transfer_rows_of_b_only(planted):
    store, records, fitted_on = planted
    corrections = [r for r in records if r["method"] == "pls_raw+pds"]
    assert len(fitted_on) == len(corrections) == 4  # 2 ordered pairs × k = 5, 10
    for name in ("inst_a", "inst_b"):
        assert (store.metadata(name)["sample_id"].to_numpy() == [f"s{i:03d}" for i in range(76)]).all()
    part = store.metadata("inst_a")["partition"].to_numpy()
    for rec, X_slave in zip(corrections, fitted_on, strict=True):
        spectra_b = np.asarray(store.values(rec["target_instrument"]), dtype=np.float64)
        rows = [int(np.flatnonzero((spectra_b == row).all(1))[0]) for row in X_slave]
        assert len(X_slave) == rec["k"]
        assert set(part[rows]) == {"transfer"}
        assert [f"s{i:03d}" for i in rows] == rec["transfer_ids"]
        assert not set(rec["transfer_ids"]) & set(rec["test_ids"])


def test_default_pds_one_component_still_repairs_the_planted_pair(planted):
    """The evaluation's default (one component per window: robust with 5-10 noisy standards)."""
    store, records, _ = planted
    default = transfer_pairs(
        store, None, groups={"toy": ["inst_a", "inst_b"]}, baselines=("pls_raw",), k_values=(0, 10),
        engine="sklearn", seed=0,
    )  # fmt: skip
    for a, b in [("inst_a", "inst_b"), ("inst_b", "inst_a")]:
        cross = _get(default, a, b, 0, "pls_raw")["metrics"]["rmsep"]
        pds = _get(default, a, b, 10, "pls_raw+pds")
        assert pds["params"]["pds_n_components"] == 1
        assert pds["metrics"]["rmsep"] < 0.2 * cross, (a, b, cross, pds["metrics"])
