"""The report's few-shot section: learning curves (median test RMSEP against the number of
labelled spectra n) and their table, from the ``fewshot`` records of ``metrics.json``
(:mod:`vitnirs.evaluate.fewshot`).

Curves per target: the embedding's best head at each n (solid, thick), the untrained network
(each seed's best head, averaged over the seeds; solid grey), the other feature controls (best
head; dotted) and each classical method (dashed). Where the full-calibration records of the same
split are in the run, the embedding's best head and the best of the plotted classical methods
on the whole train part are drawn at the full train size, joined to their curves by a thin
dashed line. The x axis is logarithmic.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vitnirs.evaluate.fewshot import fewshot_summary  # noqa: E402
from vitnirs.evaluate.names import FEATURE_WORDS, method_label  # noqa: E402
from vitnirs.report.sections import img  # noqa: E402
from vitnirs.report.tables import Html, esc, fmt, outcome, provenance, table  # noqa: E402

__all__ = ["fewshot_curves", "fewshot_png", "fewshot_section", "line_label"]

DPI = 90


def line_label(line: str, classical: bool) -> str:
    """A curve's name in words: a classical method, or a feature source's best head."""
    if classical:
        return method_label(line)
    if line == "untrained":
        return "untrained network (best head, mean of seeds)"
    return f"{FEATURE_WORDS.get(line, line)} (best head)"


def _classical(records: Sequence[dict]) -> set[str]:
    return {str(r["method"]) for r in records if r.get("source") == "classical"}


def _by_target(records: Sequence[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        if isinstance(r.get("rmsep_median"), (int, float)):
            out.setdefault((str(r.get("dataset")), str(r.get("target"))), []).append(r)
    return out


def fewshot_curves(records: Sequence[dict]) -> dict[str, dict[int, float]]:
    """``{line: {n: median RMSEP}}`` of one target's records: one line per feature source (its best
    head at each n; the untrained network: each seed's best, averaged) and one per classical method."""
    best: dict[tuple[str, object, int], float] = {}
    for r in records:
        line = r["method"] if r.get("source") == "classical" else str(r.get("source"))
        key = (line, r.get("seed"), int(r["n"]))
        best[key] = min(best.get(key, math.inf), float(r["rmsep_median"]))
    values: dict[str, dict[int, list[float]]] = {}
    for (line, _, n), v in best.items():
        values.setdefault(line, {}).setdefault(n, []).append(v)
    return {line: {n: float(np.mean(v)) for n, v in sorted(per.items())} for line, per in values.items()}


def _full_reference(mine: Sequence[dict], full: Sequence[dict]) -> dict[str, float]:
    """The full-calibration RMSEP (same dataset, target and split) of the embedding's best head and of
    the best classical method among those of the few-shot records."""
    r0 = mine[0]
    classical = {r["method"] for r in mine if r.get("source") == "classical"}
    key = (r0["dataset"], r0["target"], r0.get("protocol"))
    same = [
        r
        for r in full
        if (r.get("dataset"), r.get("target"), r.get("protocol")) == key
        and isinstance((r.get("metrics") or {}).get("rmsep"), (int, float))
    ]
    out = {}
    emb = [r["metrics"]["rmsep"] for r in same if str(r.get("method", "")).startswith("embedding+")]
    cla = [r["metrics"]["rmsep"] for r in same if r.get("method") in classical]
    if emb:
        out["embedding"] = float(min(emb))
    if cla:
        out["best classical"] = float(min(cla))
    return out


def _style(line: str) -> dict:
    if line == "embedding":
        return {"color": "tab:blue", "lw": 2.4, "ls": "-", "marker": "o"}
    if line == "untrained":
        return {"color": "0.45", "lw": 1.4, "ls": "-", "marker": "s"}
    classical = {"pls_raw": "tab:orange", "snv_sg1_pls": "tab:red", "aom_pls": "tab:purple"}
    if line in classical:
        return {"color": classical[line], "lw": 1.4, "ls": "--", "marker": "^"}
    others = {"snv_sg1": "tab:green", "minirocket": "tab:olive"}  # other feature controls
    return {"color": others.get(line, "tab:cyan"), "lw": 1.2, "ls": ":", "marker": "."}


