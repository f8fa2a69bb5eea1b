"""Upstream-ready parts: every example of docs/upstream.md runs, and LODOSplitter is checked directly
(folds, dataset subset, bad groups, scikit-learn CV, nirs4all split step on both engines)."""

from __future__ import annotations

import doctest
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score, cross_validate

import vitnirs.batching.masking
import vitnirs.batching.sampler
import vitnirs.lodo_splitter
from vitnirs.lodo_splitter import LODOSplitter, register_with_nirs4all

DOC = Path(__file__).resolve().parents[1] / "docs" / "upstream.md"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


BLOCKS = python_blocks(DOC.read_text(encoding="utf-8"))


def test_every_proposal_has_a_runnable_example() -> None:
    assert len(BLOCKS) >= 4
    for name in ("LODOSplitter", "DatasetSampler", "block_mask", "PreparedStore"):
        assert any(name in block for block in BLOCKS), f"no example uses {name}"
    assert python_blocks("x\n```python\na = 1\n```\n```text\nb\n```\n") == ["a = 1\n"]  # the extractor


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread) -> None:
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir(), tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # the examples' tempfile.mkdtemp() lands here
    exec(compile(BLOCKS[index], f"docs/upstream.md[python block {index}]", "exec"), {"__name__": "example"})
    assert list(cwd.iterdir()) == []  # examples write only to their own temporary folders


def test_a_failing_example_fails() -> None:
    """The runner above would catch a wrong claim: an example's assert raises."""
    broken = BLOCKS[0].replace("assert np.argmin(lodo) == 2", "assert np.argmin(lodo) == 0")
    assert broken != BLOCKS[0]
    with pytest.raises(AssertionError):
        exec(compile(broken, "broken", "exec"), {"__name__": "example"})


@pytest.mark.parametrize(
    "module", [vitnirs.lodo_splitter, vitnirs.batching.sampler, vitnirs.batching.masking]
)
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --- LODOSplitter, directly ------------------------------------------------------------


def interleaved_groups(seed: int = 0) -> np.ndarray:
    """(90,) labels of 4 datasets of unequal sizes, rows shuffled."""
    sizes = {"corn_m5": 30, "tablets": 40, "milk": 15, "beer": 5}
    labels = np.concatenate([[name] * n for name, n in sizes.items()])
    return np.random.default_rng(seed).permutation(labels)


def test_each_fold_holds_out_exactly_one_dataset_and_every_row_is_tested_once() -> None:
    groups = interleaved_groups()
    X = np.zeros((len(groups), 3))
    splitter = LODOSplitter()
    folds = list(splitter.split(X, groups=groups))
    assert len(folds) == splitter.get_n_splits(groups=groups) == 4
    tested = np.zeros(len(groups), dtype=int)
    held_out = []
    for train, test in folds:
        (name,) = set(groups[test])  # one dataset ...
        assert set(test) == set(np.flatnonzero(groups == name))  # ... all of its rows
        assert name not in set(groups[train])
        assert sorted([*train, *test]) == list(range(len(groups)))  # train is everything else
        tested[test] += 1
        held_out.append(name)
    assert (tested == 1).all()
    assert held_out == sorted(held_out)  # sorted label order


def test_dataset_subset_holds_out_only_those_in_the_given_order() -> None:
    groups = interleaved_groups(1)
    X = np.zeros((len(groups), 3))
    splitter = LODOSplitter(datasets=["milk", "corn_m5", "milk"])  # duplicate ignored
    folds = list(splitter.split(X, groups=groups))
    assert splitter.get_n_splits() == splitter.get_n_splits(groups=groups) == len(folds) == 2
    assert [set(groups[test]) for _, test in folds] == [{"milk"}, {"corn_m5"}]
    for train, test in folds:
        assert {"tablets", "beer"} <= set(groups[train])  # never held out, always trained on
        assert len(train) + len(test) == len(groups)


@pytest.mark.parametrize(
    "groups",
    [
        np.array([3, 1, 3, 2, 1, 2]),
        pd.Series(["b", "a", "b", "c", "a", "c"], dtype="category"),
        [("x", 1), ("x", 0), ("x", 1), ("y", 0), ("x", 0), ("y", 0)],  # multi-column group_by: tuples
    ],
)
def test_label_kinds(groups) -> None:
    if isinstance(groups, list):  # nirs4all passes tuples as a 1-D object array
        labels = np.empty(len(groups), dtype=object)
        labels[:] = groups
        groups = labels
    tests = [test.tolist() for _, test in LODOSplitter().split(np.zeros((6, 2)), groups=groups)]
    assert sorted(map(sorted, tests)) == [[0, 2], [1, 4], [3, 5]]


