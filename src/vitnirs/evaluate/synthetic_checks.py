"""Synthetic checks: is the synthetic part of the bank realistic, and does it help?

* **Separability** (:func:`embedding_separability`, from :mod:`vitnirs.evaluate.separability`,
  re-exported here): real vs synthetic spectra, on the frozen embedding and on raw / SNV spectra,
  with the corn m5 vs mp5 reference.
* **Paired-view invariance** (:func:`paired_view_invariance`): for synthetic table pairs
  (``paired_with``: the same samples seen by two simulated instruments, aligned by
  ``pair_id``, else by row) and the real corn instruments (aligned by ``sample_id``), the
  cosine distance (1 − cos) and the Euclidean distance between the embeddings of the two
  views of a sample, against those of a random *other* sample of the other view (same two
  tables). Ratio paired / random < 1: the encoder maps the same sample on two instruments
  closer than two different samples. Top-1: how often a sample's nearest neighbour (Euclidean)
  among the other view's rows is its own partner, both directions averaged; chance = 1/n.
* **p_synth lift** (:func:`psynth_lift`): two ``metrics.json`` of encoders pretrained with
  p_synth = 0 and 0.3 on the same splits; per (dataset, target, head, protocol) the RMSEP
  of each (mean over repeats) and the relative change (negative = synthetic data helped).

:func:`synthetic_checks` turns the first two into the records of the ``synthetic_checks``
section of ``metrics.json``; a check that cannot run gives a record whose ``skipped`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vitnirs.evaluate.metrics import summarise
from vitnirs.evaluate.separability import CORN, GRID_NM, N_FOLDS, Embeddings, balanced_rows, embed_rows
from vitnirs.evaluate.separability import embedding_separability as embedding_separability  # re-exported

__all__ = ["embedding_separability", "paired_view_invariance", "psynth_lift", "synthetic_checks"]

AUC_METHODS = {
    "embedding": "embedding_logistic_auc",
    "raw": "raw_adversarial_auc",
    "raw_snv": "raw_snv_adversarial_auc",
}


# ----------------------------------------------------------------------------- paired views
def _synthetic_pairs(store: Any) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """``(a, b, rows_a, rows_b)`` per synthetic table pair: ``a[rows_a[i]]`` and ``b[rows_b[i]]``
    are the same sample (matched by ``pair_id`` when both tables have it, else by row)."""
    out, seen = [], set()
    for a in store.names(kind="synthetic"):
        b = store.records[a].get("paired_with")
        if not b or b not in store.records or frozenset((a, b)) in seen:
            continue
        seen.add(frozenset((a, b)))
        ma, mb = store.metadata(a), store.metadata(b)
        if "pair_id" in ma.columns and "pair_id" in mb.columns:
            ids_a, ids_b = ma["pair_id"].astype(str).to_numpy(), mb["pair_id"].astype(str).to_numpy()
            pos = {s: i for i, s in enumerate(ids_b)}
            rows_a = np.array([i for i, s in enumerate(ids_a) if s in pos], dtype=np.int64)
            rows_b = np.array([pos[ids_a[i]] for i in rows_a], dtype=np.int64)
        else:
            n = min(store.records[a]["n_rows"], store.records[b]["n_rows"])
            rows_a = rows_b = np.arange(n)
        out.append((a, b, rows_a, rows_b))
    return out


def _corn_pairs(store: Any) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """The real corn instruments present, every pair aligned by ``sample_id``."""
    from vitnirs.evaluate.transfer import align_instruments

    names = [n for n in CORN if n in store.records]
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out.append((a, b, np.arange(store.records[a]["n_rows"]), align_instruments(store, a, b)))
    return out


def _cosine_distance(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise ``1 - cos(A[i], B[i])``; ``(n,)``."""
    norms = np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1)
    return 1.0 - np.sum(A * B, axis=1) / np.maximum(norms, 1e-12)


