"""Leave-one-dataset-out: the strict run (vitnirs.research.strict_lodo) never sees its dataset, results are
cached; the downstream-only kind (vitnirs.workflows.lodo) reuses baselines; labels are right."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from conftest import absorbance_table

from vitnirs.config import load_config
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.data.table import SpectralTable
from vitnirs.embedding import embed_store
from vitnirs.evaluate.downstream import run_heads
from vitnirs.evaluate.splits import make_splits
from vitnirs.model import build_mae
from vitnirs.research.strict_lodo import strict_config, strict_lodo
from vitnirs.train.schedule import warmup_and_total_steps
from vitnirs.workflows import lodo
from vitnirs.workflows.lodo import downstream_only_lodo, lodo_table, plot_lodo

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

NAMES = ("alpha", "beta", "gamma")
TINY = [
    "model.preset=tiny", "training.batch_size=4", "training.num_workers=0", "training.probe_every=0",
    "training.probe_samples=20", "training.max_points=64", "masking.min_block_size=2",
    "masking.max_block_size=8", "training_strategy.p_synth=0", "data.regions=[NIR]",
    "evaluation.lodo_steps=2", "evaluation.repeats=1", "evaluation.downstream_methods=[ridge]",
    "evaluation.baseline_methods=[pls_raw, snv_sg1_pls]", "evaluation.max_targets=1",
]  # fmt: skip


def _table(name: str, seed: int, n: int = 36) -> SpectralTable:
    """A band whose height is the target y, plus a random baseline slope."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(1100.0, 2400.0, 40)
    x = np.linspace(0, 1, len(grid))[None, :]
    y = rng.uniform(0.1, 0.6, n)
    X = 0.5 + rng.uniform(0, 0.3, (n, 1)) * x + y[:, None] * np.exp(-(((x - 0.5) / 0.1) ** 2))
    return absorbance_table(name, X + rng.normal(0, 2e-3, X.shape), grid, targets={"y_height": y})


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PreparedStore:
    path = tmp_path_factory.mktemp("lodo") / "store"
    prepare(table_jobs([_table(n, i) for i, n in enumerate(NAMES)], "real"), path, progress=False)
    return PreparedStore(path)


@pytest.fixture
def cfg():
    return load_config(overrides=TINY)


def _spy_pretraining_names(monkeypatch) -> list[list[str]]:
    """Record the dataset names of every PretrainData the training loop builds."""
    from vitnirs.train import loop

    seen, build = [], loop.build_data

    def spy(*args, **kwargs):
        data = build(*args, **kwargs)
        seen.append(list(data.names))
        return data

    monkeypatch.setattr(loop, "build_data", spy)
    return seen


def test_strict_config_excludes_the_dataset_and_spans_lodo_steps():
    cfg = load_config(overrides=["evaluation.lodo_steps=300", "data.exclude_datasets=[other]"])
    run = strict_config(cfg, "alpha")
    assert run.data.exclude_datasets == ["alpha", "other"]
    assert cfg.data.exclude_datasets == ["other"]  # the caller's config is untouched
    warmup, total = warmup_and_total_steps(
        epochs=run.training.epochs, warmup_epochs=run.training.warmup_epochs, steps_per_epoch=1
    )
    assert total == 300  # the whole cosine schedule in 300 steps, not cut out of a longer one
    assert warmup == round(300 * cfg.training.warmup_epochs / cfg.training.epochs) == 15


