"""Leave-one-dataset-out (LODO): the embedding on a dataset, with and without pretraining on it.

Two kinds, never mixed up: every record's ``protocol`` and ``note`` say which it is.

* **strict** (``protocol: "lodo_strict"``, :func:`strict_lodo`): for each real dataset D, a fresh
  encoder is pretrained with ``data.exclude_datasets = [D]`` for ``evaluation.lodo_steps`` steps
  (the learning-rate schedule rescaled to that length: one-step virtual epochs, the warm-up
  fraction of ``training`` kept), D is embedded with it and the heads are fitted on D's train
  split. Hours on 2 CPU cores, so a benchmark run (``benchmarks/lodo.py``): resumable
  (``OUT/<D>/pretrain`` continues from its newest checkpoint) and cached (``OUT/<D>/result.json``,
  reused while its config hash matches). Only D leaves: a sibling dataset (the same samples on
  another instrument: corn m5/mp5/mp6, the two tablet sets) stays in pretraining unless it is also
  in ``data.exclude_datasets`` (kept, with D added); each record lists ``pretrained_on``.
* **downstream-only** (``protocol: "lodo_downstream_only"``, :func:`downstream_only_lodo`): the
  encoder pretrained on every dataset, D's spectra included (never its targets); only the heads
  are fitted on D's train split. Cheap, and optimistic next to the strict kind.

Both use the suite's protocol: the splits of :func:`~vitnirs.evaluate.splits.make_splits`
(``training.seed``, ``evaluation.repeats``), the first ``evaluation.max_targets`` numeric
targets, the heads of ``evaluation.downstream_methods`` (minus ``logistic``). Each also carries,
for reference, the best classical baseline (best linear method of ``evaluation.baseline_methods``)
on the same splits (``protocol: "lodo_classical"``, no encoder).

Records are summarised over repeated splits: one per (dataset, target, method, split family);
``split`` is the family (``native``, ``kennard_stone``, ``random``, ``random_rep``),
``n_splits`` its size, ``metrics`` the means and ``std`` the sample std (None for one split).
The per-(dataset, target) table and its figure: :mod:`vitnirs.evaluate.lodo_table`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from vitnirs.checkpoint import CheckpointInfo
from vitnirs.config import Config
from vitnirs.data.store import PreparedStore
from vitnirs.evaluate.baselines import BaselineCache, best_classical, cached_baselines, run_baselines
from vitnirs.evaluate.downstream import run_heads
from vitnirs.evaluate.lodo_table import CLASSICAL, DOWNSTREAM_ONLY, STRICT, lodo_table, plot_lodo
from vitnirs.evaluate.lodo_table import LABELS as LABELS  # re-exported (lodo.LABELS)
from vitnirs.evaluate.metrics import summarise
from vitnirs.evaluate.splits import make_splits, regression_targets

__all__ = ["PROTOCOLS", "downstream_only_lodo", "strict_lodo", "strict_config", "lodo_table", "plot_lodo"]

PROTOCOLS = {
    STRICT: "encoder never saw this dataset (pretrained without it); heads fitted on this dataset's train part",
    DOWNSTREAM_ONLY: (
        "encoder pretrained on every dataset, this one included (its spectra, never its targets); "
        "heads fitted on this dataset's train part"
    ),
    CLASSICAL: "best classical baseline (linear methods) on the same splits; no encoder",
}
# Keys that change how a run is executed, not what it learns: left out of the config hash.
_HOW_NOT_WHAT = {
    "data": ("real_datasets_dir", "store_dir", "workers"),
    "training": ("device", "num_workers", "tensorboard", "log_every", "checkpoint_every", "keep_checkpoints"),
}
_EVAL_KEYS = ("downstream_methods", "baseline_methods", "max_targets", "aom_bank", "repeats")


# ----------------------------------------------------------------------------- one dataset
def _baselines(store, dataset, target, X, y, splits, cfg: Config, cache, engine) -> list[dict]:
    """Per-split baseline records (``protocol`` = split name), from the cache when one is given."""
    ev, seed = cfg.evaluation, cfg.training.seed
    kw = {"seed": seed, "aom_bank": ev.aom_bank, "engine": engine}
    if cache is not None:
        h = store.records[dataset]["content_hash"]
        return cached_baselines(cache, h, target, X, y, splits, methods=ev.baseline_methods, **kw)
    return [r for s in splits for r in run_baselines(X, y, s, methods=ev.baseline_methods, **kw)]


def _summarised(per_split: list[dict], protocol: str, tag: dict) -> list[dict]:
    """Per-split records → one per (method, split family), relabelled with the LODO protocol."""
    done = summarise([r for r in per_split if r.get("metrics") is not None])
    out = [
        {
            **tag, "method": r["method"], "protocol": protocol, "split": r["protocol"],
            "n_splits": r["n_splits"], "n_train": r["n_train"], "n_test": r["n_test"],
            "metrics": r["metrics"], "std": r["std"] if r["n_splits"] > 1 else None,
            "note": PROTOCOLS[protocol],
        }
        for r in done
    ]  # fmt: skip
    skipped = {r["method"]: r for r in per_split if r.get("metrics") is None}  # a head that could not run
    out += [
        {**tag, "method": m, "protocol": protocol, "split": None, "n_splits": 0, "n_train": r["n_train"],
         "n_test": r["n_test"], "metrics": None, "std": None, "skipped": r.get("skipped"), "note": PROTOCOLS[protocol]}
        for m, r in skipped.items()
    ]  # fmt: skip
    return out


def _dataset_records(
    store: PreparedStore, dataset: str, Z: np.ndarray, protocol: str, *, cfg: Config, tag: dict,
    baseline_records: Sequence[dict] | None, cache: BaselineCache | None, engine: str,
) -> list[dict]:  # fmt: skip
    """Heads on ``Z`` (n, D) plus the best classical baseline, per target and split family."""
    ev, seed = cfg.evaluation, cfg.training.seed
    heads = [m for m in ev.downstream_methods if m != "logistic"]
    X = np.asarray(store.values(dataset), dtype=np.float64)
    records: list[dict] = []
    for target, y in list(regression_targets(store.targets(dataset)).items())[: ev.max_targets]:
        splits = make_splits(store.metadata(dataset), X, y, seed=seed, n_repeats=ev.repeats)
        t = {**tag, "dataset": dataset, "target": target}
        per_split = [
            {**r, **t, "method": f"embedding+{r['method']}", "protocol": s.name}
            for s in splits
            for r in run_heads(Z, y, s.train, s.test, groups=s.groups, methods=heads, seed=seed)
        ]
        records += _summarised(per_split, protocol, t)
        names = {s.name for s in splits}
        given = [
            r for r in baseline_records or ()
            if (r.get("dataset"), r.get("target")) == (dataset, target) and r["protocol"] in names
        ]  # fmt: skip
        base = given or _baselines(store, dataset, target, X, y, splits, cfg, cache, engine)
        base = [{**r, "dataset": dataset, "target": target} for r in base]
        summed = _summarised(base, CLASSICAL, {"dataset": dataset, "target": target, "bank": tag["bank"]})
        for family in dict.fromkeys(r["split"] for r in summed if r["split"]):
            best = best_classical([r for r in summed if r["split"] == family])
            if best is not None:
                records.append({**best, "checkpoint": None})
    return records


def downstream_only_lodo(
    store: PreparedStore,
    model: torch.nn.Module,
    datasets: Sequence[str],
    *,
    cfg: Config,
    checkpoint: str | Path,
    bank: str | Path,
    embeddings: dict[str, np.ndarray] | None = None,
    baseline_records: Sequence[dict] | None = None,
    cache: BaselineCache | None = None,
    engine: str = "nirs4all",
    info: CheckpointInfo | None = None,
) -> list[dict]:
    """Downstream-only LODO: heads on the frozen embedding of an encoder pretrained on everything.

    Parameters
    ----------
    store : PreparedStore
        The store holding ``datasets``.
    model : torch.nn.Module
        The encoder pretrained on every dataset (``model.embed``), in eval mode.
    datasets : sequence of str
        Real datasets to score.
    cfg : Config
        ``evaluation.*`` (heads, baselines, targets, repeats) and ``training.seed``.
    checkpoint, bank : str or Path
        Written into every embedding record.
    embeddings : dict, optional
        ``{dataset: (n, D) array}`` already computed with ``model`` (the suite's); others are embedded.
    baseline_records : sequence of dict, optional
        Per-split baseline records (the suite's ``baselines``) to take the classical reference from;
        when a (dataset, target) has none there, they are fitted (through ``cache`` when given).
    engine : {"nirs4all", "sklearn"}
        Baseline engine (``sklearn`` is the fast equivalent, for tests).
    info : CheckpointInfo, optional
        ``model``'s checkpoint info (point cap, metadata vocabulary), as ``embed_store`` takes it.

    Returns
    -------
    list of dict
        ``protocol: "lodo_downstream_only"`` records, plus the ``"lodo_classical"`` reference.
    """
    from vitnirs.embedding import embed_store

    tag = {"checkpoint": str(checkpoint), "bank": str(bank)}
    records: list[dict] = []
    for dataset in datasets:
        Z = (embeddings or {}).get(dataset)
        Z = embed_store(model, store, dataset, info=info) if Z is None else Z
        records += _dataset_records(
            store, dataset, Z, DOWNSTREAM_ONLY, cfg=cfg, tag=tag,
            baseline_records=baseline_records, cache=cache, engine=engine,
        )  # fmt: skip
    return records


# ----------------------------------------------------------------------------- strict LODO
def strict_config(cfg: Config, dataset: str) -> Config:
    """The pretraining config of the strict run without ``dataset``.

    ``dataset`` joins ``data.exclude_datasets``; the schedule spans exactly
    ``evaluation.lodo_steps`` steps (one-step virtual epochs, warm-up as the same fraction of the
    run as in ``training``); a checkpoint every quarter of the run, so a stopped run resumes.
    """
    steps, t = cfg.evaluation.lodo_steps, cfg.training
    run = cfg.model_copy(deep=True)
    run.data.exclude_datasets = sorted({*cfg.data.exclude_datasets, dataset})
    run.training_strategy.steps_per_epoch = 1
    run.training.epochs = steps
    run.training.warmup_epochs = round(steps * t.warmup_epochs / t.epochs)
    run.training.checkpoint_every = min(t.checkpoint_every, max(1, steps // 4))
    return run


def _what_it_learns(config_dict: dict) -> dict:
    """A config dict without the keys of :data:`_HOW_NOT_WHAT` and without ``evaluation``."""
    d = {k: dict(v) for k, v in config_dict.items() if k != "evaluation"}
    for section, keys in _HOW_NOT_WHAT.items():
        for key in keys:
            d.get(section, {}).pop(key, None)
    return d


def _config_hash(run: Config, store: PreparedStore, engine: str) -> str:
    """Hash of what a strict result depends on: pretraining config, evaluation keys, the store's data."""
    doc = {
        "pretrain": _what_it_learns(run.to_dict()),
        "evaluation": {k: getattr(run.evaluation, k) for k in _EVAL_KEYS},
        "store": sorted(r["content_hash"] for r in store.records.values()),
        "engine": engine,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json(path: Path, doc: Any) -> None:
    """Write JSON atomically (temp file in the same folder + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    os.replace(tmp, path)


def _strict_one(cfg, store, dataset, folder: Path, *, cache, engine, progress) -> tuple[list[dict], str]:
    """Pretrain without ``dataset`` (or reuse), embed it, score it; (records, how)."""
    from vitnirs.checkpoint import latest_checkpoint
    from vitnirs.embedding import embed_store, load_encoder, under_metadata_rule, with_readout
    from vitnirs.errors import VitnirsError
    from vitnirs.train.loop import pretrain

    run = strict_config(cfg, dataset)
    digest, result = _config_hash(run, store, engine), folder / "result.json"
    if result.is_file():
        doc = json.loads(result.read_text())
        if doc.get("config_hash") == digest:
            return doc["records"], "cached"
    run_dir, started = folder / "pretrain", time.perf_counter()
    resume = latest_checkpoint(run_dir) is not None
    if resume:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
        if _what_it_learns(saved) != _what_it_learns(run.to_dict()):
            raise VitnirsError(f"{run_dir} was pretrained with another config: remove it or use another out")
    summary = pretrain(
        run, store=store.path, run_dir=run_dir, resume=resume, max_steps=run.evaluation.lodo_steps,
        progress=progress,
    )  # fmt: skip
    model, info = load_encoder(summary["checkpoint"])
    info = with_readout(under_metadata_rule(info, run.evaluation.metadata), run.evaluation.readout)
    pretrained_on = list(info.normalization.get("datasets", []))
    if dataset in pretrained_on:  # the point of the whole exercise: checked, not assumed
        raise VitnirsError(f"strict LODO: {dataset} was among the pretraining datasets of {run_dir}")
    tag = {"checkpoint": info.checkpoint, "bank": str(store.path), "pretrained_on": pretrained_on}
    tag["pretrain_steps"] = info.step
    records = _dataset_records(
        store, dataset, embed_store(model, store, dataset, info=info), STRICT, cfg=run, tag=tag,
        baseline_records=None, cache=cache, engine=engine,
    )  # fmt: skip
    seconds = round(time.perf_counter() - started, 1)
    _write_json(result, {"dataset": dataset, "config_hash": digest, "seconds": seconds, "records": records})
    return records, "resumed" if resume else "pretrained"


def strict_lodo(
    cfg: Config,
    *,
    store: str | Path,
    datasets: Sequence[str],
    out: str | Path,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    engine: str = "nirs4all",
) -> list[dict]:
    """Strict LODO over ``datasets``; writes ``OUT/<D>/result.json``, ``OUT/lodo.json``, ``OUT/lodo.png``.

    Parameters
    ----------
    cfg : Config
        The pretraining config (each run: :func:`strict_config`) and ``evaluation.*``.
    store : str or Path
        The prepared store (every dataset of ``data.regions`` but D is pretrained on).
    datasets : sequence of str
        Real datasets to leave out, one run each (``--datasets`` picks a subset).
    out : str or Path
        Output folder; ``OUT/baseline_cache.json`` caches the baselines.
    progress : bool
        A line per dataset on stderr (and the pretraining progress bar).
    checkpoint : str or Path, optional
        An encoder pretrained on everything: adds the downstream-only records of the same datasets.
    engine : {"nirs4all", "sklearn"}
        Baseline engine.

    Returns
    -------
    list of dict
        Strict, classical and (with ``checkpoint``) downstream-only records; a dataset that failed
        gives one record with ``error`` and the others go on.
    """
    started, out, store = time.perf_counter(), Path(out), PreparedStore(store)
    cache = BaselineCache(out / "baseline_cache.json")
    full = None
    if checkpoint is not None:
        from vitnirs.embedding import load_encoder, under_metadata_rule, with_readout

        model, info = load_encoder(checkpoint)
        full = (
            model,
            with_readout(under_metadata_rule(info, cfg.evaluation.metadata), cfg.evaluation.readout),
        )
    records: list[dict] = []
    for i, dataset in enumerate(datasets, 1):
        tic = time.perf_counter()
        try:
            these, how = _strict_one(
                cfg, store, dataset, out / dataset, cache=cache, engine=engine, progress=progress
            )
        except Exception as exc:  # one failed dataset is recorded, the others go on
            these, how = [_error_record(dataset, STRICT, exc, store)], f"FAILED ({type(exc).__name__}: {exc})"
        if full is not None:
            try:
                these += downstream_only_lodo(
                    store, full[0], [dataset], cfg=cfg, checkpoint=full[1].checkpoint, bank=store.path,
                    cache=cache, engine=engine, info=full[1],
                )  # fmt: skip
            except Exception as exc:
                these.append(_error_record(dataset, DOWNSTREAM_ONLY, exc, store))
        records += _dedup(these)
        if progress:
            ratios = [
                f"{row['target']} strict/classical RMSEP {row['strict_vs_classical']}"
                for row in lodo_table(these)
                if row.get("target")
            ]
            line = f"lodo [{i}/{len(datasets)}] {dataset}: {how} ({time.perf_counter() - tic:.0f} s)"
            print("; ".join([line, *ratios]), file=sys.stderr)
        doc = {
            "kind": PROTOCOLS,
            "datasets": list(datasets),
            "records": records,
            "table": lodo_table(records),
        }
        _write_json(out / "lodo.json", {**doc, "seconds": round(time.perf_counter() - started, 1)})
    plot_lodo(records, out / "lodo.png")
    return records


def _error_record(dataset: str, protocol: str, exc: Exception, store: PreparedStore) -> dict:
    return {
        "dataset": dataset, "target": None, "method": None, "protocol": protocol, "n_train": None,
        "n_test": None, "metrics": None, "std": None, "checkpoint": None, "bank": str(store.path),
        "error": f"{type(exc).__name__}: {exc}", "note": PROTOCOLS[protocol],
    }  # fmt: skip


def _dedup(records: list[dict]) -> list[dict]:
    """Drop repeats of a classical reference (strict and downstream-only carry the same one)."""
    seen, out = set(), []
    for r in records:
        key = (r.get("dataset"), r.get("target"), r.get("protocol"), r.get("split"), r.get("method"))
        if r.get("protocol") != CLASSICAL or key not in seen:
            out.append(r)
        seen.add(key)
    return out
