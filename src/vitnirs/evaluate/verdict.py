"""Does pretraining pay? One rule, read from one scored entry of a representation study.

Issue 24's rule: an encoder's pretraining *pays* when the encoder is better than the untrained
network of the same architecture (random weights, the study's seeds 0 and 1) on at least three of
the four axes, and worse on none by more than 2 %. Each axis is one number, embedding ÷ untrained
(< 1: the pretrained encoder is better):

- **within**: median ratio to the best classical calibration ÷ the untrained network's (a ratio
  of medians; the paired per-target ``pretraining_gain`` is reported beside it, not used);
- **few-shot**: the median of the n = 10 / 25 / 50 vs-untrained ratios;
- **robustness**: the median over the kinds of perturbation of embedding ÷ untrained;
- **transfer**: the median over the cross-instrument groups (k = 0) of embedding ÷ untrained.

"Worse by more than 2 %" is judged on the worst part of the two composite axes — the worst kind of
perturbation, the worse transfer group — since an encoder that halves the drift but triples the
shift is not more robust. ``benchmarks/screen_table.py`` and the model card both use this module.

>>> axis_ratios(scores)  # doctest: +SKIP
{'within': 1.02, 'fewshot': 0.96, 'robustness': 0.81, 'transfer': 0.76}
"""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["AXES", "SIZES", "axis_ratios", "number_at", "pays", "section_at", "verdict"]

AXES = ("within", "fewshot", "robustness", "transfer")
SIZES = ("10", "25", "50")
TOLERANCE = 1.02


def number_at(node: object, *path: str) -> float | None:
    """The number at ``path`` in nested dicts (a study entry's scores), None when any step is missing."""
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, (int, float)) else None


def section_at(node: object, *path: str) -> dict:
    """The dict at ``path`` in nested dicts, ``{}`` when any step is missing."""
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _parts(scores: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each axis's parts, embedding ÷ untrained: within (one), few-shot (per n), robustness (per
    kind), transfer (per group)."""
    within = scores.get("regression_ratio"), scores.get("untrained_ratio")
    few = {n: f for n in SIZES if (f := number_at(scores, "axes", "fewshot", n, "vs_untrained")) is not None}

    def ratio(node: dict) -> dict[str, float]:
        return {
            k: v["embedding"] / v["untrained"]
            for k, v in node.items()
            if v.get("embedding") and v.get("untrained")
        }

    return {
        "within": {"median": within[0] / within[1]} if all(within) else {},
        "fewshot": few,
        "robustness": ratio(section_at(scores, "axes", "robustness", "by_kind")),
        "transfer": ratio(section_at(scores, "transfer")),
    }


def axis_ratios(
    scores: dict[str, Any] | list[dict[str, Any]], worst: bool = False
) -> dict[str, float | None]:
    """Each axis's embedding ÷ untrained control for one entry's ``scores`` (one readout of a
    study entry); ``worst``: the worst kind / group of robustness and transfer, not their median.
    A list of scores (the seeds of one recipe) is pooled part by part first: each kind, group,
    few-shot size and the within ratio is the mean over the seeds. An axis the entry was not
    scored on is None."""
    runs = [_parts(s) for s in (scores if isinstance(scores, list) else [scores])]
    out: dict[str, float | None] = {}
    for axis in AXES:
        keys = set.intersection(*(set(r[axis]) for r in runs))
        parts = [statistics.fmean(r[axis][k] for r in runs) for k in sorted(keys)]
        pool = max if worst and axis in ("robustness", "transfer") else statistics.median
        out[axis] = pool(parts) if parts else None
    return out


def pays(scores: dict[str, Any] | list[dict[str, Any]]) -> tuple[bool, str]:
    """(the rule holds, why): better on >= 3 axes and worse on none by > 2 % (worst parts).
    A list: the seeds of one recipe, pooled (:func:`axis_ratios`)."""
    ratios, worst = axis_ratios(scores), axis_ratios(scores, worst=True)
    known = [v for v in ratios.values() if v is not None]
    wins = sum(v < 1 for v in known)
    bad = [a for a, v in worst.items() if v is not None and v > TOLERANCE]
    why = f"better on {wins}/{len(known)}" + (f"; worse by > 2 % on {', '.join(bad)}" if bad else "")
    return wins >= 3 and not bad, why


def verdict(scores: dict[str, Any] | list[dict[str, Any]]) -> str:
    """``"pays (better on 4/4)"`` or ``"does not pay (better on 3/4; worse by > 2 % on within)"``;
    a list of scores: the seeds of one recipe, pooled."""
    ok, why = pays(scores)
    return f"{'pays' if ok else 'does not pay'} ({why})"
