"""HTML tables of the report, and the comparison of the encoder with the classical baselines.

Every cell is escaped (``html.escape``) unless it is an :class:`Html` fragment built here.
The comparison (:func:`compare`) is the one of ``metrics.json``'s summary, redone per split
protocol: records are averaged over repeated splits first (``random_rep_0..k`` → one row,
mean ± sample std; a record that already carries ``std`` keeps it); *best classical* is the
best linear baseline (PLS variants, PCA + ridge, AOM), *best overall* any baseline (kernel
ridge and SVR included), *best embedding* the best head on the frozen embedding. Regression:
lower RMSEP wins, ratio = best embedding / best classical RMSEP (> 1: the encoder loses).
Class targets: higher balanced accuracy wins, ratio < 1 = the encoder loses. A difference
within the run-to-run noise is "level", not a loss (:data:`LEVEL_RULE`, :func:`outcome`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vitnirs.evaluate.baselines import NONLINEAR_METHODS
from vitnirs.evaluate.metrics import protocol_family
from vitnirs.evaluate.summary import LEVEL_RULE, LEVEL_TOLERANCE, outcome
from vitnirs.report.figures import is_embedding

__all__ = [
    "LEVEL_RULE",
    "LEVEL_TOLERANCE",
    "Html",
    "aggregate",
    "compare",
    "comparison_table",
    "esc",
    "fmt",
    "outcome",
    "provenance",
    "summary_table",
    "table",
    "wrap",
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


def wrap(name: Any) -> Html:
    """A method or column name that may break after ``_``, ``+`` and ``/`` (``<wbr>``)."""
    text = esc(name)
    for sep in ("_", "+", "/"):
        text = text.replace(sep, sep + "<wbr>")
    return Html(text)


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


def _spread(r: dict | None, key: str) -> float:
    s = (r or {}).get("std") or {}
    v = s.get(key) if isinstance(s, dict) else None
    return float(v) if isinstance(v, (int, float)) and not math.isnan(v) else 0.0


def compare(
    records: Sequence[dict], *, classification: bool = False, controls: Sequence[dict] = ()
) -> list[dict]:
    """One row per (dataset, target, protocol): the methods' scores, the bests, ratio and verdict.

    Returns
    -------
    list of dict
        ``{"dataset", "target", "protocol", "key", "scores": {method: aggregated record},
        "best_classical", "best_overall", "best_embedding", "winner" (records or None),
        "ratio", "outcome" ("worse" / "level" / "better" or None), "loses" (bool or None: worse
        beyond the tolerance), "verdict" (a sentence), "untrained" and "snv_sg1" (the best head on
        the untrained network's embedding and on SNV + SG1 features, from ``controls``, or None)}``.
    """
    key, higher = ("balanced_accuracy", True) if classification else ("rmsep", False)
    rows = []
    agg = aggregate(records)
    ctrl = aggregate(list(controls)) if controls else []
    for dataset, target, proto in dict.fromkeys((r["dataset"], r["target"], r["protocol"]) for r in agg):
        mine = [r for r in agg if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)]
        base = [r for r in mine if not is_embedding(r["method"])]
        emb = [r for r in mine if is_embedding(r["method"])]
        bc = _best([r for r in base if r["method"] not in NONLINEAR_METHODS], key, higher)
        bo, be = _best(base, key, higher), _best(emb, key, higher)
        ratio = be["metrics"][key] / bc["metrics"][key] if be and bc and bc["metrics"][key] else None
        text, result = verdict(be, bc, bo, key, higher)
        rows.append({
            "dataset": dataset, "target": target, "protocol": proto, "key": key,
            "scores": {r["method"]: r for r in mine}, "best_classical": bc, "best_overall": bo,
            "best_embedding": be, "winner": _best(mine, key, higher), "ratio": ratio, "outcome": result,
            "loses": None if result is None else result == "worse", "verdict": text,
            **{name: _best([r for r in ctrl if (r["dataset"], r["target"], r["protocol"]) == (dataset, target, proto)
                            and str(r["method"]).startswith(name + "+")], key, higher)
               for name in ("untrained", "snv_sg1")},
        })  # fmt: skip
    return rows


def verdict(
    be: dict | None, bc: dict | None, bo: dict | None, key: str, higher: bool
) -> tuple[str, str | None]:
    """A plain sentence and the outcome: is the best embedding head worse than, level with or better
    than the best classical one (:func:`outcome`, noise = the larger std of the two)?"""
    if be is None:
        return "no embedding head was scored", None
    if bc is None:
        return "no classical baseline to compare with", None
    e, c = be["metrics"][key], bc["metrics"][key]
    result, gap, tol = outcome(e, c, higher=higher, noise=max(_spread(be, key), _spread(bc, key)))
    unit = (lambda v: f"{100 * v:.1f} points") if higher else (lambda v: f"{100 * v:.1f} %")
    if result == "worse":
        what = "of balanced accuracy" if higher else ""
        return f"the encoder is worse than {bc['method']} by {unit(gap)} {what}".rstrip(), result
    if result == "level":
        text = f"level with {bc['method']} ({unit(abs(gap))} apart, within the {unit(tol)} tolerance)"
    else:
        text = f"the encoder beats {bc['method']} by {unit(-gap)}"
    if bo is not None and bo is not bc and (bo["metrics"][key] > e if higher else bo["metrics"][key] < e):
        text += f"; the non-linear baseline {bo['method']} does better still ({fmt(bo['metrics'][key])})"
    return text, result


def _cell(r: dict | None, key: str, winner: dict | None, *, classical: dict | None = None) -> Any:
    if r is None:
        return "—"
    value, _, std = fmt(r["metrics"].get(key), (r.get("std") or {}).get(key)).partition(" ± ")
    text = esc(value) + (f' <span class="sd">± {esc(std)}</span>' if std else "")  # breaks before ±
    if r is classical:
        text = f'<u title="best classical (linear) baseline">{text}</u>'
    if r is winner:
        return Html(f'<b class="win" title="best in this row">★&nbsp;{text}</b>')
    return Html(text)


def spread_note(rows: Sequence[dict]) -> str:
    """What the ± of the table's cells is, true to the rows: repeats per protocol, or none."""
    scored = [s for r in rows for s in r["scores"].values()]
    repeated = sorted({f"{s['protocol']} (×{s['n_splits']})" for s in scored if s.get("n_splits", 1) > 1})
    carried = any(s.get("n_splits", 1) == 1 and any(v for v in (s.get("std") or {}).values()) for s in scored)
    if repeated:
        return (f"mean ± sample std over the repeated splits of {', '.join(repeated)}; other protocols: one "
                "split" + (" (± as recorded)" if carried else ", no ±"))  # fmt: skip
    if carried:
        return "± = the std recorded with each result"
    return "one test split per protocol, so no ± spread"


def _control_text(r: dict) -> str:
    """`` Untrained control: … Classical features: …`` for a row with controls, else ``""``."""
    u, f, be, key = r.get("untrained"), r.get("snv_sg1"), r.get("best_embedding"), r["key"]
    text = ""
    if f is not None and be is not None:
        text = f" Classical features (SNV + SG1 into the same heads): {f['method']} {fmt(f['metrics'][key])}."
    if u is None or be is None or not u["metrics"][key]:
        return text
    ratio = be["metrics"][key] / u["metrics"][key]
    if key == "rmsep":
        said = "pretraining helped" if ratio < 1 else "pretraining did not help"
    else:
        said = "pretraining helped" if ratio > 1 else "pretraining did not help"
    return (
        f" Untrained control (the same network, never trained): {u['method']} {fmt(u['metrics'][key])}; "
        f"pretrained / untrained {ratio:.2f} ({said})." + text
    )


def comparison_table(rows: Sequence[dict], caption: str, provenance_text: str = "") -> Html:
    """The downstream table: each baseline (the best classical one underlined), each embedding head,
    the ratio; the verdict in a full-width line under each row, names that break at ``_`` and a
    line break before ``±``, so that ten methods fit a 1,400 px screen."""
    if not rows:
        return Html("")
    key = rows[0]["key"]
    methods = list(dict.fromkeys(m for r in rows for m in r["scores"]))
    base = [m for m in methods if not is_embedding(m)]
    heads = [m for m in methods if is_embedding(m)]
    head = "".join(f"<th>{esc(h)}</th>" for h in ("dataset", "target", "protocol"))
    head += "".join(f"<th>{wrap(m)}</th>" for m in base)
    head += "".join(f'<th class="head">{wrap(m)}</th>' for m in heads)
    head += f"<th>{wrap('embedding / best classical')}</th>"
    ncol = 4 + len(base) + len(heads)
    bodies = []
    for r in rows:
        w, bc = r["winner"], r["best_classical"]
        n = max((s.get("n_splits", 1) for s in r["scores"].values()), default=1)
        cells = [wrap(r["dataset"]), wrap(r["target"]), wrap(r["protocol"]) + (f" (×{n})" if n > 1 else "")]
        cells += [esc(_cell(r["scores"].get(m), key, w, classical=bc)) for m in base]
        cells += [esc(_cell(r["scores"].get(m), key, w)) for m in heads]
        cells += [esc(fmt(r["ratio"]))]
        tds = "".join(f'<td class="head">{c}</td>' if len(base) + 3 <= i < len(base) + 3 + len(heads)
                      else f"<td>{c}</td>" for i, c in enumerate(cells))  # fmt: skip
        cls = {"worse": "loses", "better": "wins", "level": "level"}.get(r.get("outcome") or "", "")
        text = esc(r["verdict"] + _control_text(r))
        bodies.append(f'<tbody class="{cls}"><tr>{tds}</tr><tr class="verdict"><td colspan="{ncol}">'
                      f"{'<b>' + text + '</b>' if r['loses'] else text}</td></tr></tbody>")  # fmt: skip
    cap = f"{caption}; {spread_note(rows)}; ★ = best of the row; "
    cap += "underlined = best classical (linear) baseline"
    cap += f" · {provenance_text}" if provenance_text else ""
    return Html(
        f'<table class="compare"><caption>{esc(cap)}</caption><thead><tr>{head}</tr></thead>'
        + "".join(bodies)
        + f'</table><p class="note">{esc(LEVEL_RULE)}</p>'
    )


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
        result = None
        if isinstance(ratio, (int, float)):
            c = bc.get("balanced_accuracy") if higher else None
            c = float(c) if isinstance(c, (int, float)) else 1.0  # class: points need the accuracy
            result = outcome(ratio * c, c, higher=higher)[0]
        text = {
            None: "no comparison",
            "worse": f"the encoder is worse than {bc.get('method')} (ratio {fmt(ratio)})",
            "level": f"level with {bc.get('method')} (ratio {fmt(ratio)}, within the tolerance)",
            "better": f"the encoder beats {bc.get('method')} (ratio {fmt(ratio)})",
        }[result]
        body.append([r.get("dataset"), r.get("target"), r.get("protocol"), best(r.get("best_classical")),
                     best(r.get("best_overall")), best(r.get("best_embedding")), fmt(ratio), text])  # fmt: skip
        classes.append({"worse": "loses", "better": "wins", "level": "level"}.get(result or "", ""))
    headers = ["dataset", "target", "protocol", "best classical", "best overall", "best embedding",
               "embedding / best classical", "verdict"]  # fmt: skip
    return Html(
        table(headers, body, caption=caption, row_classes=classes) + f'<p class="note">{esc(LEVEL_RULE)}</p>'
    )