@pytest.mark.parametrize(
    ("splitter", "groups", "message"),
    [
        (LODOSplitter(), None, "groups=None"),
        (LODOSplitter(), ["a", "b", "a"], "3 labels for 4 rows"),
        (LODOSplitter(), ["a", None, "b", "b"], "1 missing label"),
        (LODOSplitter(), [1.0, np.nan, 2.0, np.nan], "2 missing label"),
        (LODOSplitter(), ["a", "a", "a", "a"], "at least 2 datasets"),
        (LODOSplitter(), np.zeros((4, 2)), "1-D"),
        (LODOSplitter(datasets=["a", "zz"]), ["a", "b", "a", "b"], r"\['zz'\] are not labels"),
        (LODOSplitter(datasets="a"), ["a", "b", "a", "b"], r"datasets=\['a'\]"),
        (LODOSplitter(datasets=[]), ["a", "b", "a", "b"], "datasets is empty"),
    ],
)
def test_bad_groups_raise_a_clear_error(splitter: LODOSplitter, groups, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        list(splitter.split(np.zeros((4, 2)), groups=groups))


def test_get_n_splits_needs_groups_without_a_subset() -> None:
    with pytest.raises(ValueError, match="groups=None"):
        LODOSplitter().get_n_splits()
    assert repr(LODOSplitter(datasets=["a"])) == "LODOSplitter(datasets=['a'])"


def shifted_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (60, 16), y (60,), groups (60,): y = x0 + noise, plus a bias of 1.0 in dataset 'b'."""
    rng = np.random.default_rng(seed)
    groups = rng.permutation(np.repeat(["a", "b", "c"], 20))
    X = rng.normal(size=(60, 16)).astype(np.float32)
    y = X[:, 0] + 0.1 * rng.normal(size=60) + 1.0 * (groups == "b")
    return X, y, groups


def test_cross_val_score_matches_leave_one_group_out_and_finds_the_shifted_dataset() -> None:
    X, y, groups = shifted_problem()
    scoring = "neg_root_mean_squared_error"
    ours = cross_val_score(Ridge(), X, y, cv=LODOSplitter(), groups=groups, scoring=scoring)
    reference = cross_val_score(Ridge(), X, y, cv=LeaveOneGroupOut(), groups=groups, scoring=scoring)
    np.testing.assert_allclose(ours, reference)
    assert np.argmin(ours) == 1  # dataset 'b' (sorted order a, b, c) carries the planted bias
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):  # groups routed to the splitter
        routed = cross_validate(
            Ridge(), X, y, cv=LODOSplitter(datasets=["b"]), params={"groups": groups}, scoring=scoring
        )
    np.testing.assert_allclose(routed["test_score"], ours[1:2])


def manual_lodo_rmse(X: np.ndarray, y: np.ndarray, groups: np.ndarray, name: str) -> float:
    test = groups == name
    pred = Ridge().fit(X[~test], y[~test]).predict(X[test])
    return float(np.sqrt(np.mean((pred - y[test]) ** 2)))


def spectro_dataset(X: np.ndarray, y: np.ndarray, groups: np.ndarray):
    from nirs4all.data import SpectroDataset

    ds = SpectroDataset("three_sites")
    ds.add_samples(
        X, {"partition": "train"}, headers=[str(1100 + 10 * i) for i in range(X.shape[1])], header_unit="nm"
    )
    ds.add_targets(y)
    ds.add_metadata(pd.DataFrame({"dataset": groups}))
    return ds


def run_lodo(ds, splitter: LODOSplitter, **kwargs) -> dict[str, tuple[np.ndarray, float]]:
    """nirs4all.run of [LODO split on 'dataset', Ridge] -> {fold_id: (held-out rows, RMSE)}.

    Folds are scored on the ``val`` partition; the legacy engine turns a one-fold split into
    its train/test holdout, scored on ``test``.
    """
    import nirs4all

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = nirs4all.run(
            pipeline=[{"split": splitter, "group_by": "dataset"}, Ridge()],
            dataset=ds,
            verbose=0,
            save_artifacts=False,
            refit=False,
            **kwargs,
        )
    return {
        p["fold_id"]: (np.asarray(p["sample_indices"]), p[f"{p['partition']}_score"])
        for p in result.predictions.filter_predictions()
        if str(p["fold_id"]).isdigit() and p["partition"] in ("val", "test")
    }


@pytest.mark.parametrize("engine", ["dag-ml", "legacy"])
def test_nirs4all_split_step_holds_out_each_dataset(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    X, y, groups = shifted_problem(2)
    ds = spectro_dataset(X, y, groups)
    kwargs = {"engine": "legacy", "workspace_path": str(tmp_path / "ws")} if engine == "legacy" else {}
    folds = run_lodo(ds, LODOSplitter(), **kwargs)
    assert sorted(folds) == ["0", "1", "2"]
    seen, scores = [], {}
    for fold_id in sorted(folds):
        rows, rmse = folds[fold_id]
        (name,) = set(groups[rows])
        assert sorted(rows) == np.flatnonzero(groups == name).tolist()  # exactly one dataset
        assert rmse == pytest.approx(manual_lodo_rmse(X, y, groups, name), rel=1e-4)
        seen.append(name)
        scores[name] = rmse
    assert seen == ["a", "b", "c"]
    assert max(scores, key=scores.get) == "b"  # the planted bias is found
    if engine == "dag-ml":
        assert list(tmp_path.iterdir()) == []  # save_artifacts=False writes nothing

    subset = run_lodo(ds, LODOSplitter(datasets=["c", "a"]), **kwargs)  # needs the real labels
    assert [set(groups[subset[k][0]]) for k in sorted(subset)] == [{"c"}, {"a"}]
    (only,) = run_lodo(ds, LODOSplitter(datasets=["c"]), **kwargs).values()
    assert set(groups[only[0]]) == {"c"} and only[1] == pytest.approx(scores["c"], rel=1e-4)


def test_without_registration_nirs4all_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from nirs4all.controllers.splitters import split as controller

    assert register_with_nirs4all() and register_with_nirs4all()  # idempotent
    assert controller.get_split_grouping_capability(LODOSplitter()).group_handling == "native"
    monkeypatch.delitem(controller._SPLITTER_GROUPING_CAPABILITIES, "LODOSplitter")
    X, y, groups = shifted_problem(3)
    with pytest.raises(Exception, match="got groups=None"):  # wrapped: averaged rows, no labels
        run_lodo(spectro_dataset(X, y, groups), LODOSplitter())
