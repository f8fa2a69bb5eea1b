"""Phase 0 baselines on a planted signal: y = a band's area (+ noise) under a baseline drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vitnirs.evaluate import baselines as bl
from vitnirs.evaluate.metrics import regression_metrics
from vitnirs.evaluate.splits import Split, make_splits

N, L = 120, 150


def _planted(seed: int = 0, drift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random spectra; y is the area of one band; a random linear+quadratic drift on top."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, L)
    centres = np.linspace(0.05, 0.95, 8)
    amps = rng.uniform(0.2, 1.0, size=(N, 8))
    bands = np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / 0.04) ** 2)  # (8, L)
    X = amps @ bands
    y = amps[:, 3] * bands[3].sum() / L + 0.002 * rng.normal(size=N)
    t = grid - 0.5
    X = X + drift * (
        rng.normal(size=(N, 1)) * 0.5 + rng.normal(size=(N, 1)) * t + rng.normal(size=(N, 1)) * t**2
    )
    X = X + 0.002 * rng.normal(size=X.shape)
    return X, y


@pytest.fixture(scope="module")
def planted():
    X, y = _planted()
    split = make_splits(pd.DataFrame(index=range(N)), X, y, small=0)[0]
    return X, y, split


def test_pls_finds_the_planted_band(planted):
    X, y, split = planted
    (rec,) = bl.run_baselines(X, y, split, methods=["pls_raw"], engine="sklearn")
    mean_pred = regression_metrics(y[split.test], np.full(len(split.test), y[split.train].mean()))
    assert rec["metrics"]["r2"] > 0.9
    assert rec["metrics"]["rmsep"] < 0.3 * mean_pred["rmsep"]
    assert rec["protocol"] == "kennard_stone" and rec["n_train"] == 96 and rec["n_test"] == 24
    assert 1 <= rec["params"]["n_components"] <= bl.MAX_PLS


def _scattered(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = a band's share of the total; multiplicative scatter and a baseline drift on X."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, L)
    centres = np.linspace(0.05, 0.95, 8)
    amps = rng.uniform(0.2, 1.0, size=(N, 8))
    pure = amps @ np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / 0.04) ** 2)
    t = grid - 0.5
    drift = rng.normal(size=(N, 1)) * 0.5 + rng.normal(size=(N, 1)) * t + rng.normal(size=(N, 1)) * t**2
    X = rng.uniform(0.7, 1.3, size=(N, 1)) * pure + 0.3 * drift + 0.002 * rng.normal(size=(N, L))
    return X, amps[:, 3] / amps.sum(axis=1)


def test_asls_snv_not_much_worse_than_raw_under_drift():
    X, y = _scattered()
    split = make_splits(pd.DataFrame(index=range(N)), X, y, small=0)[0]
    methods = ["pls_raw", "asls_snv_pls", "snv_sg1_pls"]
    recs = {
        r["method"]: r["metrics"] for r in bl.run_baselines(X, y, split, methods=methods, engine="sklearn")
    }
    assert recs["asls_snv_pls"]["rmsep"] < 1.25 * recs["pls_raw"]["rmsep"]
    assert recs["asls_snv_pls"]["r2"] > 0.9


def test_pls_prefix_cv_equals_refits(planted):
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.model_selection import KFold

    X, y, split = planted
    Xtr, ytr = X[split.train], y[split.train]
    cv = KFold(4, shuffle=True, random_state=0)
    _, curve = bl._pls_select(Xtr, ytr, cv, 6)
    for k in (1, 3, 6):
        sse = 0.0
        for tr, va in cv.split(Xtr):
            p = PLSRegression(n_components=k, scale=False).fit(Xtr[tr], ytr[tr]).predict(Xtr[va]).ravel()
            sse += np.sum((p - ytr[va]) ** 2)
        assert curve[k - 1] == pytest.approx(np.sqrt(sse / len(ytr)), rel=1e-8)


def test_selection_never_sees_test_rows(planted):
    X, y, split = planted
    rng = np.random.default_rng(1)
    X2, y2 = X.copy(), y.copy()
    y2[split.test] = rng.normal(size=len(split.test)) * 100
    X2[split.test] = rng.normal(size=(len(split.test), L))
    methods = ["pls_raw", "asls_snv_pls", "pca_ridge", "krr_raw"]
    a = bl.run_baselines(X, y, split, methods=methods, engine="sklearn", return_predictions=True)
    b = bl.run_baselines(X2, y2, split, methods=methods, engine="sklearn", return_predictions=True)
    for ra, rb in zip(a, b, strict=True):
        assert ra["params"] == rb["params"], ra["method"]
    # Same train fit: with the true test spectra back, predictions are identical.
    c = bl.run_baselines(np.where(np.isin(np.arange(N), split.test)[:, None], X, X2), y2, split, methods=methods,
                         engine="sklearn", return_predictions=True)  # fmt: skip
    for ra, rc in zip(a, c, strict=True):
        np.testing.assert_allclose(ra["y_pred"], rc["y_pred"], rtol=1e-10, atol=1e-12)


def test_groups_drive_inner_cv():
    groups = np.repeat([0, 1, 2, 3], 5)
    cv = bl.inner_cv(20, groups, seed=0)
    for tr, va in cv.split(np.zeros((20, 1))):
        assert not set(groups[tr]) & set(groups[va])
    assert cv.get_n_splits() == 4


def test_nirs4all_run_writes_nothing_and_matches_sklearn(planted, tmp_path, monkeypatch):
    X, y, split = planted
    monkeypatch.chdir(tmp_path)
    methods = ["snv_sg1_pls", "pca_ridge"]
    a = bl.run_baselines(X, y, split, methods=methods, engine="nirs4all", return_predictions=True)
    assert list(tmp_path.iterdir()) == []
    b = bl.run_baselines(X, y, split, methods=methods, engine="sklearn", return_predictions=True)
    for ra, rb in zip(a, b, strict=True):
        assert ra["params"] == rb["params"]
        np.testing.assert_allclose(
            ra["y_pred"], rb["y_pred"], rtol=1e-4, atol=1e-5
        )  # nirs4all holds X as float32


def test_nonlinear_and_class_baselines(planted):
    X, y, split = planted
    recs = bl.run_baselines(X, y, split, methods=["svr_snv_sg1", "krr_snv_sg1"], engine="sklearn")
    assert all(r["metrics"]["r2"] > 0.5 for r in recs)
    labels = np.where(y > np.median(y), "high", "low").astype(object)
    (rec,) = bl.run_baselines(X, labels, split)
    assert rec["method"] == "logreg_snv_sg1"
    assert rec["metrics"]["balanced_accuracy"] > 0.7
    with pytest.raises(ValueError, match="regression method"):
        bl.run_baselines(X, labels, split, methods=["pls_raw"])


def test_aom_runs_on_planted_data(planted):
    pytest.importorskip("aom_nirs", reason="nirs4all-aom is not installed: pip install nirs4all-aom")
    X, y, split = planted
    recs = bl.run_baselines(X, y, split, methods=["aom_pls", "aom_ridge"], aom_bank="compact")
    for r in recs:
        assert r["metrics"]["r2"] > 0.8, r
    assert recs[0]["params"]["n_components"] >= 1
    assert recs[1]["params"]["alpha"] > 0


def test_cache_returns_identical_records_without_refit(planted, tmp_path, monkeypatch):
    X, y, split = planted
    calls: list[list[str]] = []
    real = bl.run_baselines

    def counting(*args, **kwargs):
        calls.append(list(kwargs["methods"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(bl, "run_baselines", counting)
    path = tmp_path / "cache.json"
    splits = [split, Split("random_rep_0", split.train[:50], split.test)]
    first = bl.cached_baselines(
        bl.BaselineCache(path), "h1", "y", X, y, splits, ["pls_raw"], engine="sklearn"
    )
    assert calls == [["pls_raw"], ["pls_raw"]]
    again = bl.cached_baselines(
        bl.BaselineCache(path), "h1", "y", X, y, splits, ["pls_raw"], engine="sklearn"
    )
    assert calls == [["pls_raw"], ["pls_raw"]], "second evaluation must not refit"
    assert again == first
    assert first[0]["target"] == "y" and first[1]["protocol"] == "random_rep_0"
    bl.cached_baselines(
        bl.BaselineCache(path), "h1", "y", X, y, splits[:1], ["pls_raw", "pca_ridge"], engine="sklearn"
    )
    assert calls[-1] == ["pca_ridge"]
    bl.cached_baselines(bl.BaselineCache(path), "h2", "y", X, y, splits[:1], ["pls_raw"], engine="sklearn")
    assert len(calls) == 4, "another dataset hash is another key"


def _rec(method: str, rmsep: float) -> dict:
    return {"method": method, "protocol": "native", "metrics": {"rmsep": rmsep}}


def test_best_classical_and_overall():
    recs = [_rec("pls_raw", 0.3), _rec("aom_ridge", 0.2), _rec("krr_raw", 0.1), _rec("svr_raw", float("nan"))]
    assert bl.best_classical(recs)["method"] == "aom_ridge"
    assert bl.best_overall(recs)["method"] == "krr_raw"
    assert bl.best_classical([_rec("krr_raw", 0.1)]) is None
