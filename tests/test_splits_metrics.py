"""The split protocol and the metrics, on tiny hand-made data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vitnirs.evaluate.metrics import classification_metrics, regression_metrics, summarise
from vitnirs.evaluate.splits import class_targets, make_splits, regression_targets


def _data(n: int, L: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, L)).cumsum(axis=1)
    return X, X[:, 3] + 0.1 * rng.normal(size=n)


def _disjoint(split) -> None:
    assert len(np.intersect1d(split.train, split.test)) == 0
    assert len(split.train) and len(split.test)


def test_native_partition_used_and_transfer_excluded():
    X, y = _data(12)
    md = pd.DataFrame({"partition": ["cal"] * 6 + ["test"] * 3 + ["transfer"] * 3})
    splits = make_splits(md, X, y, n_repeats=2, small=200)
    native = splits[0]
    assert native.name == "native"
    assert native.train.tolist() == list(range(6))
    assert native.test.tolist() == [6, 7, 8]
    assert "transfer" in native.note
    assert [s.name for s in splits[1:]] == ["random_rep_0", "random_rep_1"]
    for s in splits:
        _disjoint(s)
        assert not ({9, 10, 11} & (set(s.train) | set(s.test)))


def test_kennard_stone_without_partition_is_deterministic():
    X, y = _data(60)
    md = pd.DataFrame({"sample_id": range(60)})
    a = make_splits(md, X, y, small=10)
    b = make_splits(md, X, y, small=10, seed=5)
    assert [s.name for s in a] == ["kennard_stone"]
    assert len(a[0].test) == 12 and len(a[0].train) == 48
    np.testing.assert_array_equal(a[0].train, b[0].train)
    np.testing.assert_array_equal(a[0].test, b[0].test)
    _disjoint(a[0])
    assert a[0].groups is None
    spxy = make_splits(md, X, y, small=10, method="spxy")[0]
    assert spxy.name == "spxy"
    _disjoint(spxy)


def test_random_above_large_with_note():
    X, y = _data(50)
    md = pd.DataFrame(index=range(50))
    s = make_splits(md, X, y, large=40, small=10)
    assert [x.name for x in s] == ["random"]
    assert "O(n³)" in s[0].note and "40" in s[0].note
    _disjoint(s[0])
    assert len(s[0].train) + len(s[0].test) == 50


def test_repeated_random_below_small_are_seeded_and_distinct():
    X, y = _data(40)
    md = pd.DataFrame(index=range(40))
    s = make_splits(md, X, y, small=200, n_repeats=3, seed=1)
    assert [x.name for x in s] == ["kennard_stone", "random_rep_0", "random_rep_1", "random_rep_2"]
    again = make_splits(md, X, y, small=200, n_repeats=3, seed=1)
    for x, z in zip(s, again, strict=True):
        np.testing.assert_array_equal(x.test, z.test)
        _disjoint(x)
    assert s[1].test.tolist() != s[2].test.tolist()
    assert len(make_splits(md, X, y, small=40)) == 1  # n == small: no repeats


def test_missing_y_rows_excluded_indices_original():
    X, y = _data(30)
    y[[0, 5, 29]] = np.nan
    md = pd.DataFrame({"partition": ["cal"] * 20 + ["test"] * 10})
    for s in make_splits(md, X, y, n_repeats=2):
        assert not ({0, 5, 29} & (set(s.train) | set(s.test)))
        assert len(s.train) + len(s.test) == 27
    s = make_splits(pd.DataFrame(index=range(30)), X, y, small=0)[0]
    assert not ({0, 5, 29} & (set(s.train) | set(s.test)))
    assert "3 rows without target dropped" in s.note


def test_fold_column_gives_groups_of_train_rows():
    X, y = _data(40)
    md = pd.DataFrame({"fold": np.arange(40) % 4})
    for s in make_splits(md, X, y, n_repeats=2):
        assert s.groups is not None
        np.testing.assert_array_equal(s.groups, md["fold"].to_numpy()[s.train])


def test_bad_method_and_length_mismatch():
    X, y = _data(10)
    with pytest.raises(ValueError, match="unknown split method"):
        make_splits(pd.DataFrame(index=range(10)), X, y, method="duplex")
    with pytest.raises(ValueError, match="rows"):
        make_splits(pd.DataFrame(index=range(9)), X, y)


def test_target_kinds():
    t = pd.DataFrame({"y_oil": [1.0, np.nan, 3.0], "y_kind": ["a", None, "b"], "other": [1, 2, 3]})
    md = pd.DataFrame({"class": ["x", "y", "x"], "fold": [0, 1, 2]})
    reg = regression_targets(t)
    assert list(reg) == ["y_oil"] and np.isnan(reg["y_oil"][1])
    cls = class_targets(t, md)
    assert list(cls) == ["y_kind", "class"]
    assert cls["y_kind"].tolist() == ["a", None, "b"]
    assert cls["class"].tolist() == ["x", "y", "x"]


def test_regression_metrics_exact():
    yt = np.array([1.0, 2.0, 3.0, 4.0])
    yp = np.array([1.5, 2.0, 2.5, 5.0])
    m = regression_metrics(yt, yp)
    rmsep = math.sqrt((0.25 + 0 + 0.25 + 1) / 4)
    assert m["rmsep"] == pytest.approx(rmsep)
    assert m["r2"] == pytest.approx(1 - 1.5 / 5.0)
    assert m["rpd"] == pytest.approx(np.std(yt, ddof=1) / rmsep)
    assert m["bias"] == pytest.approx(0.25)
    assert m["n"] == 4
    perfect = regression_metrics(yt, yt)
    assert perfect["rmsep"] == 0 and perfect["r2"] == 1 and math.isinf(perfect["rpd"])
    assert math.isnan(regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"])
    with pytest.raises(ValueError):
        regression_metrics([1.0, 2.0], [1.0])


def test_classification_metrics_exact():
    yt = np.array(["a", "a", "a", "b"], dtype=object)
    yp = np.array(["a", "a", "a", "a"], dtype=object)
    m = classification_metrics(yt, yp)
    assert m == {"accuracy": 0.75, "balanced_accuracy": 0.5, "n": 4}


def test_summarise_groups_repeats():
    recs = [
        {
            "method": "pls",
            "protocol": f"random_rep_{k}",
            "n_train": 8,
            "n_test": 2,
            "metrics": {"rmsep": v, "n": 2},
        }
        for k, v in enumerate([1.0, 2.0, 3.0])
    ]
    recs.append(
        {"method": "pls", "protocol": "native", "n_train": 6, "n_test": 4, "metrics": {"rmsep": 5.0, "n": 4}}
    )
    out = summarise(recs)
    assert [(o["protocol"], o["n_splits"]) for o in out] == [("random_rep", 3), ("native", 1)]
    assert out[0]["metrics"]["rmsep"] == pytest.approx(2.0)
    assert out[0]["std"]["rmsep"] == pytest.approx(1.0)
    assert out[1]["std"]["rmsep"] == 0.0
    assert "n" not in out[0]["metrics"]
