"""The loss-curve PNG of a run, drawn from its ``metrics.jsonl`` (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

NOT_LOSSES = {"step", "epoch", "lr", "spectra_per_s", "data_wait_fraction", "probe_auc", "seconds"}


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON lines of ``metrics.jsonl`` (a missing file gives ``[]``)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_loss_curve(metrics_path: str | Path, out_png: str | Path) -> Path | None:
    """Every loss term against the step (log scale), plus the probe AUC when logged.

    Returns the PNG path, or ``None`` when there is nothing to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    if not rows:
        return None
    terms = [k for k in rows[-1] if k not in NOT_LOSSES and isinstance(rows[-1][k], (int, float))]
    has_probe = any(r.get("probe_auc") is not None for r in rows)
    fig, axes = plt.subplots(1, 2 if has_probe else 1, figsize=(11 if has_probe else 7, 4), squeeze=False)
    ax = axes[0, 0]
    for term in terms:
        points = [(r["step"], r[term]) for r in rows if isinstance(r.get(term), (int, float)) and r[term] > 0]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, label=term, lw=2 if term == "total" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("pretraining losses")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if has_probe:
        ax = axes[0, 1]
        points = [(r["step"], r["probe_auc"]) for r in rows if r.get("probe_auc") is not None]
        ax.plot(*zip(*points, strict=True), marker="o")
        ax.axhline(0.95, color="red", ls="--", lw=1, label="warning (0.95)")
        ax.axhline(0.5, color="grey", ls=":", lw=1, label="indistinguishable")
        ax.set_ylim(0.4, 1.02)
        ax.set_xlabel("step")
        ax.set_title("synthetic vs real separability (AUC)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