def _pair_distances(
    pairs: list, model: Any, store: Any, max_pairs: int, seed: int, emb: Embeddings, info: Any = None
) -> dict:
    """Paired vs random-pair distances and top-1 retrieval, pooled over the table pairs."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(seed)
    picks = balanced_rows({i: len(p[2]) for i, p in enumerate(pairs)}, max_pairs, rng)
    dist: dict[str, list[np.ndarray]] = {"paired": [], "random": [], "paired_cos": [], "random_cos": []}
    hits, n_tables, used = [], 0, []
    for i, (a, b, rows_a, rows_b) in enumerate(pairs):
        k, n = picks[i], len(picks[i])
        if n < 2:
            continue
        Za = embed_rows(model, store, a, rows_a[k], emb, info).astype(np.float64)  # [n, D]
        Zb = embed_rows(model, store, b, rows_b[k], emb, info).astype(np.float64)  # [n, D], row i = partner
        other = (np.arange(n) + rng.integers(1, n, size=n)) % n  # a random partner != i
        for tag, Zo in (("paired", Zb), ("random", Zb[other])):
            dist[tag].append(np.linalg.norm(Za - Zo, axis=1))
            dist[f"{tag}_cos"].append(_cosine_distance(Za, Zo))
        D = cdist(Za, Zb)  # [n, n] Euclidean
        hits += [D.argmin(axis=1) == np.arange(n), D.argmin(axis=0) == np.arange(n)]
        n_tables, used = n_tables + 1, [*used, [a, b]]
    if not used:
        return {"skipped": "no table pair with at least 2 aligned samples"}
    d = {k: np.concatenate(v) for k, v in dist.items()}
    out: dict[str, Any] = {"n_pairs": len(d["paired"]), "tables": used}
    for long, key in (("euclidean", ""), ("cosine", "_cos")):
        p, r = d[f"paired{key}"], d[f"random{key}"]
        out[f"{long}_ratio"] = float(p.mean() / r.mean()) if r.mean() > 0 else float("nan")
        for tag, x in (("paired", p), ("random", r)):
            out |= {f"{tag}_{long}_mean": float(x.mean()), f"{tag}_{long}_median": float(np.median(x))}
    out["top1"] = float(np.concatenate(hits).mean())
    out["top1_chance"] = n_tables / out["n_pairs"]
    return out


def paired_view_invariance(
    store: Any,
    model: Any,
    *,
    max_pairs: int = 500,
    seed: int = 0,
    embeddings: Embeddings = None,
    info: Any = None,
) -> dict:
    """Embedding distance of paired views vs random pairs, and top-1 partner retrieval.

    Returns
    -------
    dict
        ``{"synthetic": ..., "corn": ...}``, each ``{"cosine_ratio", "euclidean_ratio",
        "paired_/random_{cosine,euclidean}_{mean,median}", "top1", "top1_chance", "n_pairs",
        "tables"}`` pooled over the table pairs (at most ``max_pairs`` samples in all, spread
        evenly), or ``{"skipped": reason}``.
    """
    out = {}
    for key, find in (("synthetic", _synthetic_pairs), ("corn", _corn_pairs)):
        try:
            pairs = find(store)
        except ValueError as err:  # corn rows that cannot be aligned by sample_id
            out[key] = {"skipped": str(err)}
            continue
        if not pairs:
            what = "paired synthetic tables" if key == "synthetic" else "two corn instruments"
            out[key] = {"skipped": f"no {what} in the store"}
            continue
        out[key] = _pair_distances(pairs, model, store, max_pairs, seed, embeddings, info)
    return out


# ----------------------------------------------------------------------------- p_synth lift
def psynth_lift(metrics_without: Mapping, metrics_with: Mapping) -> list[dict]:
    """Per (dataset, target, head, protocol): RMSEP without / with synthetic pretraining data.

    Parameters
    ----------
    metrics_without, metrics_with : the ``metrics.json`` dicts of two encoders (p_synth = 0
        and p_synth > 0) evaluated on the same splits; their ``downstream`` records are
        averaged over repeated splits (:func:`vitnirs.evaluate.metrics.summarise`).

    Returns
    -------
    list of dict
        ``{dataset, target, method, protocol, n_train, n_test, metrics: {"rmsep_without",
        "rmsep_with", "relative_change"}, std, checkpoint, checkpoint_without, bank}``;
        ``relative_change = (with - without) / without`` (negative = synthetic data helped).
        A key evaluated by only one of the two gives a record with ``skipped``.
    """
    sides = [
        {
            (r["dataset"], r["target"], r["method"], r["protocol"]): r
            for r in summarise(m.get("downstream", []))
        }
        for m in (metrics_without, metrics_with)
    ]
    common = {"checkpoint": metrics_with.get("checkpoint"), "bank": metrics_with.get("bank"),
              "checkpoint_without": metrics_without.get("checkpoint")}  # fmt: skip
    out = []
    for key in dict.fromkeys([*sides[0], *sides[1]]):
        tag = dict(zip(("dataset", "target", "method", "protocol"), key, strict=True))
        without, with_ = sides[0].get(key), sides[1].get(key)
        if without is None or with_ is None:
            missing = "with" if with_ is None else "without"
            out.append({**tag, **common, "n_train": None, "n_test": None, "metrics": None, "std": None,
                        "skipped": f"no result in the {missing}-synthetic metrics"})  # fmt: skip
            continue
        a, b = without["metrics"]["rmsep"], with_["metrics"]["rmsep"]
        rec = {**tag, **common, "n_train": with_["n_train"], "n_test": with_["n_test"],
               "metrics": {"rmsep_without": a, "rmsep_with": b, "relative_change": (b - a) / a if a > 0 else None},
               "std": {"rmsep_without": without["std"]["rmsep"], "rmsep_with": with_["std"]["rmsep"]}}  # fmt: skip
        if (without["n_train"], without["n_test"]) != (with_["n_train"], with_["n_test"]):
            rec["note"] = "the two runs used different split sizes: not the same splits"
        out.append(rec)
    return out


# ----------------------------------------------------------------------------- records
_AUC_NOTE = "0.5 = indistinguishable, 1 = trivially separable (linear classifier, 5-fold CV ROC-AUC)"
_DATASET_NOTE = {
    "real vs synthetic": "; compare with 'corn m5 vs mp5', the AUC between two real instruments",
    "corn m5 vs mp5": "; the same 80 samples on two real instruments: what an instrument change alone "
    "scores (when it is ~1 too, a high real-vs-synthetic AUC alone does not show unrealistic spectra)",
}
_PAIR_DATASET = {"synthetic": "synthetic paired views", "corn": "corn m5/mp5/mp6 (real instruments)"}
_RATIO_NOTE = (
    "mean embedding distance of the two views of a sample / of random non-matching pairs of the same "
    "two tables: 0 = both views map to one point, 1 = no closer than two different samples"
)
_TOP1_NOTE = (
    "fraction of samples whose nearest embedding among the other view is their partner; chance = top1_chance"
)


def _record(dataset: str, method: str, protocol: str, result: dict, common: dict, **fields: Any) -> dict:
    base = {"dataset": dataset, "target": None, "method": method, "protocol": protocol, **common}
    if "skipped" in result:
        return {
            **base,
            **dict.fromkeys(("n_train", "n_test", "metrics", "std")),
            "skipped": result["skipped"],
        }
    return {**base, **fields}


def _auc_records(dataset: str, checks: dict, common: dict) -> list[dict]:
    out = []
    for key, method in AUC_METHODS.items():
        r = checks[key]
        n = r.get("n_a", 0) + r.get("n_b", 0)
        n_test = round(n / N_FOLDS)
        tables = {"tables_a": r.get("tables_a"), "tables_b": r.get("tables_b")}
        out.append(
            _record(dataset, method, f"{N_FOLDS}-fold CV", r, common, n_train=n - n_test, n_test=n_test,
                    metrics={"auc": r.get("auc")}, std={"auc": r.get("auc_std")},
                    note=_AUC_NOTE + _DATASET_NOTE[dataset], **tables, grid_nm=r.get("grid_nm"))
        )  # fmt: skip
    return out


def _pair_records(key: str, r: dict, common: dict) -> list[dict]:
    dataset, n = _PAIR_DATASET[key], r.get("n_pairs")
    ratio = {k: v for k, v in r.items() if "_ratio" in k or k.startswith(("paired_", "random_"))}
    shared = {"n_train": 0, "n_test": n, "std": None, "tables": r.get("tables")}
    return [
        _record(dataset, "paired_view_distance_ratio", "paired views", r, common, metrics=ratio,
                note=_RATIO_NOTE, **shared),
        _record(dataset, "paired_view_top1", "paired views", r, common,
                metrics={"top1": r.get("top1"), "top1_chance": r.get("top1_chance")}, note=_TOP1_NOTE, **shared),
    ]  # fmt: skip


def synthetic_checks(
    store: Any,
    model: Any,
    *,
    checkpoint: str,
    bank: str,
    seed: int = 0,
    embeddings: Embeddings = None,
    max_per_side: int = 1000,
    max_pairs: int = 500,
    grid_nm: tuple[float, float, float] = GRID_NM,
    info: Any = None,
) -> list[dict]:
    """The records of the ``synthetic_checks`` section of ``metrics.json``.

    One record per check: ``{dataset, target: None, method, protocol, n_train, n_test,
    metrics, std, checkpoint, bank, note, ...}`` with ``dataset`` one of ``"real vs
    synthetic"``, ``"corn m5 vs mp5"`` (methods ``embedding_logistic_auc``,
    ``raw_adversarial_auc``, ``raw_snv_adversarial_auc``; ``metrics = {"auc"}``, ``std =
    {"auc"}`` over the CV folds; ``tables_a`` = the real / m5 tables, ``tables_b`` = the
    synthetic / mp5 ones), ``"synthetic paired views"`` and ``"corn m5/mp5/mp6 (real
    instruments)"`` (methods ``paired_view_distance_ratio``, ``paired_view_top1``). A check
    that cannot run (no synthetic data, no paired tables, no corn) has ``skipped`` (why) and
    ``metrics = None``.
    """
    common = {"checkpoint": str(checkpoint), "bank": str(bank)}
    sep = embedding_separability(store, model, max_per_side=max_per_side, seed=seed, embeddings=embeddings,
                                 grid_nm=grid_nm, info=info)  # fmt: skip
    pairs = paired_view_invariance(
        store, model, max_pairs=max_pairs, seed=seed, embeddings=embeddings, info=info
    )
    return [
        *_auc_records("real vs synthetic", sep["real_vs_synthetic"], common),
        *_auc_records("corn m5 vs mp5", sep["corn_m5_vs_mp5"], common),
        *_pair_records("synthetic", pairs["synthetic"], common),
        *_pair_records("corn", pairs["corn"], common),
    ]
