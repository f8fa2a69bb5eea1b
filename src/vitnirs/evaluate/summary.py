"""The headline rows of an evaluation: per dataset and target, the best classical, best
overall and best embedding result on the main split protocol, and their ratio.

Regression: lower RMSEP wins; ``ratio`` = best embedding RMSEP / best classical RMSEP
(> 1: the encoder loses). Class targets: higher balanced accuracy wins; ``ratio`` = best
embedding balanced accuracy / best classical (< 1: the encoder loses). Repeated random
splits are averaged first (:func:`vitnirs.evaluate.metrics.summarise`), so ``std`` is
there when the protocol was repeated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vitnirs.evaluate.baselines import CLASS_METHODS, best_classical, best_overall
from vitnirs.evaluate.metrics import summarise


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
        ``"best_untrained"`` and ``"pretrained_vs_untrained"`` (best embedding ÷ best untrained
        head: RMSEP, < 1 = pretraining helped; balanced accuracy, > 1 = it helped), and
        ``"best_snv_sg1_features"`` with ``"embedding_vs_snv_sg1_features"``; the ``best_*``
        values are ``{"method", <metric>, "std"}`` or None.
    """
    base_sum = summarise(baselines)
    down_sum = summarise([r for r in downstream if r.get("metrics") is not None])
    ctrl = [r for r in controls if r.get("metrics") is not None]
    seeds = list(dict.fromkeys(r.get("seed") for r in ctrl))  # each untrained seed summarised apart
    ctrl_sum = [
        {**row, "seed": seed}
        for seed in seeds
        for row in summarise([r for r in ctrl if r.get("seed") == seed])
    ]
    rows = []
    for dataset, target in dict.fromkeys((r["dataset"], r["target"]) for r in base_sum):
        mine = [r for r in base_sum if (r["dataset"], r["target"]) == (dataset, target)]
        proto = mine[0]["protocol"]
        b = [r for r in mine if r["protocol"] == proto]
        d = [r for r in down_sum if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)]
        c = [r for r in ctrl_sum if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)]
        if any(r["method"] in CLASS_METHODS for r in b):
            rows.append(_class_row(dataset, target, proto, b, d) | _control(d, c, "balanced_accuracy", max))
            continue
        best_emb = min(d, key=lambda r: r["metrics"]["rmsep"]) if d else None
        bc, bo = best_classical(b), best_overall(b)
        ratio = round(best_emb["metrics"]["rmsep"] / bc["metrics"]["rmsep"], 3) if best_emb and bc else None
        rows.append(
            {
                "dataset": dataset, "target": target, "task": "regression", "protocol": proto,
                "best_classical": _brief(bc, "rmsep"), "best_overall": _brief(bo, "rmsep"),
                "best_embedding": _brief(best_emb, "rmsep"),
                "embedding_vs_best_classical": ratio,
                "embedding_wins": None if ratio is None else ratio < 1.0,
            }
            | _control(d, c, "rmsep", min)
        )  # fmt: skip
    return rows


def _control(d: list[dict], c: list[dict], key: str, best) -> dict:
    """The best head of each control and the embedding's ratio to it (empty without controls).

    The untrained control is the mean over its seeds of each seed's best head: ``best_untrained``
    holds that mean (``method``: seed 0's best head) and ``seeds``, each seed's best score."""
    out = {}
    names = (("untrained", "best_untrained", "pretrained_vs_untrained"),
             ("snv_sg1", "best_snv_sg1_features", "embedding_vs_snv_sg1_features"))  # fmt: skip
    be = best(d, key=lambda r: r["metrics"][key]) if d else None
    for prefix, best_key, ratio_key in names:
        mine = [r for r in c if str(r["method"]).startswith(prefix + "+")]
        if not mine:
            continue
        per_seed = {}
        for seed in dict.fromkeys(r.get("seed") for r in mine):
            per_seed[seed] = best([r for r in mine if r.get("seed") == seed], key=lambda r: r["metrics"][key])
        first = next(iter(per_seed.values()))
        value = sum(r["metrics"][key] for r in per_seed.values()) / len(per_seed)
        brief = {"method": first["method"], key: value, "std": (first.get("std") or {}).get(key)}
        if len(per_seed) > 1:
            brief["seeds"] = {str(s): r["metrics"][key] for s, r in per_seed.items()}
        ratio = round(be["metrics"][key] / value, 3) if be and value else None
        out |= {best_key: brief, ratio_key: ratio}
    return out


def _class_row(dataset: str, target: str, proto: str, b: list[dict], d: list[dict]) -> dict:
    key = "balanced_accuracy"
    bc = max(b, key=lambda r: r["metrics"][key]) if b else None
    be = max(d, key=lambda r: r["metrics"][key]) if d else None
    ratio = round(be["metrics"][key] / bc["metrics"][key], 3) if be and bc and bc["metrics"][key] else None
    return {
        "dataset": dataset, "target": target, "task": "classification", "protocol": proto,
        "best_classical": _brief(bc, key), "best_overall": _brief(bc, key), "best_embedding": _brief(be, key),
        "embedding_vs_best_classical": ratio,
        "embedding_wins": None if ratio is None else ratio > 1.0,
    }  # fmt: skip


def _brief(r: dict | None, key: str) -> dict | None:
    if r is None:
        return None
    out = {"method": r["method"], key: r["metrics"][key], "std": (r.get("std") or {}).get(key)}
    if "r2" in r["metrics"]:
        out["r2"] = r["metrics"]["r2"]
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
