"""The report's figures, drawn with matplotlib (Agg) into PNG bytes.

Each function takes plain records (as in ``metrics.json`` and the artefact JSON files) and
returns the PNG as bytes, or ``None`` when there is nothing to draw. The loss curve is the
trainer's own figure (:func:`vitnirs.pretrain_log.draw_loss_curve`, shared with the trainer
without importing it), redrawn from ``metrics.jsonl``. Embedding methods are drawn solid,
classical ones dashed, in every figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from vitnirs.evaluate import names  # noqa: E402
from vitnirs.pretrain_log import draw_loss_curve, read_metrics  # noqa: E402

__all__ = [
    "embedding_map_figure",
    "embedding_map_png",
    "lodo_png",
    "loss_curve_png",
    "reconstructions_png",
    "robustness_png",
    "transfer_figure",
    "transfer_png",
]

DPI = 90
LODO_LABELS = {
    "lodo_strict": "strict LODO (encoder pretrained without this dataset)",
    "lodo_downstream_only": "downstream-only LODO (encoder saw these spectra, not their targets)",
    "lodo_classical": "classical reference (best linear baseline on the same splits, no encoder)",
}


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def is_embedding(method: str) -> bool:
    """Whether a method name is a head on the frozen embedding (``embedding+ridge`` …)."""
    return names.is_embedding(method)


def main_metric(records: Sequence[dict]) -> str:
    """``"rmsep"`` when the records have it, else ``"balanced_accuracy"`` (class targets)."""
    return "rmsep" if any("rmsep" in (r.get("metrics") or {}) for r in records) else "balanced_accuracy"


def _value(r: dict, key: str) -> float:
    v = (r.get("metrics") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) else float("nan")


def _mean(records: Sequence[dict], key: str) -> float:
    vals = [v for v in (_value(r, key) for r in records) if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def loss_curve_png(run_dir: Path) -> tuple[bytes | None, list[Path]]:
    """The run's loss curve, redrawn from ``metrics.jsonl`` (the saved ``loss_curve.png`` when
    there is no readable JSONL); also returns the files it was made from."""
    jsonl, saved = run_dir / "metrics.jsonl", run_dir / "loss_curve.png"
    if jsonl.is_file():
        try:
            fig = draw_loss_curve(read_metrics(jsonl))
        except (OSError, ValueError):  # a broken line: fall back on the saved PNG
            fig = None
        if fig is not None:
            return _png(fig), [jsonl]
    if saved.is_file():
        return saved.read_bytes(), [saved]
    return None, []


def reconstructions_png(recs: Sequence[dict]) -> bytes | None:
    """One panel per spectrum: the normalised spectrum, masked blocks shaded, MAE prediction."""
    recs = [r for r in recs if r.get("values")]
    if not recs:
        return None
    ncol = min(2, len(recs))
    nrow = math.ceil(len(recs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 2.8 * nrow), squeeze=False)
    for ax, r in zip(axes.ravel(), recs, strict=False):
        w = np.asarray(r["wavelengths_nm"], float)
        v = np.asarray(r["values"], float)
        m = np.asarray(r["mask"], bool)
        p = np.array([np.nan if x is None else x for x in r["prediction"]], float)
        ax.fill_between(w, v.min(), v.max(), where=m, color="0.85", step="mid", label="masked")
        ax.plot(w, np.where(m, np.nan, v), color="k", lw=1.2, label="visible to the encoder")
        ax.plot(w, np.where(m, v, np.nan), color="k", lw=0.8, ls=":", label="masked (truth)")
        ax.plot(w, p, color="tab:red", lw=1.2, label="prediction")
        mse = r.get("recon_mse", r.get("masked_mse"))
        title = f"{r['dataset']} row {r.get('row', '?')}"
        ax.set_title(title + (f" — recon. MSE {mse:.3g}" if mse else ""))
        ax.set_xlabel("wavelength (nm)")
        ax.set_ylabel("normalised absorbance")
    for ax in axes.ravel()[len(recs) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7, loc="best")
    return _png(fig)


NOT_RECORDED = "instrument not recorded"
MARKERS = "os^Dv<>Pph*X"
LEGEND_ROWS = 18  # legend entries per column


def group_styles(names: Sequence[str]) -> dict[str, dict]:
    """A distinct (colour, marker) per group: the 10 tab10 colours, then the next marker.

    :data:`NOT_RECORDED` is light grey dots.
    """
    cmap, out = plt.get_cmap("tab10"), {}
    for i, name in enumerate(n for n in names if n != NOT_RECORDED):
        out[name] = {"color": cmap(i % 10), "marker": MARKERS[(i // 10) % len(MARKERS)]}
    if NOT_RECORDED in names:
        out[NOT_RECORDED] = {"color": "0.75", "marker": "."}
    return out


def _scatter_by(ax: plt.Axes, x: np.ndarray, y: np.ndarray, labels: list[str], kind: list[str],
                title: str) -> None:  # fmt: skip
    names = sorted(dict.fromkeys(labels), key=lambda n: n == NOT_RECORDED)  # "not recorded" last
    styles = group_styles(names)
    synth_all = np.array([k == "synthetic" for k in kind])
    for name in names:
        sel = np.array([lab == name for lab in labels])
        synth, real = synth_all & sel, sel & ~synth_all
        style, z = styles[name], 1 if name == NOT_RECORDED else 2
        label = f"{name} (synthetic)" if synth.any() and not real.any() else name
        if real.any():
            ax.scatter(x[real], y[real], s=14, alpha=0.75, label=label, zorder=z, **style)
        if synth.any():
            ax.scatter(x[synth], y[synth], s=14, alpha=0.6, facecolors="none", edgecolors=style["color"],
                       marker=style["marker"], label=None if real.any() else label, zorder=z)  # fmt: skip
    ax.set_title(title)
    ax.legend(fontsize=9, ncol=math.ceil(len(names) / LEGEND_ROWS), loc="upper left", markerscale=1.5,
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, title_fontsize=8,
              title=f"{len(names)} groups · hollow = synthetic")  # fmt: skip


def instrument_labels(pts: dict) -> list[str]:
    """The instrument of each point; :data:`NOT_RECORDED` where the map fell back on the dataset name."""
    datasets = list(pts["dataset"])
    instruments = list(pts.get("instrument") or [None] * len(datasets))
    return [NOT_RECORDED if not i or i == d else str(i) for d, i in zip(datasets, instruments, strict=True)]


def embedding_map_png(emap: dict) -> bytes | None:
    """:func:`embedding_map_figure` as PNG bytes (``None`` when there are no points)."""
    fig = embedding_map_figure(emap)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")  # no tight_layout: it squeezes the axes
    plt.close(fig)
    return buf.getvalue()


def embedding_map_figure(emap: dict) -> plt.Figure | None:
    """Two panels of the 2-D map: coloured by dataset and by instrument (synthetic = hollow).

    Each panel's legend sits outside its axes; colours are tab10 with a new marker every ten
    groups, so no two groups share a style. "By instrument" uses the instrument of each spectrum
    (metadata column, else the dataset's declared instrument); the rest are grey.
    """
    pts = (emap or {}).get("points") or {}
    if not pts.get("x"):
        return None
    x, y = np.asarray(pts["x"], float), np.asarray(pts["y"], float)
    kind = list(pts.get("kind") or ["real"] * len(x))
    method = str(emap.get("method", "pca")).upper()
    ev = emap.get("explained_variance") or []
    axis = [f"{method} {i + 1}" + (f" ({ev[i]:.0%})" if i < len(ev) else "") for i in range(2)]
    by = [(list(pts["dataset"]), "by dataset"), (instrument_labels(pts), "by instrument")]
    ncol = max(math.ceil(len(set(labels)) / LEGEND_ROWS) for labels, _ in by)
    fig = plt.figure(figsize=(7.5 + 3.4 * ncol, 11))
    width = 6.5 / fig.get_figwidth()  # the axes keep 6.5 in; the legends take the rest
    for i, (labels, title) in enumerate(by):
        ax = fig.add_axes((0.8 / fig.get_figwidth(), 0.55 - 0.5 * i + 0.04, width, 0.4))
        _scatter_by(ax, x, y, labels, kind, title)
        ax.set_xlabel(axis[0])
        ax.set_ylabel(axis[1])
    return fig


def lodo_png(records: Sequence[dict]) -> bytes | None:
    """Bars per dataset/target: each method, strict LODO and downstream-only LODO side by side."""
    records = [r for r in records if r.get("metrics")]
    if not records:
        return None
    key = main_metric(records)
    tasks = list(dict.fromkeys((r.get("dataset"), r.get("target")) for r in records))
    protocols = [p for p in LODO_LABELS if any(r.get("protocol") == p for r in records)]
    protocols += sorted({str(r.get("protocol")) for r in records} - set(protocols))
    ncol = min(3, len(tasks))
    nrow = math.ceil(len(tasks) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.4 * nrow + 0.6), squeeze=False)
    style = {
        p: {"color": f"C{j}", "hatch": "//" if p == "lodo_strict" else None} for j, p in enumerate(protocols)
    }
    for ax, (dataset, target) in zip(axes.ravel(), tasks, strict=False):
        mine = [r for r in records if (r.get("dataset"), r.get("target")) == (dataset, target)]
        methods = list(dict.fromkeys(r["method"] for r in mine))
        for i, method in enumerate(methods):  # the method's protocols side by side around its tick
            present = [
                p for p in protocols if any(r["method"] == method and r.get("protocol") == p for r in mine)
            ]
            width = 0.8 / len(present)
            for j, proto in enumerate(present):
                value = _mean([r for r in mine if r["method"] == method and r.get("protocol") == proto], key)
                ax.bar(i + (j - (len(present) - 1) / 2) * width, value, width, **style[proto])
        ax.set_xticks(np.arange(len(methods)), [names.method_label(m) for m in methods], rotation=30, ha="right",
                      fontsize=7)  # fmt: skip
        ax.set_title(f"{dataset} / {target}", fontsize=9)
        ax.set_ylabel(key.upper() if key == "rmsep" else key)
    for ax in axes.ravel()[len(tasks) :]:
        ax.axis("off")
    handles = [Patch(label=LODO_LABELS.get(p, p), **style[p]) for p in protocols]
    fig.legend(handles=handles, loc="lower center", ncol=1, fontsize=8)
    fig.tight_layout(rect=(0, 0.06 * len(protocols), 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")  # the legend is never cut
    plt.close(fig)
    return buf.getvalue()


def transfer_cells(
    records: Sequence[dict], method: str, sources: Sequence[str], targets: Sequence[str]
) -> np.ndarray:
    """The ``(len(sources), len(targets))`` RMSEP matrix of one method (NaN = not run)."""
    grid = np.full((len(sources), len(targets)), np.nan)
    for r in records:
        if r.get("method") == method and r.get("source") in sources and r.get("target_instrument") in targets:
            grid[sources.index(r["source"]), targets.index(r["target_instrument"])] = _value(r, "rmsep")
    return grid


MIN_SPAN = 1.5  # the colour scale of a heatmap spans at least this factor


def heatmap_norm(grid: np.ndarray) -> Normalize:
    """The colour scale of one heatmap: logarithmic from its smallest to its largest RMSEP, widened
    about their geometric mean to at least a factor :data:`MIN_SPAN` (a 5 % difference is not
    drawn as yellow against purple)."""
    finite = grid[np.isfinite(grid) & (grid > 0)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (1.0, 1.0)
    if hi < lo * MIN_SPAN:
        mid = math.sqrt(lo * hi)
        lo, hi = mid / math.sqrt(MIN_SPAN), mid * math.sqrt(MIN_SPAN)
    return LogNorm(lo, hi)


def transfer_figure(records: Sequence[dict], panels: Sequence[tuple[int, str]]) -> plt.Figure | None:
    """Heatmaps of RMSEP, source (rows) × target instrument (columns), one per ``(k, method)``.

    ``records`` are one group and target; instruments keep one order. Each panel has its own log
    colour scale and colour bar (one shared scale made every cell below a 15× outlier one colour).
    """
    sources = list(dict.fromkeys(r.get("source") for r in records))
    targets = list(dict.fromkeys(r.get("target_instrument") for r in records))
    grids = [
        (k, m, transfer_cells([r for r in records if r.get("k") == k], m, sources, targets))
        for k, m in panels
    ]
    grids = [g for g in grids if np.isfinite(g[2]).any()]
    if not grids:
        return None
    ncol = min(4, len(grids))
    nrow = math.ceil(len(grids) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(3.6 * ncol + 0.5, 3.3 * nrow), squeeze=False, layout="constrained"
    )
    cmap = plt.get_cmap("viridis_r")
    for i, (ax, (k, method, grid)) in enumerate(zip(axes.ravel(), grids, strict=False)):
        norm = heatmap_norm(grid)
        im = ax.imshow(grid, cmap=cmap, norm=norm)
        for (a, b), v in np.ndenumerate(grid):
            if np.isfinite(v):
                dark = float(norm(v)) > 0.55  # viridis_r: high values are dark
                ax.text(b, a, f"{v:.3g}", ha="center", va="center", fontsize=7, color="w" if dark else "k")
        ax.set_xticks(range(len(targets)), [str(t) for t in targets], rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(sources)), [str(s) for s in sources], fontsize=7)
        ax.set_title(f"{names.method_label(method)}, k = {k}", fontsize=8)
        ax.set_xlabel("tested on", fontsize=7)
        if i % ncol == 0:
            ax.set_ylabel("fitted on", fontsize=7)
        bar = fig.colorbar(im, ax=ax, shrink=0.75)
        bar.set_ticks(np.geomspace(norm.vmin, norm.vmax, 4), labels=[f"{v:.2g}" for v in
                      np.geomspace(norm.vmin, norm.vmax, 4)], minor=False)  # fmt: skip
        bar.ax.minorticks_off()
        bar.ax.tick_params(labelsize=6)
        bar.set_label("RMSEP (log scale)", fontsize=6)
    for ax in axes.ravel()[len(grids) :]:
        ax.axis("off")
    return fig


def transfer_png(records: Sequence[dict], panels: Sequence[tuple[int, str]]) -> bytes | None:
    """:func:`transfer_figure` as PNG bytes (white cells: not run)."""
    fig = transfer_figure(records, panels)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def robustness_png(records: Sequence[dict], max_tasks: int = 4) -> bytes | None:
    """RMSEP against severity, one panel per (dataset/target, perturbation); one line per method."""
    records = [r for r in records if r.get("metrics") and r.get("severity") is not None]
    if not records:
        return None
    tasks = list(dict.fromkeys((r.get("dataset"), r.get("target")) for r in records))[:max_tasks]
    perts = list(dict.fromkeys(str(r.get("perturbation")) for r in records))
    fig, axes = plt.subplots(
        len(tasks), len(perts), figsize=(3.6 * len(perts), 3 * len(tasks)), squeeze=False
    )
    for i, (dataset, target) in enumerate(tasks):
        for j, pert in enumerate(perts):
            ax = axes[i, j]
            mine = [r for r in records
                    if (r.get("dataset"), r.get("target"), str(r.get("perturbation"))) == (dataset, target, pert)]  # fmt: skip
            for method in dict.fromkeys(r["method"] for r in mine):
                pts = sorted(
                    (float(r["severity"]), _value(r, "rmsep")) for r in mine if r["method"] == method
                )
                ax.plot(*zip(*pts, strict=True), marker="o", ms=3, ls="-" if is_embedding(method) else "--",
                        label=names.method_label(method))  # fmt: skip
            unit = next((r.get("severity_unit") for r in mine if r.get("severity_unit")), "")
            ax.set_title(f"{dataset} / {target}: {pert}", fontsize=8)
            ax.set_xlabel(f"severity ({unit})" if unit else "severity", fontsize=7)
            ax.set_ylabel("RMSEP", fontsize=7)
            if mine:
                ax.legend(fontsize=6)
            ax.grid(alpha=0.3)
    return _png(fig)
