"""Downstream-only leave-one-dataset-out (LODO): an evaluation section (``evaluation.lodo_datasets``).

**Downstream-only** (``protocol: "lodo_downstream_only"``, :func:`downstream_only_lodo`): the
encoder pretrained on every dataset, D's spectra included (never its targets); only the heads are
fitted on D's train split. Cheap, and optimistic next to the strict kind, which pretrains a fresh
encoder without D (``protocol: "lodo_strict"``: a research tool, ``vitnirs lodo``,
:mod:`vitnirs.research.strict_lodo`, built on :func:`dataset_records` here). Every record's
``protocol`` and ``note`` say which kind it is (:data:`PROTOCOLS`).

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

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vitnirs.checkpoint import CheckpointInfo
from vitnirs.config import Config
from vitnirs.data.store import PreparedStore
from vitnirs.evaluate.baselines import BaselineCache, best_classical, cached_baselines, run_baselines
from vitnirs.evaluate.downstream import run_heads
from vitnirs.evaluate.lodo_table import CLASSICAL, DOWNSTREAM_ONLY, STRICT, lodo_table, plot_lodo
from vitnirs.evaluate.lodo_table import LABELS as LABELS  # re-exported (lodo.LABELS)
from vitnirs.evaluate.metrics import summarise
from vitnirs.evaluate.splits import make_splits, regression_targets

__all__ = ["PROTOCOLS", "dataset_records", "downstream_only_lodo", "lodo_table", "plot_lodo"]

PROTOCOLS = {
    STRICT: "encoder never saw this dataset (pretrained without it); heads fitted on this dataset's train part",
    DOWNSTREAM_ONLY: (
        "encoder pretrained on every dataset, this one included (its spectra, never its targets); "
        "heads fitted on this dataset's train part"
    ),
    CLASSICAL: "best classical baseline (linear methods) on the same splits; no encoder",
}


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


def dataset_records(
    store: PreparedStore, dataset: str, Z: np.ndarray, protocol: str, *, cfg: Config, tag: dict,
    baseline_records: Sequence[dict] | None, cache: BaselineCache | None, engine: str,
) -> list[dict]:  # fmt: skip
    """Heads on ``Z`` (n, D) plus the best classical baseline, per target and split family.

    ``protocol`` labels the embedding records (downstream-only here, strict in
    :mod:`vitnirs.research.strict_lodo`); ``tag`` (``checkpoint``, ``bank``, ...) goes into each;
    ``baseline_records`` are per-split baselines to reuse, else they are fitted (through ``cache``).
    """
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
        records += dataset_records(
            store, dataset, Z, DOWNSTREAM_ONLY, cfg=cfg, tag=tag,
            baseline_records=baseline_records, cache=cache, engine=engine,
        )  # fmt: skip
    return records