def test_strict_lodo_leaves_the_dataset_out_caches_and_resumes(store, cfg, tmp_path, monkeypatch, capsys):
    out = tmp_path / "lodo"
    seen = _spy_pretraining_names(monkeypatch)
    records = strict_lodo(cfg, store=store.path, datasets=["alpha", "nope"], out=out, engine="sklearn")
    err = capsys.readouterr().err
    assert "lodo [1/2] alpha: pretrained" in err and "lodo [2/2] nope: FAILED" in err
    # the strict run of alpha sampled only the two other datasets
    assert seen[0] == ["beta", "gamma"]
    saved = yaml.safe_load((out / "alpha" / "pretrain" / "config.yaml").read_text())
    assert saved["data"]["exclude_datasets"] == ["alpha"]
    strict = [r for r in records if r["protocol"] == "lodo_strict" and r.get("metrics")]
    assert {r["method"] for r in strict} == {"embedding+ridge"}
    assert {r["split"] for r in strict} == {"kennard_stone", "random_rep"}
    for r in strict:
        assert r["pretrained_on"] == ["beta", "gamma"] and r["pretrain_steps"] == 2
        assert "never saw this dataset" in r["note"] and "pretrain" in r["checkpoint"]
        assert r["std"] is None and r["n_splits"] == 1  # one split per family here (repeats=1)
    classical = [r for r in records if r["protocol"] == "lodo_classical"]
    assert {r["split"] for r in classical} == {"kennard_stone", "random_rep"}
    assert all(r["method"] in ("pls_raw", "snv_sg1_pls") and r["checkpoint"] is None for r in classical)
    # a dataset that fails is recorded, and the others went on
    (failed,) = [r for r in records if r["dataset"] == "nope"]
    assert failed["protocol"] == "lodo_strict" and "nope" in failed["error"]
    doc = json.loads((out / "lodo.json").read_text())
    assert doc["records"] == json.loads(json.dumps(records))
    assert [row["dataset"] for row in doc["table"]] == ["alpha", "nope"]
    assert (out / "alpha" / "result.json").is_file() and not (out / "nope" / "result.json").exists()
    assert (out / "lodo.png").stat().st_size > 0

    # second call: the finished run is reused, no pretraining at all
    from vitnirs.train.loop import pretrain as real_pretrain

    def no_pretraining(*args, **kwargs):
        raise AssertionError("pretrain called although alpha's result is cached")

    monkeypatch.setattr("vitnirs.train.loop.pretrain", no_pretraining)
    full = out / "alpha" / "pretrain"  # stands in for an encoder pretrained on everything
    again = strict_lodo(
        cfg, store=store.path, datasets=["alpha"], out=out, engine="sklearn", progress=False, checkpoint=full
    )
    down = [r for r in again if r["protocol"] == "lodo_downstream_only"]
    assert {r["split"] for r in down} == {"kennard_stone", "random_rep"}
    assert all("this one included" in r["note"] and str(full) in r["checkpoint"] for r in down)
    again = [r for r in again if r not in down]  # the classical reference is not repeated
    assert again == json.loads(json.dumps([r for r in records if r["dataset"] == "alpha"]))

    # an unfinished run (pretrained, not scored) resumes from its checkpoint: no step is redone
    (out / "alpha" / "result.json").unlink()
    from vitnirs.train import loop

    calls = []

    def resuming(*args, **kwargs):
        calls.append(kwargs["resume"])
        return real_pretrain(*args, **kwargs)

    monkeypatch.setattr(loop, "pretrain", resuming)
    resumed = strict_lodo(
        cfg, store=store.path, datasets=["alpha"], out=out, engine="sklearn", progress=False
    )
    assert calls == [True] and len(seen) == 2
    assert resumed == again  # the same encoder (step 2 of 2, nothing redone): the same numbers

    # another config (more steps: another schedule) is not resumed from that run, but refused
    more = load_config(overrides=[*TINY, "evaluation.lodo_steps=3"])
    (stale,) = strict_lodo(
        more, store=store.path, datasets=["alpha"], out=out, engine="sklearn", progress=False
    )
    assert "another config" in stale["error"] and calls == [True]


def test_downstream_only_records_come_from_the_given_model(store):
    cfg = load_config(overrides=[*TINY, "evaluation.repeats=0"])
    torch.manual_seed(0)
    model = build_mae("tiny").eval()
    recs = downstream_only_lodo(
        store, model, ["gamma"], cfg=cfg, checkpoint="full_run", bank="bank", engine="sklearn"
    )
    down = [r for r in recs if r["protocol"] == "lodo_downstream_only"]
    assert down and all("this one included" in r["note"] and r["checkpoint"] == "full_run" for r in down)
    # the main split's number is the ridge head on THIS model's embedding of gamma
    y = store.targets("gamma")["y_height"].to_numpy(dtype=np.float64)
    X = np.asarray(store.values("gamma"), dtype=np.float64)
    (split,) = make_splits(store.metadata("gamma"), X, y, seed=cfg.training.seed, n_repeats=0)
    Z = embed_store(model, store, "gamma")
    (direct,) = run_heads(Z, y, split.train, split.test, methods=["ridge"], seed=cfg.training.seed)
    main = next(r for r in down if r["split"] == split.name)
    assert main["metrics"]["rmsep"] == pytest.approx(direct["metrics"]["rmsep"], rel=1e-9)
    # given embeddings are used as they are (another encoder gives other numbers)
    torch.manual_seed(1)
    other = embed_store(build_mae("tiny").eval(), store, "gamma")
    recs2 = downstream_only_lodo(
        store, model, ["gamma"], cfg=cfg, checkpoint="c", bank="b", embeddings={"gamma": other},
        engine="sklearn",
    )  # fmt: skip
    main2 = next(r for r in recs2 if r["protocol"] == "lodo_downstream_only" and r["split"] == split.name)
    assert main2["metrics"]["rmsep"] != pytest.approx(main["metrics"]["rmsep"], rel=1e-6)


