"""The evaluation suite end to end on a tiny store: regression and class targets side by side,
the same splits for every method, the summary's verdict, and the console lines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import absorbance_table, tiny_checkpoint

from vitnirs.config import load_config
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.table import SpectralTable
from vitnirs.evaluate.text import evaluation_lines
from vitnirs.workflows.evaluation import evaluate, evaluation_tasks

GRID = np.arange(1100.0, 1700.0, 10.0)


def _table(n: int = 90, seed: int = 0) -> SpectralTable:
    """y_c = height of a band at 1400 nm; class = which of two bands (1250 / 1550 nm) is present."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, n)
    cls = rng.integers(0, 2, n)
    band = lambda mu, w: np.exp(-0.5 * ((GRID - mu) / w) ** 2)  # noqa: E731
    X = 0.3 + c[:, None] * band(1400, 30) + np.where(cls[:, None] == 1, band(1550, 25), band(1250, 25)) * 0.5
    X = X + rng.normal(0, 2e-3, X.shape)
    return absorbance_table(
        "toy",
        X,
        GRID,
        targets={"y_c": c},
        metadata={"sample_id": [f"s{i}" for i in range(n)], "class": np.where(cls, "b", "a")},
    )


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    prepare(table_jobs([_table()], "real"), root / "store", progress=False)
    ckpt = tiny_checkpoint(root / "run")
    cfg = load_config(None, [
        "evaluation.baseline_methods=[pls_raw, snv_sg1_pls]", "evaluation.downstream_methods=[ridge, logistic]",
        "evaluation.repeats=0", "evaluation.transfer=false", "evaluation.robustness=false",
        "evaluation.synthetic_checks=false",
    ])  # fmt: skip
    return evaluate(cfg, checkpoint=ckpt, store=root / "store", out=root / "eval", progress=False), root, cfg


def test_tasks_include_the_class_column(result):
    from vitnirs.data.store import PreparedStore

    _, root, cfg = result
    assert evaluation_tasks(PreparedStore(root / "store"), cfg) == [
        ("toy", "y_c", "regression"),
        ("toy", "class", "classification"),
    ]


def test_class_target_gets_class_methods_on_the_same_split(result):
    res, _, _ = result
    cls_base = [r for r in res["baselines"] if r["target"] == "class"]
    cls_down = [r for r in res["downstream"] if r["target"] == "class"]
    assert {r["method"] for r in cls_base} == {"logreg_snv_sg1"}
    assert {r["method"] for r in cls_down} == {"embedding+logistic"}  # ridge is not a classifier
    for r in cls_base + cls_down:
        assert set(r["metrics"]) >= {"accuracy", "balanced_accuracy"}
        assert (r["protocol"], r["n_train"], r["n_test"]) == ("kennard_stone", 72, 18)
    # two bands 300 nm apart, SNV + derivative + logistic regression must separate them
    assert cls_base[0]["metrics"]["balanced_accuracy"] > 0.9
    reg = [r for r in res["baselines"] if r["target"] == "y_c"]
    assert {r["method"] for r in reg} == {"pls_raw", "snv_sg1_pls"}
    assert min(r["metrics"]["rmsep"] for r in reg) < 0.05  # the planted band height


def test_summary_verdicts_and_schema(result):
    res, root, _ = result
    rows = {r["target"]: r for r in res["summary"]}
    assert rows["class"]["task"] == "classification"
    be, bc = rows["class"]["best_embedding"], rows["class"]["best_classical"]
    assert rows["class"]["embedding_vs_best_classical"] == pytest.approx(
        be["balanced_accuracy"] / bc["balanced_accuracy"], abs=1e-3
    )
    assert rows["class"]["embedding_wins"] == (be["balanced_accuracy"] > bc["balanced_accuracy"])
    reg = rows["y_c"]
    assert reg["embedding_wins"] == (reg["best_embedding"]["rmsep"] < reg["best_classical"]["rmsep"])
    saved = json.loads((root / "eval" / "metrics.json").read_text())
    for section in ("baselines", "downstream", "lodo", "transfer", "synthetic_checks", "robustness"):
        assert isinstance(saved[section], list)
    for r in saved["baselines"] + saved["downstream"]:
        assert {"dataset", "target", "method", "protocol", "n_train", "n_test", "metrics", "std",
                "checkpoint", "bank"} <= set(r)  # fmt: skip
    text = evaluation_lines(res)
    assert "toy/class" in text and "balanced accuracy" in text
    assert any(v in text for v in ("embedding better", "embedding worse", "level"))
    # the untrained control: the same heads, the same splits, the network never trained
    ctrl = saved["controls"]
    assert ctrl and {r["method"].split("+")[0] for r in ctrl} == {"untrained", "snv_sg1"}
    for prefix in ("untrained", "snv_sg1"):
        assert {
            (r["dataset"], r["target"], r["protocol"]) for r in ctrl if r["method"].startswith(prefix)
        } == {(r["dataset"], r["target"], r["protocol"]) for r in saved["downstream"]}
    assert reg["best_snv_sg1_features"]["method"].startswith("snv_sg1+")
    assert reg["embedding_vs_snv_sg1_features"] == pytest.approx(
        reg["best_embedding"]["rmsep"] / reg["best_snv_sg1_features"]["rmsep"], abs=1e-3
    )
    assert reg["pretrained_vs_untrained"] == pytest.approx(
        reg["best_embedding"]["rmsep"] / reg["best_untrained"]["rmsep"], abs=1e-3
    )
    assert "untrained" in text and saved["metadata"] == "unknown"


def test_summary_rows_carry_the_untrained_control():
    from vitnirs.evaluate.summary import summary_rows

    tag = {"dataset": "d", "target": "y_a", "protocol": "native", "split": "native", "task": "regression"}

    def rec(method, rmsep):
        return {**tag, "method": method, "metrics": {"rmsep": rmsep, "r2": 0.5}, "n_train": 10, "n_test": 5}

    baselines = [rec("pls_raw", 1.0)]
    downstream = [rec("embedding+ridge", 0.8), rec("embedding+pls", 0.9)]
    controls = [rec("untrained+ridge", 0.64), rec("untrained+pls", 1.2)]
    (row,) = summary_rows(baselines, downstream, controls)
    assert row["best_untrained"]["method"] == "untrained+ridge"
    assert row["pretrained_vs_untrained"] == pytest.approx(1.25)  # pretraining made it worse here
    assert "best_untrained" not in summary_rows(baselines, downstream)[0]


def test_the_readout_switch_reaches_every_embedding(result):
    res, root, cfg = result
    other = cfg.model_copy(deep=True)
    other.evaluation.readout = "mean+std"
    other.evaluation.untrained_control = False
    doubled = evaluate(other, checkpoint=res["checkpoint"], store=root / "store", out=root / "eval_std",
                       progress=False)  # fmt: skip
    assert res["embedding_dim"] == 32 and doubled["embedding_dim"] == 64 and doubled["readout"] == "mean+std"
    assert {r["method"].split("+")[0] for r in doubled["controls"]} == {"snv_sg1"}
    assert "best_untrained" not in doubled["summary"][0]
