"""Few-shot calibration: how many labelled spectra a head on the frozen embedding needs.

For one regression target and its first split of :func:`~vitnirs.evaluate.splits.make_splits`
(the split of the full-calibration section, same test rows), each calibration size ``n`` gets
``draws`` fixed draws of ``n`` rows from the split's **train rows only**; draw ``k`` is seeded
by ``(seed, k, n)``, so every method sees the same draws, in every run. On each draw:

- each head (``ridge``, ``pls``, ``kernel_ridge``, …) is fitted on the features of exactly
  those ``n`` rows, for every feature source (the embedding, each untrained network, the
  classical features and any other control), and scored (RMSEP) on the split's test rows;
- the classical methods ``pls_raw``, ``snv_sg1_pls`` and ``aom_pls`` are fitted by
  :func:`~vitnirs.evaluate.baselines.run_baselines` on the same rows (PLS components by an
  inner CV capped below ``n``, its folds at ``n``), cached in the
  :class:`~vitnirs.evaluate.baselines.BaselineCache` under the draw's split key (``n``, draw
  index, hash of its rows) and the method, so a second checkpoint refits none of them.

A size ``n`` at or above the number of train rows is skipped, with the reason. The draw's CV
groups (the ``fold`` column) are kept for the inner CV when they hold ≥ 2 values and no group
holds more than half the drawn rows; otherwise the inner CV is a shuffled KFold.

Heads are fitted by :func:`vitnirs.evaluate.downstream.fit_head` (for ``ridge``, ``pls`` and
``kernel_ridge`` its closed-form grid search, :mod:`vitnirs.evaluate.head_search`). Everything here runs with one BLAS thread: on tens
of rows, more threads only spin (measured 10× slower with two threads on a busy 2-core machine).

Records (one per dataset, target, method, n)::

    {"dataset", "target", "method", "source", "n", "draws", "rmsep_draws", "rmsep_median",
     "protocol", "n_train_full", "n_test", "seed" (untrained networks only)}

``method`` is ``<source>+<head>`` for a feature source, the baseline's name for a classical
method (``source`` ``"classical"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from vitnirs.evaluate import downstream
from vitnirs.evaluate.baselines import BaselineCache, run_baselines
from vitnirs.evaluate.splits import Split, make_splits, regression_targets

__all__ = [
    "FEWSHOT_BASELINES",
    "draw_splits",
    "fewshot_section",
    "fewshot_summary",
    "fewshot_target",
    "fit_fewshot_head",
]

FEWSHOT_BASELINES = ("pls_raw", "snv_sg1_pls", "aom_pls")
# the grids of vitnirs.evaluate.downstream.fit_head (tests/test_fewshot.py checks that both choose alike)
RIDGE_ALPHAS = np.logspace(-6, 4, 21)
KRR_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0)
KRR_GAMMAS = (0.1, 1.0, 10.0)  # × 1 / D
MAX_PLS = 20

Source = tuple[str, Callable[[str], np.ndarray], dict]  # (prefix, dataset -> (N, D) features, extra fields)


# ----------------------------------------------------------------------------- draws
def draw_splits(split: Split, n: int, draws: int, seed: int) -> list[Split]:
    """``draws`` splits of ``n`` rows drawn from ``split.train`` (sorted), tested on ``split.test``.

    Draw ``k`` uses ``np.random.default_rng([seed, k, n])``; its name ``fewshot_n<n>_draw<k>``
    and its rows make its cache key. Raises ``ValueError`` when ``n`` is not below the train size.
    """
    if not 1 <= n < len(split.train):
        raise ValueError(f"n = {n} must be in [1, {len(split.train)}) (the train rows of the split)")
    position = {int(r): i for i, r in enumerate(split.train)}
    out = []
    for k in range(draws):
        rows = np.sort(np.random.default_rng([seed, k, n]).choice(split.train, size=n, replace=False))
        groups = None
        if split.groups is not None:
            g = np.asarray(split.groups)[[position[int(r)] for r in rows]]
            counts = np.unique(g, return_counts=True)[1]
            groups = g if len(counts) >= 2 and counts.max() <= n / 2 else None
        out.append(
            Split(f"fewshot_n{n}_draw{k}", rows, np.asarray(split.test), groups, f"{n} rows of {split.name}")
        )
    return out


# ----------------------------------------------------------------------------- heads
def fit_fewshot_head(
    method: str, Z: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None = None, seed: int = 0
) -> tuple[BaseEstimator, dict[str, Any]]:
    """Fit one regression head on the ``n`` drawn rows: :func:`~vitnirs.evaluate.downstream.fit_head`
    (its closed-form search for ridge, pls and kernel_ridge). A name of its own so that a test can
    spy on what each head is given."""
    return downstream.fit_head(method, Z, y, groups=groups, task="regression", seed=seed)


def _rmsep(model: BaseEstimator, Z: np.ndarray, y: np.ndarray) -> float:
    pred = np.asarray(model.predict(Z), dtype=np.float64).reshape(len(y), -1)[:, 0]
    return float(np.sqrt(np.mean((pred - y) ** 2)))


# ----------------------------------------------------------------------------- one target
@threadpool_limits.wrap(limits=1)  # ≤ 50 rows: BLAS threads only spin (10× slower on a busy 2-core box)
def fewshot_target(
    X: np.ndarray,
    y: np.ndarray,
    split: Split,
    *,
    dataset: str,
    features: Sequence[tuple[str, np.ndarray, dict]],
    heads: Sequence[str],
    sizes: Sequence[int],
    draws: int,
    seed: int,
    cache: BaselineCache | None = None,
    dataset_hash: str = "",
    target: str = "",
    baselines: Sequence[str] = FEWSHOT_BASELINES,
    aom_bank: str | None = None,
) -> tuple[list[dict], list[dict]]:
    """The few-shot records of one dataset/target and the sizes or heads it skipped.

    ``X`` ``(N, L)`` spectra and ``y`` ``(N,)`` of every row; ``features``: ``(prefix, (N, D)
    features, extra record fields)`` per source. Classical methods are read from (and written
    to) ``cache`` when one is given (saved once at the end, if anything was fitted).
    Returns ``(records, skipped)``; a skipped entry is ``{"dataset", "target", "n"|"method", "reason"}``.
    """
    y = np.asarray(y, dtype=np.float64)
    base = {"dataset": dataset, "target": target, "protocol": split.name}
    base |= {"n_train_full": len(split.train), "n_test": len(split.test), "draws": draws}
    records: list[dict] = []
    skipped: list[dict] = []
    unavailable: dict[str, str] = {}
    fitted = False
    for n in sizes:
        if n >= len(split.train):
            reason = f"n = {n} is not below the {len(split.train)} train rows of the {split.name} split"
            skipped.append({"dataset": dataset, "target": target, "n": n, "reason": reason})
            continue
        chosen = draw_splits(split, n, draws, seed)
        for prefix, Z, extra in features:
            for head in heads:
                if head in unavailable:
                    continue
                t0, errors = time.perf_counter(), []
                try:
                    for d in chosen:
                        model, _ = fit_fewshot_head(head, Z[d.train], y[d.train], groups=d.groups, seed=seed)
                        errors.append(_rmsep(model, Z[d.test], y[d.test]))
                except downstream.HeadUnavailableError as exc:
                    unavailable[head] = str(exc)
                    continue
                records.append(_record(base, f"{prefix}+{head}", prefix, n, errors, t0) | extra)
        for method in baselines:
            t0, errors = time.perf_counter(), []
            for d in chosen:
                key = BaselineCache.key(dataset_hash, target, d, method) if cache is not None else None
                rec = cache.get(key) if cache is not None else None
                if rec is None:
                    rec = run_baselines(X, y, d, methods=[method], seed=seed, aom_bank=aom_bank)[0]
                    if cache is not None:
                        cache.put(key, {**rec, "target": target})
                        fitted = True
                errors.append(float(rec["metrics"]["rmsep"]))
            records.append(_record(base, method, "classical", n, errors, t0))
    if cache is not None and fitted:
        cache.save()
    skipped += [
        {"dataset": dataset, "target": target, "method": h, "reason": r} for h, r in unavailable.items()
    ]
    return records, skipped


def _record(base: dict, method: str, source: str, n: int, errors: list[float], t0: float) -> dict:
    return base | {
        "method": method,
        "source": source,
        "n": n,
        "rmsep_draws": errors,
        "rmsep_median": float(np.median(errors)),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def fewshot_section(
    store: Any,
    cfg: Any,
    tasks: Sequence[tuple[str, str]],
    sources: Sequence[Source],
    *,
    cache: BaselineCache | None,
    heads: Sequence[str],
    progress: bool = False,
) -> tuple[list[dict], list[dict]]:
    """:func:`fewshot_target` over the regression ``tasks`` ``(dataset, target)`` of a prepared store.

    ``cfg``: the run's :class:`~vitnirs.config.Config` (``evaluation.fewshot_sizes``, ``fewshot_draws``,
    ``baseline_methods``, ``aom_bank``, ``repeats``; ``training.seed``); ``sources``: ``(prefix,
    dataset -> (N, D) features, extra record fields)``, the feature sources of the full-calibration
    section; ``heads``: its regression heads. The classical methods are those of
    :data:`FEWSHOT_BASELINES` in ``evaluation.baseline_methods``.
    """
    from tqdm.auto import tqdm

    ev, seed = cfg.evaluation, cfg.training.seed
    baselines = [m for m in FEWSHOT_BASELINES if m in ev.baseline_methods]
    records: list[dict] = []
    skipped: list[dict] = []
    for dataset, target in tqdm(tasks, desc="few-shot", unit="target", disable=not progress):
        X = np.asarray(store.values(dataset), dtype=np.float64)
        y = regression_targets(store.targets(dataset))[target]
        split = make_splits(store.metadata(dataset), X, y, seed=seed, n_repeats=ev.repeats)[0]
        recs, skip = fewshot_target(
            X, y, split, dataset=dataset, target=target, heads=heads,
            features=[(prefix, embed(dataset), extra) for prefix, embed, extra in sources],
            sizes=ev.fewshot_sizes, draws=ev.fewshot_draws, seed=seed, cache=cache,
            dataset_hash=store.records[dataset]["content_hash"], baselines=baselines, aom_bank=ev.aom_bank,
        )  # fmt: skip
        records += recs
        skipped += skip
    return records, skipped


# ----------------------------------------------------------------------------- summary
def _best_per_source(records: Sequence[dict]) -> dict[str, float]:
    """Per source of one (dataset, target, n): the best median RMSEP (heads, or classical methods);
    the untrained networks: each seed's best, averaged over the seeds."""
    best: dict[tuple[str, Any], float] = {}
    for r in records:
        key = (r["source"], r.get("seed"))
        best[key] = min(best.get(key, np.inf), r["rmsep_median"])
    out: dict[str, list[float]] = {}
    for (source, _), v in best.items():
        out.setdefault(source, []).append(v)
    return {s: float(np.mean(v)) for s, v in out.items()}


def fewshot_summary(records: Sequence[dict]) -> list[dict]:
    """Per n: the median over targets of the embedding's best median RMSEP divided by the best
    classical one (``embedding_vs_best_classical``) and by each control's (``embedding_vs_<source>``:
    ``untrained`` = the mean of each seed's best head), with the number of targets of each."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["n"], r["dataset"], r["target"]), []).append(r)
    ratios: dict[int, dict[str, list[float]]] = {}
    for (n, _, _), mine in groups.items():
        best = _best_per_source(mine)
        if "embedding" not in best:
            continue
        for source, v in best.items():
            if source != "embedding" and v > 0:
                name = "best_classical" if source == "classical" else source
                ratios.setdefault(n, {}).setdefault(name, []).append(best["embedding"] / v)
    rows = []
    for n in sorted(ratios):
        row: dict[str, Any] = {"n": n}
        for name, values in ratios[n].items():
            row[f"embedding_vs_{name}"] = float(np.median(values))
            row[f"targets_{name}"] = len(values)
        rows.append(row)
    return rows
