"""The headline figures of an evaluation: per dataset and target, the best classical, best
overall and best embedding result, the untrained control, and their ratios.

:func:`target_figures` is the one place where these are picked: the console lines
(:mod:`vitnirs.evaluate.text`, through :func:`summary_rows`, the ``summary`` of ``metrics.json``)
and the HTML report (:func:`vitnirs.report.tables.compare`) both call it, so they show the same
numbers.

Regression: lower RMSEP wins; ``ratio`` = best embedding RMSEP / best classical RMSEP
(> 1: the encoder loses). Class targets: higher balanced accuracy wins; ``ratio`` = best
embedding balanced accuracy / best classical (< 1: the encoder loses). Repeated random
splits are averaged first (:func:`vitnirs.evaluate.metrics.summarise`), so ``std`` is
there when the protocol was repeated. The untrained control is the mean over its seeds of each
seed's best head (not the best head of the seed-averaged scores). Controls are never a rival.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from vitnirs.evaluate.baselines import CLASS_METHODS, NONLINEAR_METHODS
from vitnirs.evaluate.metrics import summarise
from vitnirs.evaluate.names import control_prefix, is_control, is_embedding

__all__ = [
    "CONTROLS",
    "LEVEL_RULE",
    "LEVEL_TOLERANCE",
    "outcome",
    "row_gap",
    "row_outcome",
    "summarise_controls",
    "summary_rows",
    "target_figures",
]

# prefix of the control's methods → (its key in the figures / in a summary row, the ratio's key)
CONTROLS = {
    "untrained": ("best_untrained", "pretrained_vs_untrained"),
    "snv_sg1": ("best_snv_sg1_features", "embedding_vs_snv_sg1_features"),
    "minirocket": ("best_minirocket_features", "embedding_vs_minirocket_features"),
}


def summarise_controls(
    controls: Sequence[dict], aggregate: Callable[[Sequence[dict]], list[dict]] = summarise
) -> list[dict]:
    """Control records averaged over repeated splits, each untrained seed apart (``"seed"`` kept)."""
    ctrl = [r for r in controls if r.get("metrics") is not None]
    seeds = list(dict.fromkeys(r.get("seed") for r in ctrl))
    return [
        {**row, "seed": seed}
        for seed in seeds
        for row in aggregate([r for r in ctrl if r.get("seed") == seed])
    ]


def _score(r: dict, key: str) -> float | None:
    v = (r.get("metrics") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not math.isnan(v) else None


def _best(rows: Sequence[dict], key: str, higher: bool) -> dict | None:
    rows = [r for r in rows if _score(r, key) is not None]
    return (max if higher else min)(rows, key=lambda r: r["metrics"][key]) if rows else None


def _ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    """``a / b`` of the metric, rounded to 3 decimals as every table and line shows it."""
    if a is None or b is None or not b["metrics"][key]:
        return None
    return round(a["metrics"][key] / b["metrics"][key], 3)


def _control(rows: Sequence[dict], key: str, higher: bool) -> dict | None:
    """One control: the mean over its seeds of each seed's best head, as a record
    (``method``: the first seed's best head; ``seeds``: each seed's best score when several)."""
    per_seed = {}
    for seed in dict.fromkeys(r.get("seed") for r in rows):
        best = _best([r for r in rows if r.get("seed") == seed], key, higher)
        if best is not None:
            per_seed[seed] = best
    if not per_seed:
        return None
    first = next(iter(per_seed.values()))
    value = sum(r["metrics"][key] for r in per_seed.values()) / len(per_seed)
    out = {**first, "metrics": {key: value}, "std": {key: (first.get("std") or {}).get(key)}}
    if len(per_seed) > 1:
        out["seeds"] = {str(s): r["metrics"][key] for s, r in per_seed.items()}
    return out


def target_figures(records: Sequence[dict], controls: Sequence[dict] = (), *, higher: bool) -> dict:
    """The figures of one dataset / target / protocol that the console and the report show.

    Parameters
    ----------
    records:
        Baselines and embedding heads of one dataset, target and protocol, averaged over
        repeated splits (one record per method, ``{"method", "metrics", "std", ...}``).
    controls:
        The controls of the same, averaged per untrained seed (:func:`summarise_controls`).
    higher:
        Class targets (balanced accuracy, higher wins); else RMSEP (lower wins).

    Returns
    -------
    dict
        ``{"key", "best_classical" (best linear baseline; for a class target, the best baseline),
        "best_overall" (best baseline, non-linear ones included), "best_embedding",
        "embedding_vs_best_classical", "best_untrained" (mean over seeds of each seed's best
        untrained head), "pretrained_vs_untrained", "best_snv_sg1_features",
        "embedding_vs_snv_sg1_features", "best_minirocket_features",
        "embedding_vs_minirocket_features"}``; records or ratios, None where absent. Control
        records never enter the baselines' or the embedding's bests.
    """
    key = "balanced_accuracy" if higher else "rmsep"
    base = [r for r in records if not is_embedding(r["method"]) and not is_control(r["method"])]
    be = _best([r for r in records if is_embedding(r["method"])], key, higher)
    bc = _best([r for r in base if r["method"] not in NONLINEAR_METHODS], key, higher)
    out = {
        "key": key,
        "best_classical": bc,
        "best_overall": _best(base, key, higher),
        "best_embedding": be,
        "embedding_vs_best_classical": _ratio(be, bc, key),
    }
    for prefix, (best_key, ratio_key) in CONTROLS.items():
        mine = [r for r in controls if control_prefix(r["method"]) == prefix]
        control = _control(mine, key, higher)
        out |= {best_key: control, ratio_key: _ratio(be, control, key)}
    return out


def summary_rows(
    baselines: Sequence[dict], downstream: Sequence[dict], controls: Sequence[dict] = ()
) -> list[dict]:
    """One row per (dataset, target), on the first protocol its baselines were scored on.

    ``controls``: the same heads on the untrained network's embedding (``untrained+<head>``) and
    on classical features, SNV + SG1 of the spectra (``snv_sg1+<head>``).

    Returns
    -------
    list of dict
        ``{"dataset", "target", "task", "protocol", "best_classical", "best_overall",
        "best_embedding", "embedding_vs_best_classical", "embedding_wins"}``, and with controls
        ``"best_untrained"`` and ``"pretrained_vs_untrained"`` (best embedding ÷ untrained
        control: RMSEP, < 1 = pretraining helped; balanced accuracy, > 1 = it helped), and
        ``"best_snv_sg1_features"`` with ``"embedding_vs_snv_sg1_features"`` (MiniRocket features
        likewise, ``"best_minirocket_features"``, when that control ran); the ``best_*``
        values are ``{"method", <metric>, "std"}`` (and ``"seeds"``: each untrained seed's best
        score) or None. All from :func:`target_figures`.
    """
    base_sum = summarise(baselines)
    down_sum = summarise([r for r in downstream if r.get("metrics") is not None])
    ctrl_sum = summarise_controls(controls)
    rows = []
    for dataset, target in dict.fromkeys((r["dataset"], r["target"]) for r in base_sum):
        proto = next(r["protocol"] for r in base_sum if (r["dataset"], r["target"]) == (dataset, target))

        def mine(rows: list[dict], dataset=dataset, target=target, proto=proto) -> list[dict]:
            return [r for r in rows if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)]

        b = mine(base_sum)
        higher = any(r["method"] in CLASS_METHODS for r in b)
        fig = target_figures(b + mine(down_sum), mine(ctrl_sum), higher=higher)
        key, ratio = fig["key"], fig["embedding_vs_best_classical"]
        row = {
            "dataset": dataset, "target": target, "task": "classification" if higher else "regression",
            "protocol": proto, "best_classical": _brief(fig["best_classical"], key),
            "best_overall": _brief(fig["best_overall"], key), "best_embedding": _brief(fig["best_embedding"], key),
            "embedding_vs_best_classical": ratio,
            "embedding_wins": None if ratio is None else (ratio > 1.0 if higher else ratio < 1.0),
        }  # fmt: skip
        for best_key, ratio_key in CONTROLS.values():
            if fig[best_key] is not None:
                row |= {best_key: _brief(fig[best_key], key, r2=False), ratio_key: fig[ratio_key]}
        rows.append(row)
    return rows


def row_outcome(row: dict, against: str = "best_classical") -> str | None:
    """``"worse"`` / ``"level"`` / ``"better"``: the best embedding head of a :func:`summary_rows` row
    against its ``against`` entry (``"best_classical"``, or ``"best_untrained"``: did pretraining
    help?), within the noise as :func:`outcome`; None when either is missing."""
    found = row_gap(row, against)
    return None if found is None else found[0]


def row_gap(row: dict, against: str = "best_classical") -> tuple[str, float, float] | None:
    """:func:`outcome` (result, gap, tolerance) of a :func:`summary_rows` row, as :func:`row_outcome`."""
    key = "balanced_accuracy" if row.get("task") == "classification" else "rmsep"
    be, other = row.get("best_embedding") or {}, row.get(against) or {}
    e, c = be.get(key), other.get(key)
    if not isinstance(e, (int, float)) or not isinstance(c, (int, float)):
        return None
    noise = max(be.get("std") or 0.0, other.get("std") or 0.0)
    return outcome(float(e), float(c), higher=key == "balanced_accuracy", noise=noise)


def _brief(r: dict | None, key: str, *, r2: bool = True) -> dict | None:
    if r is None:
        return None
    out = {"method": r["method"], key: r["metrics"][key], "std": (r.get("std") or {}).get(key)}
    if r2 and "r2" in r["metrics"]:
        out["r2"] = r["metrics"]["r2"]
    if "seeds" in r:
        out["seeds"] = r["seeds"]
    return out


# ----------------------------------------------------------------------------- verdicts
LEVEL_TOLERANCE = 0.02
LEVEL_RULE = (
    "Verdict rule: “level” when the best embedding head is within 2 % of the best classical RMSEP "
    "(2 points of balanced accuracy for class targets) or, with repeated splits, within the larger "
    "run-to-run std of the two; “worse” and “beats” only beyond that."
)


def outcome(e: float, c: float, *, higher: bool, noise: float = 0.0) -> tuple[str, float, float]:
    """``("worse" | "level" | "better", gap, tolerance)`` of an embedding score ``e`` against a
    classical score ``c``.

    ``gap`` > 0 means the encoder is worse: relative (``e / c - 1``) for RMSEP, absolute points
    (``c - e``) for balanced accuracy (``higher``). ``tolerance`` = max(:data:`LEVEL_TOLERANCE`,
    ``noise``), ``noise`` being the run-to-run std (relative to ``c`` for RMSEP); within it the
    two are level.
    """
    if higher:
        gap, tol = c - e, max(LEVEL_TOLERANCE, noise)
    else:
        gap, tol = (e / c - 1.0 if c else math.inf), max(LEVEL_TOLERANCE, noise / c if c else 0.0)
    return ("level" if abs(gap) <= tol else "worse" if gap > 0 else "better"), gap, tol
