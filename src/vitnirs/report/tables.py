"""HTML tables of the report, and the comparison of the encoder with the classical baselines.

Every cell is escaped (``html.escape``) unless it is an :class:`Html` fragment built here.
The comparison (:func:`compare`) is the one of ``metrics.json``'s summary, redone per split
protocol: records are averaged over repeated splits first (``random_rep_0..k`` → one row,
mean ± sample std; a record that already carries ``std`` keeps it); *best classical* is the
best linear baseline (PLS variants, PCA + ridge, AOM), *best overall* any baseline (kernel
ridge and SVR included), *best embedding* the best head on the frozen embedding. Regression:
lower RMSEP wins, ratio = best embedding / best classical RMSEP (> 1: the encoder loses).
Class targets: higher balanced accuracy wins, ratio < 1 = the encoder loses.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vitnirs.evaluate.baselines import NONLINEAR_METHODS
from vitnirs.evaluate.metrics import protocol_family
from vitnirs.report.figures import is_embedding

__all__ = [
    "Html",
    "aggregate",
    "compare",
    "comparison_table",
    "esc",
    "fmt",
    "provenance",
    "summary_table",
    "table",
]


class Html(str):
    """A string that is already HTML (not escaped again)."""


def esc(value: Any) -> str:
    """``value`` as HTML text: escaped unless it is :class:`Html`."""
    return value if isinstance(value, Html) else html.escape(str(value))


def fmt(value: Any, std: Any = None) -> str:
    """A number with 4 significant digits (``—`` for None/NaN), ``± std`` when std > 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return "—" if value is None or isinstance(value, float) else str(value)
    text = f"{value:.4g}"
    if isinstance(std, (int, float)) and not math.isnan(std) and std > 0:
        text += f" ± {std:.2g}"
    return text


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: Any = None,
          row_classes: Sequence[str] | None = None) -> Html:  # fmt: skip
    """An HTML table; cells are escaped unless :class:`Html`."""
    rows = list(rows)
    classes = list(row_classes or [""] * len(rows))
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{esc(c)}">' + "".join(f"<td>{'—' if v is None else esc(v)}</td>" for v in row) + "</tr>"
        for row, c in zip(rows, classes, strict=True)
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption is not None else ""
    return Html(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def provenance(records: Sequence[dict], evaluation: dict, protocol: str | None = None) -> str:
    """``checkpoint: … · bank: … · split protocol: …`` of some records (the run's when absent)."""

    def values(key: str) -> str:
        found = list(dict.fromkeys(str(r[key]) for r in records if r.get(key)))
        return ", ".join(found) or str(evaluation.get(key) or "unknown")

    found = dict.fromkeys(protocol_family(str(r.get("protocol"))) for r in records if r.get("protocol"))
    proto = protocol or ", ".join(found)
    return (
        f"checkpoint: {values('checkpoint')} · bank: {values('bank')} · split protocol: {proto or 'unknown'}"
    )


def aggregate(records: Sequence[dict]) -> list[dict]:
    """Mean ± std of the metrics per (dataset, target, method, protocol family)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("metrics"):
            key = (
                r.get("dataset"),
                r.get("target"),
                r.get("method"),
                protocol_family(str(r.get("protocol"))),
            )
            groups.setdefault(key, []).append(r)
    out = []
    for (dataset, target, method, proto), rs in groups.items():
        names = [k for k, v in rs[0]["metrics"].items() if isinstance(v, (int, float)) and k != "n"]
        vals = {k: np.array([float(r["metrics"].get(k, np.nan)) for r in rs]) for k in names}
        std = (
            {k: float(np.std(v, ddof=1)) for k, v in vals.items()}
            if len(rs) > 1
            else dict(rs[0].get("std") or {})
        )
        out.append({"dataset": dataset, "target": target, "method": method, "protocol": proto,
                    "n_splits": len(rs), "metrics": {k: float(np.mean(v)) for k, v in vals.items()},
                    "std": std})  # fmt: skip
    return out


def _best(rows: list[dict], key: str, higher: bool) -> dict | None:
    rows = [
        r
        for r in rows
        if isinstance(r["metrics"].get(key), (int, float)) and not math.isnan(r["metrics"][key])
    ]
    if not rows:
        return None
    return (max if higher else min)(rows, key=lambda r: r["metrics"][key])


def compare(records: Sequence[dict], *, classification: bool = False) -> list[dict]:
    """One row per (dataset, target, protocol): the methods' scores, the bests, ratio and verdict.

    Returns
    -------
    list of dict
        ``{"dataset", "target", "protocol", "key", "scores": {method: aggregated record},
        "best_classical", "best_overall", "best_embedding", "winner" (records or None),
        "ratio", "loses" (bool or None), "verdict" (a sentence)}``.
    """
    key, higher = ("balanced_accuracy", True) if classification else ("rmsep", False)
    rows = []
    agg = aggregate(records)
    for dataset, target, proto in dict.fromkeys((r["dataset"], r["target"], r["protocol"]) for r in agg):
        mine = [r for r in agg if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)]
        base = [r for r in mine if not is_embedding(r["method"])]
        emb = [r for r in mine if is_embedding(r["method"])]
        bc = _best([r for r in base if r["method"] not in NONLINEAR_METHODS], key, higher)
        bo, be = _best(base, key, higher), _best(emb, key, higher)
        ratio = be["metrics"][key] / bc["metrics"][key] if be and bc and bc["metrics"][key] else None
        loses = None if ratio is None else (ratio < 1.0 if higher else ratio > 1.0)
        rows.append({
            "dataset": dataset, "target": target, "protocol": proto, "key": key,
            "scores": {r["method"]: r for r in mine}, "best_classical": bc, "best_overall": bo,
            "best_embedding": be, "winner": _best(mine, key, higher), "ratio": ratio, "loses": loses,
            "verdict": verdict(be, bc, bo, key, higher),
        })  # fmt: skip
    return rows


def verdict(be: dict | None, bc: dict | None, bo: dict | None, key: str, higher: bool) -> str:
    """A plain sentence: is the best embedding head worse or better than the best classical?"""
    if be is None:
        return "no embedding head was scored"
    if bc is None:
        return "no classical baseline to compare with"
    e, c = be["metrics"][key], bc["metrics"][key]
    if higher:
        gap = 100 * (c - e)
        if gap > 0:
            return f"the encoder is worse than {bc['method']} by {gap:.1f} points of balanced accuracy"
        text = (
            f"the encoder beats {bc['method']} by {-gap:.1f} points"
            if gap < 0
            else f"tie with {bc['method']}"
        )
    else:
        if e > c:
            return f"the encoder is worse than {bc['method']} by {100 * (e / c - 1):.1f} %"
        text = (
            f"the encoder beats {bc['method']} by {100 * (1 - e / c):.1f} %"
            if e < c
            else f"tie with {bc['method']}"
        )
    if bo is not None and bo is not bc and (bo["metrics"][key] > e if higher else bo["metrics"][key] < e):
        text += f"; the non-linear baseline {bo['method']} does better still ({fmt(bo['metrics'][key])})"
    return text


def _cell(r: dict | None, key: str, winner: dict | None, *, named: bool = False) -> Any:
    if r is None:
        return "—"
    text = fmt(r["metrics"].get(key), (r.get("std") or {}).get(key))
    if named:
        text = f"{r['method']}: {text}"
    if r is winner:
        return Html(f'<span class="win" title="best in this row">★ {esc(text)}</span>')
    return text


def comparison_table(rows: Sequence[dict], caption: str) -> Html:
    """The downstream table: each baseline, best classical/overall, each embedding head, ratio, verdict."""
    if not rows:
        return Html("")
    key = rows[0]["key"]
    methods = list(dict.fromkeys(m for r in rows for m in r["scores"]))
    base = [m for m in methods if not is_embedding(m)]
    heads = [m for m in methods if is_embedding(m)]
    headers = ["dataset", "target", "protocol", *base, "best classical", "best overall", *heads,
               "embedding / best classical", "verdict"]  # fmt: skip
    body, classes = [], []
    for r in rows:
        w = r["winner"]
        body.append([
            r["dataset"], r["target"], r["protocol"],
            *[_cell(r["scores"].get(m), key, w) for m in base],
            _cell(r["best_classical"], key, None, named=True), _cell(r["best_overall"], key, None, named=True),
            *[_cell(r["scores"].get(m), key, w) for m in heads],
            fmt(r["ratio"]), Html(f"<b>{esc(r['verdict'])}</b>") if r["loses"] else r["verdict"],
        ])  # fmt: skip
        classes.append("loses" if r["loses"] else ("wins" if r["loses"] is False else ""))
    return table(headers, body, caption=caption, row_classes=classes)


def summary_table(summary: Sequence[dict], caption: str) -> Html:
    """The ``summary`` section of ``metrics.json`` as a table (used when its records are absent)."""

    def best(b: Any) -> str:
        if not isinstance(b, dict):
            return "—"
        value = next((b[k] for k in ("rmsep", "balanced_accuracy") if k in b), None)
        return f"{b.get('method')}: {fmt(value)}"

    body, classes = [], []
    for r in summary:
        ratio, bc = r.get("embedding_vs_best_classical"), r.get("best_classical") or {}
        higher = r.get("task") == "classification"
        loses = None if not isinstance(ratio, (int, float)) else (ratio < 1 if higher else ratio > 1)
        if loses:
            text = f"the encoder is worse than {bc.get('method')} (ratio {fmt(ratio)})"
        else:
            text = (
                "no comparison"
                if loses is None
                else f"the encoder beats {bc.get('method')} (ratio {fmt(ratio)})"
            )
        body.append([r.get("dataset"), r.get("target"), r.get("protocol"), best(r.get("best_classical")),
                     best(r.get("best_overall")), best(r.get("best_embedding")), fmt(ratio), text])  # fmt: skip
        classes.append("loses" if loses else ("wins" if loses is False else ""))
    headers = ["dataset", "target", "protocol", "best classical", "best overall", "best embedding",
               "embedding / best classical", "verdict"]  # fmt: skip
    return table(headers, body, caption=caption, row_classes=classes)
