"""HTML tables of the report, and the comparison of the encoder with the classical baselines.

Every cell is escaped (``html.escape``) unless it is an :class:`Html` fragment built here.
The comparison (:func:`compare`) is the one of ``metrics.json``'s summary, redone per split
protocol: records are averaged over repeated splits first (``random_rep_0..k`` → one row,
mean ± sample std; a record that already carries ``std`` keeps it); *best classical* is the
best linear baseline (PLS variants, PCA + ridge, AOM), *best overall* any baseline (kernel
ridge and SVR included), *best embedding* the best head on the frozen embedding. Regression:
lower RMSEP wins, ratio = best embedding / best classical RMSEP (> 1: the encoder loses).
Class targets: higher balanced accuracy wins, ratio < 1 = the encoder loses. A difference
within the run-to-run noise is "level", not a loss (:data:`LEVEL_RULE`, :func:`outcome`). The
bests, the ratios and the untrained control (mean over its seeds of each seed's best head) are
picked by :func:`vitnirs.evaluate.summary.target_figures`, the function behind the console lines,
so the report and the console show the same numbers; controls are never a rival.

Every table sits in a ``<div class="scroll">`` (``overflow-x: auto``): a table wider than the
page scrolls inside its section, never the page. Methods are named in words
(:func:`vitnirs.evaluate.names.method_label`), the identifier of ``metrics.json`` in the tooltip.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vitnirs.evaluate.metrics import protocol_family
from vitnirs.evaluate.names import FEATURE_WORDS, is_control, is_embedding, method_label
from vitnirs.evaluate.summary import (
    LEVEL_RULE,
    LEVEL_TOLERANCE,
    outcome,
    row_gap,
    row_outcome,
    summarise_controls,
    target_figures,
)

__all__ = [
    "LEVEL_RULE",
    "LEVEL_TOLERANCE",
    "Html",
    "aggregate",
    "compare",
    "comparison_table",
    "esc",
    "fmt",
    "method_cell",
    "outcome",
    "provenance",
    "scroll",
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


def method_cell(method: Any) -> Html:
    """A method in words (:func:`~vitnirs.evaluate.names.method_label`), its identifier as tooltip."""
    label = method_label(method)
    if label == str(method):
        return wrap(method)
    return Html(f'<span title="{esc(method)}">{esc(label)}</span>')


def scroll(table_html: str) -> Html:
    """A table inside a horizontally scrolling box: wider than its section, it scrolls there."""
    return Html(f'<div class="scroll">{table_html}</div>')


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: Any = None,
          row_classes: Sequence[str] | None = None) -> Html:  # fmt: skip
    """An HTML table in a scroll box (:func:`scroll`); cells are escaped unless :class:`Html`."""
    rows = list(rows)
    classes = list(row_classes or [""] * len(rows))
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{esc(c)}">' + "".join(f"<td>{'—' if v is None else esc(v)}</td>" for v in row) + "</tr>"
        for row, c in zip(rows, classes, strict=True)
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption is not None else ""
    return scroll(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


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

    The bests, ratios and controls are those of :func:`vitnirs.evaluate.summary.target_figures`
    (the console's): the untrained control is the mean over its seeds of each seed's best head.

    Returns
    -------
    list of dict
        ``{"dataset", "target", "protocol", "key", "scores": {method: aggregated record},
        "best_classical", "best_overall", "best_embedding", "winner" (records or None),
        "ratio", "outcome" ("worse" / "level" / "better" or None), "loses" (bool or None: worse
        beyond the tolerance), "verdict" (a sentence), "untrained", "snv_sg1" and "minirocket"
        (the untrained control, the best head on SNV + SG1 / MiniRocket features, from
        ``controls``, or None),
        "pretrained_vs_untrained", "embedding_vs_snv_sg1_features"}``.
    """
    key, higher = ("balanced_accuracy", True) if classification else ("rmsep", False)
    rows = []
    agg = [r for r in aggregate(records) if not is_control(r["method"])]
    ctrl = summarise_controls(controls, aggregate) if controls else []
    for dataset, target, proto in dict.fromkeys((r["dataset"], r["target"], r["protocol"]) for r in agg):
        here = (dataset, target, proto)
        mine = [r for r in agg if (r["dataset"], r["target"], r["protocol"]) == here]
        fig = target_figures(
            mine, [r for r in ctrl if (r["dataset"], r["target"], r["protocol"]) == here], higher=higher
        )
        bc, bo, be = fig["best_classical"], fig["best_overall"], fig["best_embedding"]
        text, result = verdict(be, bc, bo, key, higher)
        rows.append({
            "dataset": dataset, "target": target, "protocol": proto, "key": key,
            "scores": {r["method"]: r for r in mine}, "best_classical": bc, "best_overall": bo,
            "best_embedding": be, "winner": _best(mine, key, higher), "ratio": fig["embedding_vs_best_classical"],
            "outcome": result, "loses": None if result is None else result == "worse", "verdict": text,
            "untrained": fig["best_untrained"], "pretrained_vs_untrained": fig["pretrained_vs_untrained"],
            "snv_sg1": fig["best_snv_sg1_features"], "minirocket": fig["best_minirocket_features"],
            "embedding_vs_snv_sg1_features": fig["embedding_vs_snv_sg1_features"],
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
    name, other = method_label(bc["method"]), method_label((bo or {}).get("method"))
    if result == "worse":
        what = "of balanced accuracy" if higher else ""
        return f"the encoder is worse than {name} by {unit(gap)} {what}".rstrip() + ".", result
    if result == "level":
        text = f"level with {name} ({unit(abs(gap))} apart, within the {unit(tol)} tolerance)"
    else:
        text = f"the encoder beats {name} by {unit(-gap)}"
    if bo is not None and bo is not bc and (bo["metrics"][key] > e if higher else bo["metrics"][key] < e):
        text += f"; the non-linear baseline {other} does better still ({fmt(bo['metrics'][key])})"
    return text + ".", result


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


def control_cell(control: dict | None, key: str) -> Html:
    """The untrained control (or SNV + SG1 features) as a cell: its score; each seed's in the tooltip."""
    if control is None:
        return Html("—")
    seeds = control.get("seeds") or {}
    text = esc(fmt(control["metrics"].get(key)))
    if len(seeds) > 1:
        each = ", ".join(f"seed {s}: {fmt(v)}" for s, v in seeds.items())
        return Html(f'<span title="mean of {len(seeds)} seeds ({esc(each)})">{text}</span>')
    return Html(f'<span title="{esc(method_label(control["method"]))}">{text}</span>')


CONTROL_NOTE = (
    "Controls, never rivals: the untrained network (the same architecture, never trained, the same "
    "heads; each seed's best head, averaged over the seeds) and the same heads on classical features "
    "(SNV + SG1, MiniRocket when run). Pretrained ÷ untrained < 1 for RMSEP (> 1 for balanced "
    "accuracy): pretraining helped."
)


def comparison_table(rows: Sequence[dict], caption: str, provenance_text: str = "") -> Html:
    """The downstream table: each baseline (the best classical one underlined), each embedding head,
    the embedding ÷ best classical ratio, then the controls (untrained network, pretrained ÷
    untrained, SNV + SG1 features) next to the heads; the verdict in a full-width line under
    each row. Method names in words; the table scrolls inside its section when wider."""
    if not rows:
        return Html("")
    key = rows[0]["key"]
    methods = list(dict.fromkeys(m for r in rows for m in r["scores"]))
    base = [m for m in methods if not is_embedding(m)]
    heads = [m for m in methods if is_embedding(m)]
    untrained = any(r.get("untrained") for r in rows)
    others = [c for c in ("snv_sg1", "minirocket") if any(r.get(c) for r in rows)]
    controls = untrained or bool(others)
    n_seeds = max((len((r.get("untrained") or {}).get("seeds") or {}) for r in rows), default=0)
    seeds = f", mean of {n_seeds} seeds" if n_seeds > 1 else ""
    extra = [f"untrained network (control{seeds})", "pretrained ÷ untrained"] if untrained else []
    extra += [f"{FEATURE_WORDS[c]} (control)" for c in others]
    head = "".join(f"<th>{esc(h)}</th>" for h in ("dataset", "target", "protocol"))
    head += "".join(f"<th>{method_cell(m)}</th>" for m in base)
    head += "".join(f'<th class="head">{method_cell(m)}</th>' for m in heads)
    head += "<th>embedding ÷ best classical</th>"
    head += "".join(f'<th class="control">{esc(h)}</th>' for h in extra) if controls else ""
    ncol = 4 + len(base) + len(heads) + len(extra)
    bodies = []
    for r in rows:
        w, bc = r["winner"], r["best_classical"]
        n = max((s.get("n_splits", 1) for s in r["scores"].values()), default=1)
        cells = [wrap(r["dataset"]), wrap(r["target"]), wrap(r["protocol"]) + (f" (×{n})" if n > 1 else "")]
        tds = "".join(f"<td>{c}</td>" for c in cells)
        tds += "".join(f"<td>{esc(_cell(r['scores'].get(m), key, w, classical=bc))}</td>" for m in base)
        tds += "".join(f'<td class="head">{esc(_cell(r["scores"].get(m), key, w))}</td>' for m in heads)
        tds += f"<td>{esc(fmt(r['ratio']))}</td>"
        if untrained:
            tds += f'<td class="control">{control_cell(r.get("untrained"), key)}</td>'
            tds += f'<td class="control">{esc(fmt(r.get("pretrained_vs_untrained")))}</td>'
        tds += "".join(f'<td class="control">{control_cell(r.get(c), key)}</td>' for c in others)
        cls = {"worse": "loses", "better": "wins", "level": "level"}.get(r.get("outcome") or "", "")
        text = esc(r["verdict"])
        bodies.append(f'<tbody class="{cls}"><tr>{tds}</tr><tr class="verdict"><td colspan="{ncol}">'
                      f"{'<b>' + text + '</b>' if r['loses'] else text}</td></tr></tbody>")  # fmt: skip
    cap = f"{caption}; {spread_note(rows)}; ★ = best of the row; "
    cap += "underlined = best classical (linear) baseline"
    cap += f" · {provenance_text}" if provenance_text else ""
    note = f'<p class="note">{esc(LEVEL_RULE)}</p>'
    note += f'<p class="note">{esc(CONTROL_NOTE)}</p>' if controls else ""
    return Html(
        scroll(
            f'<table class="compare"><caption>{esc(cap)}</caption><thead><tr>{head}</tr></thead>'
            + "".join(bodies)
            + "</table>"
        )
        + note
    )


PRETRAINING = {"better": "helped", "level": "level (within the tolerance)", "worse": "did not help"}


def summary_table(summary: Sequence[dict], caption: str) -> Html:
    """Rows of :func:`vitnirs.evaluate.summary.summary_rows` (the console's lines, ``metrics.json``'s
    ``summary``) as a table: per target, the best embedding head against the best classical
    baseline and against the untrained control (a column each), with the verdicts of
    :func:`~vitnirs.evaluate.summary.row_outcome`."""

    def best(b: Any, key: str) -> Html:
        if not isinstance(b, dict):
            return Html("—")
        return Html(f"{method_cell(b.get('method'))}: {esc(fmt(b.get(key)))}")

    controls = any(r.get("best_untrained") for r in summary)
    body, classes = [], []
    for r in summary:
        key = "balanced_accuracy" if r.get("task") == "classification" else "rmsep"
        ratio, bc, bo = (
            r.get("embedding_vs_best_classical"),
            r.get("best_classical") or {},
            r.get("best_overall"),
        )
        result, gap, tol = row_gap(r) or (None, 0.0, 0.0)
        name = method_label(bc.get("method"))
        unit = (lambda v: f"{100 * v:.1f} points") if key != "rmsep" else (lambda v: f"{100 * v:.1f} %")
        text = {
            None: "no comparison",
            "worse": f"the encoder is worse than {name} by {unit(gap)}",
            "level": f"level with {name} ({unit(abs(gap))} apart, within the {unit(tol)} tolerance)",
            "better": f"the encoder beats {name} by {unit(-gap)}",
        }[result]
        e = (r.get("best_embedding") or {}).get(key)
        if result in ("better", "level") and isinstance(bo, dict) and bo.get("method") != bc.get("method"):
            o = bo.get(key)
            if (
                isinstance(o, (int, float))
                and isinstance(e, (int, float))
                and (o > e if key != "rmsep" else o < e)
            ):
                text += (
                    f"; the non-linear baseline {method_label(bo.get('method'))} does better still ({fmt(o)})"
                )
        row = [r.get("dataset"), r.get("target"), r.get("protocol"), best(bc or None, key),
               best(r.get("best_embedding"), key), fmt(ratio), text + "."]  # fmt: skip
        if controls:
            u = r.get("best_untrained")
            cell = control_cell({**u, "metrics": {key: u.get(key)}}, key) if isinstance(u, dict) else "—"
            helped = PRETRAINING.get(row_outcome(r, "best_untrained") or "", "—")
            row += [cell, fmt(r.get("pretrained_vs_untrained")), helped]
        body.append(row)
        classes.append({"worse": "loses", "better": "wins", "level": "level"}.get(result or "", ""))
    headers = ["dataset", "target", "protocol", "best classical", "best embedding head",
               "embedding ÷ best classical", "verdict"]  # fmt: skip
    if controls:
        n_seeds = max((len((r.get("best_untrained") or {}).get("seeds") or {}) for r in summary), default=0)
        seeds = f", mean of {n_seeds} seeds" if n_seeds > 1 else ""
        headers += [f"untrained network (control{seeds})", "pretrained ÷ untrained", "pretraining"]
    return table(headers, body, caption=caption, row_classes=classes)
