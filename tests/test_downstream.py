"""Heads on a frozen embedding: planted signal found, test rows never used for any choice."""

from __future__ import annotations

import numpy as np
import pytest

from vitnirs.evaluate import downstream
from vitnirs.evaluate.downstream import cv_splits, run_heads

KEYS = {"method", "n_train", "n_test", "metrics", "params", "seconds", "skipped"}


def planted(n: int = 160, D: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``Z (n, D)`` whose first 3 dims carry a linear signal; y = that signal + small noise."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, D))
    y = Z[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.1 * rng.normal(size=n)
    return Z, y


def split(n: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def test_linear_heads_find_planted_signal():
    Z, y = planted()
    train, test = split(len(Z), 40)
    recs = run_heads(Z, y, train, test, methods=("ridge", "pls"), seed=0)
    assert [r["method"] for r in recs] == ["ridge", "pls"]
    for r in recs:
        assert set(r) == KEYS and r["skipped"] is None
        assert (r["n_train"], r["n_test"]) == (120, 40)
        assert r["metrics"]["r2"] > 0.9, r
        assert set(r["metrics"]) >= {"rmsep", "r2", "rpd", "bias", "n"}
    assert 1 <= recs[1]["params"]["n_components"] <= 20


def test_nonlinear_heads_run_and_learn():
    Z, y = planted(n=120, D=8)
    train, test = split(len(Z), 30)
    recs = run_heads(Z, y, train, test, methods=("kernel_ridge", "mlp"), seed=0)
    assert {"alpha", "gamma"} <= set(recs[0]["params"])
    for r in recs:
        assert r["metrics"]["r2"] > 0.5, r


def test_cv_never_sees_test_rows():
    Z, y = planted()
    train, test = split(len(Z), 40)
    garbage = y.copy()
    garbage[test] = np.random.default_rng(9).normal(scale=100.0, size=len(test))
    for method in ("ridge", "pls"):
        a = run_heads(Z, y, train, test, methods=(method,))[0]
        b = run_heads(Z, garbage, train, test, methods=(method,))[0]
        assert a["params"] == b["params"], method
        # same fitted model: the predictions (hence the residuals against the true y) agree
        assert b["metrics"]["rmsep"] > 10 * a["metrics"]["rmsep"]
    with pytest.raises(ValueError, match="overlap"):
        run_heads(Z, y, train, train[:5])


def test_groups_give_group_kfold():
    y = np.arange(30.0)
    groups = np.repeat([0, 1, 2], 10)
    folds = cv_splits(y, groups, seed=0)
    assert len(folds) == 3
    for fit, val in folds:
        assert not set(groups[fit]) & set(groups[val])
    Z, yy = planted(n=60)
    train, test = np.arange(45), np.arange(45, 60)
    g_all = np.repeat(np.arange(12), 5)
    a = run_heads(Z, yy, train, test, groups=g_all, methods=("ridge",))[0]
    b = run_heads(Z, yy, train, test, groups=g_all[train], methods=("ridge",))[0]
    assert a["params"] == b["params"] and a["metrics"] == b["metrics"]


def test_classification_head_well_above_chance():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["a", "b", "c"]), 40)
    centres = {"a": (0.0, 0.0), "b": (5.0, 0.0), "c": (0.0, 5.0)}  # separable: 5 sd apart
    Z = rng.normal(size=(120, 10))
    Z[:, :2] += np.array([centres[c] for c in labels])
    train, test = split(120, 30)
    recs = run_heads(Z, labels, train, test, task="classification", seed=0)
    assert [r["method"] for r in recs] == ["logistic", "mlp"]
    assert recs[0]["metrics"]["accuracy"] > 0.9 and "C" in recs[0]["params"]  # chance: 1/3
    assert recs[1]["metrics"]["accuracy"] > 0.8
    with pytest.raises(ValueError, match="does not apply"):
        run_heads(Z, labels, train, test, task="classification", methods=("pls",))


def test_tabpfn_absent_is_skipped_with_message(monkeypatch):
    monkeypatch.setattr(downstream, "tabpfn_status", lambda task="regression": (None, "TabPFN skipped: pip"))
    Z, y = planted(n=60)
    train, test = split(60, 15)
    (rec,) = run_heads(Z, y, train, test, methods=("tabpfn",))
    assert rec["metrics"] is None and rec["skipped"].startswith("TabPFN skipped")


def test_tabpfn_status_never_downloads():
    path, reason = downstream.tabpfn_status()
    assert path is not None or ("pip install tabpfn" in reason and "never downloads" in reason)


def test_ridge_on_near_collinear_embeddings_is_quiet_and_exact():
    """n < D, a large common part and tiny deviations (as the shipped embeddings): the ridge head
    solves every alpha of its grid without a singular system (no warning at all) and finds the signal."""
    import warnings

    rng = np.random.default_rng(3)
    n, D = 40, 64
    latent = rng.normal(size=(n, 3))
    Z = (0.57 + 0.004 * (latent @ rng.normal(size=(3, D)))).astype(np.float32)  # rank 3, float32 as embedded
    y = latent @ np.array([1.0, -0.5, 0.25]) + 0.01 * rng.normal(size=n)
    train, test = split(n, 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _ = downstream.fit_head("ridge", Z[train], y[train], seed=0)  # float32, as transfer passes it
    assert not [str(w.message) for w in caught], [str(w.message) for w in caught][:3]
    pred = model.predict(Z[test])
    assert 1 - np.sum((pred - y[test]) ** 2) / np.sum((y[test] - y[test].mean()) ** 2) > 0.9