def fewshot_png(records: Sequence[dict], full: Sequence[dict] = ()) -> bytes | None:
    """One panel per target: median RMSEP against n (log x), with the full-calibration reference."""
    targets = _by_target(records)
    if not targets:
        return None
    ncol = min(3, len(targets))
    nrow = math.ceil(len(targets) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False)
    for ax, ((dataset, target), mine) in zip(axes.ravel(), targets.items(), strict=False):
        curves, ref = fewshot_curves(mine), _full_reference(mine, full)
        n_full = int(mine[0].get("n_train_full") or 0)
        classical = _classical(mine)
        for line, points in curves.items():
            label = line_label(line, line in classical)
            ax.plot(list(points), list(points.values()), label=label, **_style(line))
        best_classical = min(  # the classical curve with the lowest RMSEP at its largest n
            (ln for ln in curves if ln in classical),
            key=lambda ln: list(curves[ln].values())[-1],
            default=None,
        )
        for name, value in ref.items():
            line = "embedding" if name == "embedding" else best_classical
            if line is None or not n_full:
                continue
            style = _style(line)
            last = list(curves[line].items())[-1]
            ax.plot([last[0], n_full], [last[1], value], color=style["color"], lw=0.9, ls="--", alpha=0.7)
            ax.plot([n_full], [value], color=style["color"], marker="*", ms=11, ls="none",
                    label=f"{name}, full calibration (all train rows)")  # fmt: skip
        ax.set_xscale("log")
        ticks = sorted({int(n) for r in mine for n in [r["n"]]} | ({n_full} if ref and n_full else set()))
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_title(f"{dataset} / {target}", fontsize=10)
        ax.set_xlabel("labelled spectra n (log scale)")
        ax.set_ylabel("median test RMSEP")
    for ax in axes.ravel()[len(targets) :]:
        ax.axis("off")
    legend: dict[str, object] = {}  # one legend for every panel, under them
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.tight_layout()
    fig.legend(list(legend.values()), list(legend), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(4, len(legend)), fontsize=8, frameon=False)  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _summary_items(records: Sequence[dict]) -> list[tuple[bool, str]]:
    items = []
    for row in fewshot_summary(records):
        ratio, k = row.get("embedding_vs_best_classical"), row.get("targets_best_classical")
        if ratio is None:
            continue
        result = outcome(ratio, 1.0, higher=False)[0]
        text = (f"n = {row['n']}: the embedding's best head has {fmt(ratio)} × the best classical median RMSEP "
                f"(median over {k} targets; {result})")  # fmt: skip
        if row.get("embedding_vs_untrained") is not None:
            text += f"; {fmt(row['embedding_vs_untrained'])} × the untrained network's"
        items.append((result == "worse", text))
    return items


def fewshot_section(records: Sequence[dict], evaluation: dict, full: Sequence[dict] = ()) -> Html:
    """Learning curves, the per-n verdicts and one table row per (target, n).

    ``records``: the ``fewshot`` section; ``full``: the full-calibration records of the same run
    (``baselines`` + ``downstream``), for the reference at the full train size.
    """
    targets = _by_target(records)
    if not targets:
        return Html("")
    draws = next((r.get("draws") for r in records if r.get("draws")), "?")
    lines = list(dict.fromkeys(ln for mine in targets.values() for ln in fewshot_curves(mine)))
    rows = []
    for (dataset, target), mine in targets.items():
        curves = fewshot_curves(mine)
        for n in sorted({int(r["n"]) for r in mine}):
            values = {ln: curves[ln].get(n) for ln in lines if ln in curves}
            best = min((v for v in values.values() if v is not None), default=None)
            cells = [
                "—" if values.get(ln) is None
                else Html(f'<span class="win">★&nbsp;{esc(fmt(values[ln]))}</span>') if values[ln] == best
                else fmt(values[ln])
                for ln in lines
            ]  # fmt: skip
            rows.append([f"{dataset} / {target}", n, mine[0].get("n_test"), *cells])
    items = "".join(
        f'<li class="{"loses" if bad else ""}">{esc(s)}</li>' for bad, s in _summary_items(records)
    )
    headers = ["dataset / target", "n", "test rows"]
    classical = _classical(records)
    headers += [line_label(ln, ln in classical) for ln in lines]
    caption = (
        f"median test RMSEP over {draws} fixed draws of n rows from the train part of each target's first "
        "split (the same draws for every method), scored on that split's test rows; ★ = lowest of the row · "
        + provenance(records, evaluation)
    )
    return Html(
        "<p>How many labelled spectra each method needs: the median test RMSEP of fixed draws of n train rows "
        "(a size not below a target's train rows is skipped). Embedding solid, classical dashed; a star is the "
        "full calibration on all the train rows.</p>"
        + img(fewshot_png(records, full), "few-shot learning curves")
        + (f"<ul>{items}</ul>" if items else "")
        + table(headers, rows, caption=caption)
    )
