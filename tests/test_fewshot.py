"""The few-shot section: draws from the train rows only, the same draws for every method, heads that
see exactly n rows, cached classical fits, skipped sizes, metrics.json and the report's curves."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import absorbance_table, tiny_checkpoint

from vitnirs.evaluate import fewshot
from vitnirs.evaluate.baselines import BaselineCache, run_baselines
from vitnirs.evaluate.downstream import fit_head
from vitnirs.evaluate.fewshot import draw_splits, fewshot_summary, fewshot_target, fit_fewshot_head
from vitnirs.evaluate.splits import Split

GRID = np.arange(1100.0, 1500.0, 10.0)  # 40 points


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 40)`` spectra whose band height is the target, and that target."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, n)
    X = 0.3 + c[:, None] * np.exp(-0.5 * ((GRID - 1300) / 40) ** 2) + rng.normal(0, 2e-3, (n, len(GRID)))
    return X, c


def _split(n: int = 60, n_test: int = 20, groups: bool = False) -> Split:
    rows = np.random.default_rng(1).permutation(n)
    train, test = np.sort(rows[n_test:]), np.sort(rows[:n_test])
    return Split("toy", train, test, (train % 6) if groups else None)


def test_draws_stay_in_the_train_rows_and_are_reproducible():
    split = _split(groups=True)
    for n in (10, 25):
        draws = draw_splits(split, n, 5, seed=3)
        assert [len(d.train) for d in draws] == [n] * 5
        for d in draws:
            assert len(np.unique(d.train)) == n
            assert np.isin(d.train, split.train).all()  # never leaves the train rows
            assert not np.isin(d.train, split.test).any()  # never reuses a test row
            np.testing.assert_array_equal(d.test, split.test)
        again = draw_splits(split, n, 5, seed=3)
        assert all(np.array_equal(a.train, b.train) for a, b in zip(draws, again, strict=True))
        assert len({tuple(d.train) for d in draws}) == 5  # distinct draws
    assert not np.array_equal(
        draw_splits(split, 10, 1, seed=3)[0].train, draw_splits(split, 10, 1, seed=4)[0].train
    )
    with pytest.raises(ValueError, match="train rows"):
        draw_splits(split, 40, 1, seed=0)


@pytest.mark.parametrize(
    "n, groups, noise",
    [
        (10, False, 0.3),
        (25, False, 0.1),
        (25, True, 1.0),
        (40, False, 3.0),
        (150, False, 0.5),
        (150, True, 0.2),
    ],
)
def test_fast_heads_choose_and_predict_as_fit_head(n, groups, noise):
    """The closed-form grid search (fit_head's default, so the few-shot heads' and every other
    section's) picks what GridSearchCV over the same grid picks; same predictions."""
    rng = np.random.default_rng(n)
    Z = rng.normal(size=(n + 15, 48)) @ rng.normal(size=(48, 48))  # correlated features
    y = Z[:, :3].sum(axis=1) + rng.normal(0, noise, n + 15)
    g = rng.integers(0, 5, n) if groups else None
    for method in ("ridge", "pls", "kernel_ridge"):
        slow, slow_params = fit_head(method, Z[:n], y[:n], groups=g, seed=2, exhaustive=True)
        fast, fast_params = fit_fewshot_head(method, Z[:n], y[:n], groups=g, seed=2)
        assert fast_params == slow_params, method
        np.testing.assert_allclose(fast.predict(Z[n:]).ravel(), slow.predict(Z[n:]).ravel(), atol=1e-8)


def _counting_baselines(monkeypatch) -> list[np.ndarray]:
    """Replace fewshot's run_baselines by the sklearn engine (no nirs4all start-up) and log each fit's rows."""
    calls: list[np.ndarray] = []

    def spy(X, y, split, **kw):
        calls.append(np.asarray(split.train))
        return run_baselines(X, y, split, engine="sklearn", **kw)

    monkeypatch.setattr(fewshot, "run_baselines", spy)
    return calls


def test_every_method_sees_the_same_n_rows(monkeypatch):
    X, y = _data()
    split = _split()
    Z = np.column_stack(
        [np.arange(len(y)), np.random.default_rng(0).normal(size=(len(y), 7))]
    )  # col 0 = row id
    seen: dict[str, list[tuple]] = {}
    real_fit = fewshot.fit_fewshot_head

    def spy(method, Zn, yn, **kw):
        seen.setdefault(method, []).append(tuple(int(i) for i in Zn[:, 0]))
        assert len(Zn) == len(yn)
        return real_fit(method, Zn, yn, **kw)

    monkeypatch.setattr(fewshot, "fit_fewshot_head", spy)
    calls = _counting_baselines(monkeypatch)
    records, skipped = fewshot_target(
        X, y, split, dataset="toy", target="y_c", features=[("embedding", Z, {})], heads=["ridge", "pls"],
        sizes=[10, 25], draws=3, seed=0, baselines=("pls_raw",),
    )  # fmt: skip
    expected = [tuple(int(r) for r in d.train) for n in (10, 25) for d in draw_splits(split, n, 3, seed=0)]
    assert seen["ridge"] == seen["pls"] == expected  # each head fitted on exactly those n rows
    assert [tuple(int(r) for r in c) for c in calls] == expected  # the classical method on the same draws
    assert not skipped
    rec = next(r for r in records if r["method"] == "embedding+ridge" and r["n"] == 10)
    assert rec["source"] == "embedding" and rec["draws"] == 3 and len(rec["rmsep_draws"]) == 3
    assert rec["rmsep_median"] == pytest.approx(float(np.median(rec["rmsep_draws"])), rel=1e-12)
    assert (rec["n_train_full"], rec["n_test"], rec["protocol"]) == (40, 20, "toy")
    assert {r["method"] for r in records} == {"embedding+ridge", "embedding+pls", "pls_raw"}


def test_classical_draws_are_cached_and_too_large_sizes_skipped(tmp_path, monkeypatch):
    X, y = _data()
    split = _split()
    calls = _counting_baselines(monkeypatch)
    kw = dict(
        dataset="toy", target="y_c", features=[], heads=[], sizes=[10, 40, 50], draws=2, seed=0,
        dataset_hash="h", baselines=("pls_raw", "snv_sg1_pls"),
    )  # fmt: skip
    first, skipped = fewshot_target(X, y, split, cache=BaselineCache(tmp_path / "cache.json"), **kw)
    assert len(calls) == 2 * 2  # n = 10 only: 2 draws × 2 methods
    assert [(s["n"], "40 train rows" in s["reason"]) for s in skipped] == [(40, True), (50, True)]
    assert {r["n"] for r in first} == {10}
    second, _ = fewshot_target(X, y, split, cache=BaselineCache(tmp_path / "cache.json"), **kw)  # a new run
    assert len(calls) == 4  # nothing refitted
    assert [r["rmsep_draws"] for r in second] == [r["rmsep_draws"] for r in first]


def test_summary_ratios_per_n():
    def rec(method, source, n, median, dataset="a", seed=None):
        return {"dataset": dataset, "target": "y", "method": method, "source": source, "n": n,
                "rmsep_median": median, "seed": seed}  # fmt: skip

    records = [
        rec("embedding+ridge", "embedding", 10, 1.0), rec("embedding+pls", "embedding", 10, 0.8),
        rec("untrained+ridge", "untrained", 10, 1.0, seed=0), rec("untrained+ridge", "untrained", 10, 0.6, seed=1),
        rec("pls_raw", "classical", 10, 1.6), rec("aom_pls", "classical", 10, 2.0),
        rec("embedding+ridge", "embedding", 10, 2.0, dataset="b"), rec("pls_raw", "classical", 10, 1.0, dataset="b"),
    ]  # fmt: skip
    (row,) = fewshot_summary(records)
    assert row["n"] == 10
    assert row["embedding_vs_best_classical"] == pytest.approx(np.median([0.8 / 1.6, 2.0 / 1.0]), rel=1e-12)
    assert row["targets_best_classical"] == 2
    assert row["embedding_vs_untrained"] == pytest.approx(0.8 / 0.8, rel=1e-12)  # mean of the seeds' 1.0, 0.6
    assert row["targets_untrained"] == 1


def test_evaluate_writes_the_section_and_the_report_draws_it(tmp_path):
    from vitnirs.config import load_config
    from vitnirs.data.prepare import prepare, table_jobs
    from vitnirs.evaluate.text import evaluation_lines
    from vitnirs.report.html import write_report
    from vitnirs.workflows.evaluation import evaluate

    X, y = _data(50)
    table = absorbance_table(
        "toy", X, GRID, targets={"y_c": y}, metadata={"sample_id": [f"s{i}" for i in range(50)]}
    )
    prepare(table_jobs([table], "real"), tmp_path / "store", progress=False)
    cfg = load_config(None, [
        "evaluation.baseline_methods=[pls_raw]", "evaluation.downstream_methods=[ridge]", "evaluation.repeats=0",
        "evaluation.transfer=false", "evaluation.robustness=false", "evaluation.synthetic_checks=false",
        "evaluation.artefacts=false", "evaluation.untrained_seeds=[0]", "evaluation.classical_control=false",
        "evaluation.fewshot=true", "evaluation.fewshot_sizes=[10, 45]", "evaluation.fewshot_draws=2",
    ])  # fmt: skip
    ckpt = tiny_checkpoint(tmp_path / "run")
    result = evaluate(cfg, checkpoint=ckpt, store=tmp_path / "store", out=tmp_path / "eval", progress=False)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    shots = saved["fewshot"]
    assert {(r["method"], r["n"]) for r in shots} == {
        ("embedding+ridge", 10),
        ("untrained+ridge", 10),
        ("pls_raw", 10),
    }
    assert all(len(r["rmsep_draws"]) == 2 and r["checkpoint"] == result["checkpoint"] for r in shots)
    assert next(r for r in shots if r["method"] == "untrained+ridge")["seed"] == 0
    assert [s["n"] for s in saved["fewshot_skipped"]] == [45]  # 40 train rows of the Kennard–Stone split
    (row,) = saved["fewshot_summary"]
    assert row["n"] == 10 and row["targets_best_classical"] == 1
    assert "few-shot n=10" in evaluation_lines(result)
    html = write_report(tmp_path).read_text()
    assert 'id="fewshot"' in html and 'alt="few-shot learning curves" src="data:image/png;base64,' in html
