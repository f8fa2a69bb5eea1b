"""`vitnirs evaluate`: classical baselines and heads on the frozen embedding, on the same splits.

For every real dataset of the store with numeric ``y_*`` targets (``evaluation.datasets`` /
``data.regions`` / ``evaluation.max_targets``), the split protocol of
:func:`vitnirs.evaluate.splits.make_splits` gives the splits (native cal/test, else
Kennard–Stone, plus random repeats for small datasets); the Phase 0 baselines
(:mod:`vitnirs.evaluate.baselines`, cached by dataset hash / target / split / method) and
the embedding heads (:mod:`vitnirs.evaluate.downstream`) are fitted on each train part and
scored on its test part. ``metrics.json`` holds one record per (dataset, target, method,
split) in ``baselines`` and ``downstream``, plus ``summary``: mean ± std over repeated splits
and, per dataset and target, the best classical, best overall and best embedding RMSEP.

``transfer`` (``evaluation.transfer``): cross-instrument records of
:mod:`vitnirs.evaluate.transfer` (corn on 3 instruments, tablets on 2, k = 0/5/10 transfer
samples). Targets are used here only; they never touch pretraining. Not yet here (the
evaluation issue): class targets, LODO, synthetic checks, robustness.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vitnirs.config import Config
from vitnirs.data.store import PreparedStore
from vitnirs.evaluate.baselines import BaselineCache, best_classical, best_overall, cached_baselines
from vitnirs.evaluate.downstream import run_heads
from vitnirs.evaluate.metrics import summarise
from vitnirs.evaluate.splits import make_splits, regression_targets


def evaluation_tasks(store: PreparedStore, cfg: Config) -> list[tuple[str, str]]:
    """(dataset, target) pairs to evaluate: real datasets of ``data.regions`` with numeric targets."""
    wanted = set(cfg.evaluation.datasets)
    tasks = []
    for name in store.names(regions=list(cfg.data.regions), kind="real"):
        if wanted and name not in wanted:
            continue
        targets = list(regression_targets(store.targets(name)))[: cfg.evaluation.max_targets]
        tasks += [(name, t) for t in targets]
    return tasks


def evaluate(
    cfg: Config, *, checkpoint: str | Path, store: str | Path, out: str | Path, progress: bool = True
) -> dict:
    """Run the suite; write ``OUT/metrics.json`` and return it."""
    from vitnirs.embedding import embed_store, load_encoder

    started, out = time.perf_counter(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = PreparedStore(store)
    model, info = load_encoder(checkpoint)
    ev, seed = cfg.evaluation, cfg.training.seed
    cache = BaselineCache(out / "baseline_cache.json")
    heads = [m for m in ev.downstream_methods if m != "logistic"]
    tasks = evaluation_tasks(store, cfg)
    common = {"checkpoint": str(info.get("checkpoint", checkpoint)), "bank": str(store.path)}
    baselines: list[dict[str, Any]] = []
    downstream: list[dict[str, Any]] = []
    embeddings: dict[str, np.ndarray] = {}
    for dataset, target in tqdm(tasks, desc="evaluate", unit="target", disable=not progress):
        X = np.asarray(store.values(dataset), dtype=np.float64)
        y = regression_targets(store.targets(dataset))[target]
        splits = make_splits(store.metadata(dataset), X, y, seed=seed, n_repeats=ev.repeats)
        if dataset not in embeddings:
            embeddings[dataset] = embed_store(model, store, dataset)
        tag = {"dataset": dataset, "target": target, **common}
        records = cached_baselines(
            cache, store.records[dataset]["content_hash"], target, X, y, splits,
            methods=ev.baseline_methods, seed=seed, aom_bank=ev.aom_bank,
        )  # fmt: skip
        baselines += [
            {**r, **tag, "split_note": s.note}
            for r, s in zip(records, _per_method(splits, ev.baseline_methods), strict=True)
        ]
        for split in splits:
            for r in run_heads(
                embeddings[dataset], y, split.train, split.test, groups=split.groups, methods=heads, seed=seed
            ):
                downstream.append({**r, **tag, "method": f"embedding+{r['method']}", "protocol": split.name})
    transfer = []
    if ev.transfer:
        from vitnirs.evaluate.transfer import INSTRUMENT_GROUPS, transfer_pairs

        methods = [m for m in ev.baseline_methods if m in ("pls_raw", "snv_sg1_pls", "aom_pls")]
        heads_t = [m for m in heads if m in ("ridge", "pls")]
        groups = {g: [n for n in names if n in store.records] for g, names in INSTRUMENT_GROUPS.items()}
        groups = {g: names for g, names in groups.items() if len(names) > 1}
        for group, names in tqdm(groups.items(), desc="transfer", unit="group", disable=not progress):
            transfer += [
                {**r, **common}
                for r in transfer_pairs(
                    store, model, groups={group: names}, heads=heads_t, baselines=methods, seed=seed,
                    aom_bank=ev.aom_bank, embeddings=embeddings,
                )
            ]  # fmt: skip
    summary = _summary(baselines, downstream)
    result = {
        "checkpoint": common["checkpoint"],
        "bank": common["bank"],
        "embedding_dim": int(next(iter(embeddings.values())).shape[1]) if embeddings else None,
        "baselines": baselines,
        "downstream": [r for r in downstream if r.get("metrics") is not None],
        "skipped_heads": sorted({r["skipped"] for r in downstream if r.get("skipped")}),
        "transfer": transfer,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
        "not_yet": "lodo, synthetic_checks, robustness and class targets: the evaluation issue",
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=1, default=_plain))
    return result


def _per_method(splits, methods):
    """The split of each baseline record (cached_baselines returns split-major, method-minor)."""
    return [s for s in splits for _ in methods]


def _summary(baselines: list[dict], downstream: list[dict]) -> list[dict]:
    """Per (dataset, target), on the first (main) protocol: best classical / overall / embedding."""
    rows = []
    base_sum = summarise(baselines)
    down_sum = summarise([r for r in downstream if r.get("metrics") is not None])
    keys = list(dict.fromkeys((r["dataset"], r["target"]) for r in base_sum))
    for dataset, target in keys:
        proto = next(r["protocol"] for r in base_sum if (r["dataset"], r["target"]) == (dataset, target))
        b = [r for r in base_sum if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)]
        d = [r for r in down_sum if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)]
        best_emb = min(d, key=lambda r: r["metrics"]["rmsep"]) if d else None
        bc, bo = best_classical(b), best_overall(b)
        rows.append(
            {
                "dataset": dataset, "target": target, "protocol": proto,
                "best_classical": _brief(bc), "best_overall": _brief(bo), "best_embedding": _brief(best_emb),
                "embedding_vs_best_classical": (
                    round(best_emb["metrics"]["rmsep"] / bc["metrics"]["rmsep"], 3) if best_emb and bc else None
                ),
            }
        )  # fmt: skip
    return rows


def _brief(r: dict | None) -> dict | None:
    return (
        None
        if r is None
        else {"method": r["method"], "rmsep": r["metrics"]["rmsep"], "r2": r["metrics"]["r2"]}
    )


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
