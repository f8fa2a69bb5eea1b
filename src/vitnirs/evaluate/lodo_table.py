"""The leave-one-dataset-out table and figure: best RMSEP of each LODO kind against the classical one.

:func:`lodo_table` reduces the LODO records (strict: :mod:`vitnirs.research.strict_lodo`;
downstream-only and the classical reference: :mod:`vitnirs.workflows.lodo`) to one row per
(dataset, target) on its main split, with the
embedding / classical RMSEP ratios; :func:`plot_lodo` draws those ratios as grouped bars. The
protocol names (``lodo_strict``, ``lodo_downstream_only``, ``lodo_classical``) and their plot
labels are defined here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["CLASSICAL", "DOWNSTREAM_ONLY", "LABELS", "STRICT", "lodo_table", "plot_lodo"]

STRICT, DOWNSTREAM_ONLY, CLASSICAL = "lodo_strict", "lodo_downstream_only", "lodo_classical"
LABELS = {
    CLASSICAL: "best classical baseline",
    STRICT: "embedding, strict LODO (encoder never saw the dataset)",
    DOWNSTREAM_ONLY: "embedding, downstream-only LODO (encoder pretrained on all datasets, this one included)",
}


# ----------------------------------------------------------------------------- table and plot
def _best(records: list[dict], protocol: str) -> dict | None:
    cands = [r for r in records if r["protocol"] == protocol and np.isfinite(r["metrics"]["rmsep"])]
    best = min(cands, key=lambda r: r["metrics"]["rmsep"]) if cands else None
    return None if best is None else {"method": best["method"], "rmsep": best["metrics"]["rmsep"]}


def _ratio(a: dict | None, b: dict | None) -> float | None:
    return round(a["rmsep"] / b["rmsep"], 3) if a and b and b["rmsep"] > 0 else None


def lodo_table(records: Sequence[dict]) -> list[dict]:
    """One row per (dataset, target): best RMSEP of each kind on the main split, and ratios.

    The main split of a (dataset, target) is its first split family other than ``random_rep``
    (as the suite's summary). ``*_vs_classical`` is embedding RMSEP / best classical RMSEP
    (below 1: the embedding wins). A failed dataset gets a row with its ``protocol`` and ``error``.
    """
    scored = [r for r in records if r.get("metrics") is not None and r.get("target") is not None]
    rows = []
    for dataset, target in dict.fromkeys((r["dataset"], r["target"]) for r in scored):
        these = [r for r in scored if (r["dataset"], r["target"]) == (dataset, target)]
        splits = list(dict.fromkeys(r["split"] for r in these))
        main = next((s for s in splits if s != "random_rep"), splits[0])
        these = [r for r in these if r["split"] == main]
        classical, strict, down = (_best(these, p) for p in (CLASSICAL, STRICT, DOWNSTREAM_ONLY))
        rows.append(
            {
                "dataset": dataset, "target": target, "split": main, "best_classical": classical,
                "best_strict": strict, "best_downstream_only": down,
                "strict_vs_classical": _ratio(strict, classical),
                "downstream_only_vs_classical": _ratio(down, classical),
                "strict_vs_downstream_only": _ratio(strict, down),
            }
        )  # fmt: skip
    rows += [
        {"dataset": r["dataset"], "target": None, "protocol": r["protocol"], "error": r["error"]}
        for r in records
        if r.get("error")
    ]
    return rows


def plot_lodo(records: Sequence[dict], path: str | Path) -> Path | None:
    """Grouped bars per (dataset, target): RMSEP / best classical RMSEP of each kind.

    Returns the PNG path, or None when no row has a classical reference to divide by.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in lodo_table(records) if r.get("best_classical")]
    if not rows:
        return None
    kinds = [
        (CLASSICAL, "best_classical"),
        (STRICT, "best_strict"),
        (DOWNSTREAM_ONLY, "best_downstream_only"),
    ]
    x, width = np.arange(len(rows)), 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5))
    for k, (protocol, key) in enumerate(kinds):
        ratio = [np.nan if r[key] is None else r[key]["rmsep"] / r["best_classical"]["rmsep"] for r in rows]
        ax.bar(x + (k - 1) * width, ratio, width, label=LABELS[protocol])
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, [f"{r['dataset']}\n{r['target']}" for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test RMSEP / best classical RMSEP")
    ax.set_title("Leave-one-dataset-out, main split of each dataset (lower is better)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.35))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
