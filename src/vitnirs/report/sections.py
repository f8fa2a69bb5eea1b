"""The evaluation sections of the report after the downstream tables: LODO, transfer and
robustness (synthetic checks and ablations: :mod:`vitnirs.report.checks`). Each returns an HTML
fragment (figures embedded) and says in a plain sentence wherever the encoder loses to a
classical method.

Comparisons in these sections: the best embedding head against the best classical method of
the same records (LODO: same dataset/target/protocol; transfer: same group/target/k, median RMSEP
over the off-diagonal instrument pairs, as the console and the README; robustness: at the highest
severity of a perturbation). Controls (the untrained network, SNV + SG1 features) are never the
rival. Within :data:`~vitnirs.report.tables.LEVEL_TOLERANCE` the two are "level", not worse or better.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from vitnirs.evaluate.metrics import protocol_family
from vitnirs.evaluate.names import is_control, method_kind, method_label
from vitnirs.report.figures import (
    LODO_LABELS,
    is_embedding,
    lodo_png,
    main_metric,
    robustness_png,
    transfer_png,
)
from vitnirs.report.tables import LEVEL_TOLERANCE, Html, esc, fmt, method_cell, outcome, provenance, table

__all__ = ["img", "lodo_section", "repeated_in_downstream", "robustness_section", "transfer_section"]


def img(png: bytes | None, alt: str) -> Html:
    """An ``<img>`` with the PNG embedded as a base64 data URI (empty when there is none)."""
    if not png:
        return Html("")
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">')


def _sentences(items: Sequence[tuple[bool, str]]) -> Html:
    lis = "".join(f'<li class="{"loses" if bad else ""}">{esc(s)}</li>' for bad, s in items)
    return Html(f"<ul>{lis}</ul>" if items else "")


def _mean(records: Sequence[dict], key: str, stat: Callable = np.mean) -> float:
    """``stat`` (mean, or median) of a metric over records (NaN when none has it)."""
    vals = [
        float(r["metrics"][key])
        for r in records
        if isinstance((r.get("metrics") or {}).get(key), (int, float))
    ]
    return float(stat(vals)) if vals else float("nan")


def _versus(
    records: Sequence[dict], key: str, what: str, stat: Callable = np.mean
) -> tuple[bool, str] | None:
    """Best embedding method vs best classical method of ``records`` (``stat`` per method);
    controls are neither."""
    higher = key != "rmsep"
    means = {
        m: _mean([r for r in records if r["method"] == m], key, stat)
        for m in dict.fromkeys(r["method"] for r in records if not is_control(r["method"]))
    }
    means = {m: v for m, v in means.items() if not np.isnan(v)}
    emb = {m: v for m, v in means.items() if is_embedding(m)}
    cla = {m: v for m, v in means.items() if not is_embedding(m)}
    if not emb or not cla:
        return None
    pick = max if higher else min
    e, c = pick(emb, key=emb.get), pick(cla, key=cla.get)
    ev, cv = emb[e], cla[c]
    e, c = method_label(e), method_label(c)
    result, gap, _ = outcome(ev, cv, higher=higher)
    unit = (lambda v: f"{100 * v:.1f} points") if higher else (lambda v: f"{100 * v:.1f} %")
    if result == "level":
        return False, (f"{what}: the encoder ({e}, {fmt(ev)}) is level with {c} ({fmt(cv)}): "
                       f"{unit(abs(gap))} apart, within the {unit(LEVEL_TOLERANCE)} tolerance")  # fmt: skip
    word = "worse" if result == "worse" else "better"
    return (
        result == "worse",
        f"{what}: the encoder ({e}, {fmt(ev)}) is {word} than {c} ({fmt(cv)}) by {unit(abs(gap))}",
    )


STRICT_HOW = (
    "not run in this output. Run <code>vitnirs lodo --store STORE --datasets NAME [NAME ...] --out DIR/lodo"
    "</code> (one encoder pretrained per left-out dataset: hours on a CPU), then <code>vitnirs report DIR"
    "</code>: its <code>lodo.json</code> is merged into this section."
)


def repeated_in_downstream(records: Sequence[dict], downstream: Sequence[dict]) -> list[bool]:
    """Per record: is it a non-strict LODO result whose number the downstream table already shows
    (same dataset, target, method and split family, same value)?"""
    out = []
    for r in records:
        value, hit = (r.get("metrics") or {}), False
        if value and r.get("protocol") != "lodo_strict":
            for d in downstream:
                if (d["dataset"], d["target"]) != (r.get("dataset"), r.get("target")):
                    continue
                if r.get("split") and d["protocol"] != protocol_family(str(r["split"])):
                    continue
                shown = (d["scores"].get(r.get("method")) or {}).get("metrics") or {}
                v, s = value.get(d["key"]), shown.get(d["key"])
                if (
                    isinstance(v, (int, float))
                    and isinstance(s, (int, float))
                    and math.isclose(v, s, rel_tol=1e-6)
                ):
                    hit = True
                    break
        out.append(hit)
    return out


def lodo_section(records: Sequence[dict], evaluation: dict, downstream: Sequence[dict] = ()) -> Html:
    """LODO bars (strict vs downstream-only labelled), a table and the verdicts.

    Per dataset, target and split family (``split``), each LODO protocol's best head is compared
    with the classical records of the same group (``lodo_classical`` or a classical method under
    the same protocol); when there are none, with the best classical result of the downstream
    table (``downstream``: rows of :func:`vitnirs.report.tables.compare`), and the sentence says so.
    Results that are the downstream table's own numbers (downstream-only LODO and its classical
    reference on the same splits) are named once, not repeated; the bars show the datasets with a
    strict LODO result (first split family of each), next to their downstream-only bars. When no
    strict LODO ran, the section says so and how to run it.
    """
    scored = [r for r in records if r.get("metrics")]
    key = main_metric(scored)
    repeat = repeated_in_downstream(records, downstream)
    repeated = {id(r) for r, rep in zip(records, repeat, strict=True) if rep}
    protocols = {r.get("protocol") for r in records}
    missing = dict.fromkeys(LODO_LABELS, " — not in this output") | {"lodo_strict": f" — {STRICT_HOW}"}
    notes = "".join(
        f"<li><b>{esc(p)}</b>: {esc(label)}{'' if p in protocols else missing[p]}</li>"
        for p, label in LODO_LABELS.items()
    )
    items, main_split = [], {}
    for r in scored:
        main_split.setdefault((r.get("dataset"), r.get("target")), r.get("split"))
    for dataset, target, split in dict.fromkeys(
        (r.get("dataset"), r.get("target"), r.get("split")) for r in scored
    ):
        group = [
            r
            for r in scored
            if (r.get("dataset"), r.get("target"), r.get("split")) == (dataset, target, split)
        ]
        for proto in dict.fromkeys(r.get("protocol") for r in group if is_embedding(r["method"])):
            mine = [r for r in group if r.get("protocol") == proto]
            if all(id(r) in repeated for r in mine if is_embedding(r["method"])):
                continue  # the downstream table's verdict already says it
            what = f"{dataset} / {target}" + (f" ({split} split)" if split else "")
            what += f", {LODO_LABELS.get(str(proto), proto)}"
            if all(is_embedding(r["method"]) for r in mine):
                mine += [r for r in group if not is_embedding(r["method"])]
            ref = next((d for d in downstream if (d["dataset"], d["target"]) == (dataset, target)), None)
            if (
                all(is_embedding(r["method"]) for r in mine)
                and ref
                and ref["best_classical"]
                and ref["key"] == key
            ):
                mine.append(
                    {"method": ref["best_classical"]["method"], "metrics": ref["best_classical"]["metrics"]}
                )
                what += (
                    f" (reference: the best classical of the downstream table, protocol {ref['protocol']})"
                )
            if v := _versus(mine, key, what):
                items.append(v)
    rows = [
        [r.get("dataset"), r.get("target"), method_cell(r.get("method") or "—"),
         LODO_LABELS.get(str(r.get("protocol")), r.get("protocol")), r.get("split"),
         fmt((r.get("metrics") or {}).get(key)), fmt((r.get("metrics") or {}).get("r2")),
         r.get("error") or r.get("skipped") or ""]
        for r in records if id(r) not in repeated
    ]  # fmt: skip
    said = ""
    if repeated:
        tasks = ", ".join(
            dict.fromkeys(f"{r.get('dataset')} / {r.get('target')}" for r in records if id(r) in repeated)
        )
        kinds = {"lodo_downstream_only": "downstream-only", "lodo_classical": "classical-reference"}
        counts = Counter(
            kinds.get(p, p) for p in (str(r.get("protocol")) for r in records if id(r) in repeated)
        )
        what = " and ".join(f"{n} {k}" for k, n in counts.items())
        said = (f"<p>{esc(what)} results ({esc(tasks)}) are the numbers of the Downstream regression "
                "table (same encoder, same splits, same methods): see that table, they are not repeated "
                "here.</p>")  # fmt: skip
    strict = {(r.get("dataset"), r.get("target")) for r in scored if r.get("protocol") == "lodo_strict"}
    shown = [
        r
        for r in scored
        if (r.get("dataset"), r.get("target")) in strict
        and r.get("split") == main_split[(r.get("dataset"), r.get("target"))]
    ]
    return Html(
        f"<ul>{notes}</ul>"
        + said
        + img(lodo_png(shown), "LODO bars")
        + _sentences(items)
        + (
            table(
                ["dataset", "target", "method", "protocol", "split", key, "r2", "error"],
                rows,
                caption=provenance(records, evaluation),
            )
            if rows
            else ""
        )  # fmt: skip
    )


KIND_ORDER = {"embedding": 0, "control": 1, "classical": 2}


def _untrained_line(records: Sequence[dict], what: str) -> tuple[bool, str] | None:
    """The untrained control of some transfer records, as a sentence (never a rival): each seed's
    best head by median RMSEP, averaged over the seeds."""
    ctrl = [r for r in records if str(r["method"]).startswith("untrained")]
    best = []
    for seed in dict.fromkeys(r.get("seed") for r in ctrl):
        mine = [r for r in ctrl if r.get("seed") == seed]
        medians = [
            _mean([r for r in mine if r["method"] == m], "rmsep", np.median)
            for m in {r["method"] for r in mine}
        ]
        medians = [v for v in medians if not np.isnan(v)]
        if medians:
            best.append(min(medians))
    if not best:
        return None
    seeds = f"each seed's best head, mean of {len(best)} seeds" if len(best) > 1 else "its best head"
    return (
        False,
        f"{what}: the untrained network (control, not a rival) reaches {fmt(float(np.mean(best)))} ({seeds})",
    )


def transfer_section(records: Sequence[dict], evaluation: dict) -> Html:
    """Per group and target: RMSEP heatmaps (best embedding head, PLS raw), a table, verdicts.

    Verdicts use the median RMSEP over the cross-instrument pairs (as the console); controls are
    stated apart, never as the rival. Table columns: embedding heads, then the controls, then the
    classical methods; the table scrolls inside the section."""
    parts = []
    for group, target in dict.fromkeys((r.get("group"), r.get("target")) for r in records):
        mine = [
            r for r in records if (r.get("group"), r.get("target")) == (group, target) and r.get("metrics")
        ]
        off = [r for r in mine if r.get("source") != r.get("target_instrument")]
        heads = {
            m: _mean([r for r in off if r["method"] == m], "rmsep", np.median)
            for m in {r["method"] for r in off}
        }
        heads = {m: v for m, v in heads.items() if is_embedding(m) and not np.isnan(v)}
        best_head = min(heads, key=heads.get) if heads else None
        ks = sorted({int(r.get("k", 0)) for r in mine})
        panels = [(k, m) for k in ks for m in (best_head, "pls_raw") if m]
        items = []
        for k in ks:
            at_k, what = (
                [r for r in off if int(r.get("k", 0)) == k],
                f"k = {k}, median RMSEP over the instrument pairs",
            )
            items += [
                v for v in (_versus(at_k, "rmsep", what, np.median), _untrained_line(at_k, f"k = {k}")) if v
            ]
        methods = sorted(dict.fromkeys(r["method"] for r in mine), key=lambda m: KIND_ORDER[method_kind(m)])
        body = []
        for k in ks:
            for src, tgt in dict.fromkeys(
                (r["source"], r["target_instrument"]) for r in mine if int(r.get("k", 0)) == k
            ):
                cell = {r["method"]: r for r in mine
                        if (int(r.get("k", 0)), r["source"], r["target_instrument"]) == (k, src, tgt)}  # fmt: skip
                rivals = [m for m in cell if not is_control(m)] or list(cell)
                best = min(rivals, key=lambda m: cell[m]["metrics"].get("rmsep", np.inf))
                vals = [
                    "—" if m not in cell else
                    (Html(f'<span class="win">★&nbsp;{esc(fmt(cell[m]["metrics"].get("rmsep")))}</span>')
                     if m == best else fmt(cell[m]["metrics"].get("rmsep")))
                    for m in methods
                ]  # fmt: skip
                proto = next(iter(cell.values())).get("protocol", "")
                body.append([k, src, tgt, proto, *vals])
        parts.append(
            f"<h3>{esc(group)} / {esc(target)}</h3>"
            + (
                f"<p>Heatmaps: best embedding head ({esc(method_label(best_head))}) and PLS on raw spectra; each "
                "panel has its own logarithmic colour scale (compare the printed numbers across panels).</p>"
                if best_head
                else ""
            )
            + img(transfer_png(mine, panels), f"transfer {group} {target}")
            + _sentences(items)
            + table(
                ["k", "fitted on", "tested on", "protocol", *map(method_cell, methods)],
                body,
                caption="RMSEP per instrument pair; columns: embedding heads, then the controls (untrained "
                "network, SNV + SG1 features: never rivals), then the classical methods; ★ = best of the row "
                "(controls aside); the sentences above compare medians over the cross-instrument pairs · "
                + provenance(mine, evaluation),
            )  # fmt: skip
        )
    return Html("".join(parts))


def robustness_section(records: Sequence[dict], evaluation: dict) -> Html:
    """RMSEP-vs-severity curves and, per perturbation, the comparison at the highest severity."""
    items = []
    keys = dict.fromkeys((r.get("dataset"), r.get("target"), r.get("perturbation")) for r in records)
    for dataset, target, pert in keys:
        mine = [
            r
            for r in records
            if (r.get("dataset"), r.get("target"), r.get("perturbation")) == (dataset, target, pert)
        ]
        top = max(float(r.get("severity") or 0) for r in mine)
        at_top = [r for r in mine if float(r.get("severity") or 0) == top]
        unit = next((r.get("severity_unit") for r in mine if r.get("severity_unit")), "")
        v = _versus(at_top, "rmsep", f"{dataset} / {target}, {pert} at severity {fmt(top)} {unit}".rstrip())
        if v:
            ratios = ", ".join(
                f"{method_label(r['method'])} ×{fmt(r['metrics']['rmsep_ratio'])}"
                for r in at_top
                if "rmsep_ratio" in r["metrics"]
            )
            items.append((v[0], v[1] + (f" (RMSEP / unperturbed: {ratios})" if ratios else "")))
    return Html(
        "<p>Perturbations injected into the test spectra only; embedding heads solid, classical dashed. "
        + esc(provenance(records, evaluation))
        + "</p>"
        + img(robustness_png(records), "robustness curves")
        + _sentences(items)
    )