def test_downstream_only_reuses_given_baseline_records(store, cfg):
    planted = [
        {"dataset": "gamma", "target": "y_height", "method": m, "protocol": p, "n_train": 28, "n_test": 8,
         "metrics": {"rmsep": v, "r2": 0.5}}
        for m, p, v in [("pls_raw", "kennard_stone", 0.123), ("snv_sg1_pls", "kennard_stone", 0.2),
                        ("pls_raw", "random_rep_0", 0.3), ("krr_raw", "kennard_stone", 0.01)]
    ]  # fmt: skip
    recs = downstream_only_lodo(
        store, build_mae("tiny").eval(), ["gamma"], cfg=cfg, checkpoint="c", bank="b",
        baseline_records=planted, engine="sklearn",
    )  # fmt: skip
    classical = {r["split"]: r for r in recs if r["protocol"] == "lodo_classical"}
    # best LINEAR method (kernel ridge is not "classical" here, as in the suite's summary)
    assert classical["kennard_stone"]["method"] == "pls_raw"
    assert classical["kennard_stone"]["metrics"]["rmsep"] == pytest.approx(0.123)
    assert classical["random_rep"]["metrics"]["rmsep"] == pytest.approx(0.3)


def _rec(protocol: str, method: str, rmsep: float | None, split: str = "native", **kw) -> dict:
    metrics = None if rmsep is None else {"rmsep": rmsep, "r2": 0.0}
    return {"dataset": "d1", "target": "y", "protocol": protocol, "method": method, "split": split,
            "metrics": metrics, **kw}  # fmt: skip


def test_lodo_table_picks_the_minima_of_the_main_split(tmp_path):
    records = [
        _rec("lodo_classical", "pls_raw", 2.0),
        _rec("lodo_classical", "snv_sg1_pls", 1.5),
        _rec("lodo_classical", "pls_raw", 0.1, split="random_rep"),  # not the main split
        _rec("lodo_strict", "embedding+ridge", 1.2),
        _rec("lodo_strict", "embedding+pls", 0.9),
        _rec("lodo_strict", "embedding+tabpfn", None, skipped="absent"),
        _rec("lodo_strict", "embedding+ridge", 0.05, split="random_rep"),
        _rec("lodo_downstream_only", "embedding+ridge", 0.6),
        _rec("lodo_downstream_only", "embedding+pls", 0.8),
        {"dataset": "d2", "target": None, "protocol": "lodo_strict", "metrics": None, "error": "boom"},
    ]
    row, err = lodo_table(records)
    assert (row["dataset"], row["target"], row["split"]) == ("d1", "y", "native")
    assert row["best_classical"] == {"method": "snv_sg1_pls", "rmsep": 1.5}
    assert row["best_strict"] == {"method": "embedding+pls", "rmsep": 0.9}
    assert row["best_downstream_only"] == {"method": "embedding+ridge", "rmsep": 0.6}
    assert row["strict_vs_classical"] == pytest.approx(0.6)
    assert row["downstream_only_vs_classical"] == pytest.approx(0.4)
    assert row["strict_vs_downstream_only"] == pytest.approx(1.5)
    assert err == {"dataset": "d2", "target": None, "protocol": "lodo_strict", "error": "boom"}
    # a table without downstream-only records leaves that column empty, not borrowed from strict
    (only_strict,) = lodo_table([r for r in records[:5]])
    assert only_strict["best_downstream_only"] is None and only_strict["downstream_only_vs_classical"] is None
    assert plot_lodo(records, tmp_path / "lodo.png").stat().st_size > 0
    assert plot_lodo(records[3:6], tmp_path / "none.png") is None  # nothing to divide by
    assert "strict" in lodo.LABELS["lodo_strict"] and "downstream-only" in lodo.LABELS["lodo_downstream_only"]
