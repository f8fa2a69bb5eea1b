"""Strict leave-one-dataset-out (``vitnirs lodo``): pretrain without each dataset, then score it.

**Strict** (``protocol: "lodo_strict"``, :func:`strict_lodo`): for each real dataset D, a fresh
encoder is pretrained with ``data.exclude_datasets = [D]`` for ``evaluation.lodo_steps`` steps
(the learning-rate schedule rescaled to that length: one-step virtual epochs, the warm-up
fraction of ``training`` kept), D is embedded with it and the heads are fitted on D's train
split. Hours on 2 CPU cores, so a research tool (``vitnirs lodo``, ``benchmarks/lodo.py``):
resumable (``OUT/<D>/pretrain`` continues from its newest checkpoint) and cached
(``OUT/<D>/result.json``, reused while its config hash matches). Only D leaves: a sibling dataset
(the same samples on another instrument: corn m5/mp5/mp6, the two tablet sets) stays in
pretraining unless it is also in ``data.exclude_datasets`` (kept, with D added); each record lists
``pretrained_on``.

The heads, splits, targets and classical reference are those of the downstream-only kind, an
evaluation section (:mod:`vitnirs.workflows.lodo`: :func:`~vitnirs.workflows.lodo.dataset_records`);
with ``checkpoint`` (an encoder pretrained on everything) its records come beside the strict ones.
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
import yaml

from vitnirs.config import Config
from vitnirs.data.store import PreparedStore
from vitnirs.evaluate.baselines import BaselineCache
from vitnirs.evaluate.lodo_table import CLASSICAL, DOWNSTREAM_ONLY, STRICT, lodo_table, plot_lodo
from vitnirs.workflows.lodo import PROTOCOLS, dataset_records, downstream_only_lodo

__all__ = ["strict_config", "strict_lodo"]

# Keys that change how a run is executed, not what it learns: left out of the config hash.
_HOW_NOT_WHAT = {
    "data": ("real_datasets_dir", "store_dir", "workers"),
    "training": ("device", "num_workers", "tensorboard", "log_every", "checkpoint_every", "keep_checkpoints"),
}
_EVAL_KEYS = ("downstream_methods", "baseline_methods", "max_targets", "aom_bank", "repeats")


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
    records = dataset_records(
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
