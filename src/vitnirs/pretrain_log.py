"""Reading a pretraining run's logs: ``metrics.jsonl``, the names of its loss terms, the
held-out reconstruction error of ``pretrain_summary.json``, and the loss-curve figure.

This module imports nothing else from :mod:`vitnirs`, so both the trainer
(:mod:`vitnirs.train`, which writes ``loss_curve.png`` at the end of a run) and the report
(:mod:`vitnirs.report`, which redraws it from ``metrics.jsonl``) use it without depending on
each other.

The pretraining objective's main term is logged as ``mae`` (masked autoencoder): it is the
mean squared error of the reconstruction at the masked points, so it is shown as
"masked recon. MSE" — not a mean absolute error. The held-out value is logged as
``heldout_mae`` (older runs) or ``heldout_recon_mse``; the summary keys as
``heldout_mae_start``/``_end`` (older) or ``heldout_recon_mse_start``/``_end``; both are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "HELDOUT_KEYS",
    "NOT_LOSSES",
    "TERM_LABELS",
    "draw_loss_curve",
    "heldout_recon_mse",
    "plot_loss_curve",
    "read_metrics",
    "term_label",
]

HELDOUT_KEYS = ("heldout_recon_mse", "heldout_mae")  # new name first
NOT_LOSSES = {
    "step", "epoch", "lr", "spectra_per_s", "data_wait_fraction", "probe_auc", "seconds",
    "embedding_effective_rank", "embedding_dim_std",  # collapse figures of the probe, not losses
}  # fmt: skip
TERM_LABELS = {
    "mae": "masked recon. MSE",
    "heldout_recon_mse": "held-out masked recon. MSE",
    "heldout_mae": "held-out masked recon. MSE",
    "baseline": "baseline consistency",
    "contrastive": "contrastive",
    "semi_supervised": "semi-supervised",
    "total": "total (weighted sum)",
}
FEW_POINTS = 12  # a series with at most this many points is drawn with markers


def term_label(key: str) -> str:
    """The display name of a logged loss term (``"mae"`` → ``"masked recon. MSE"``)."""
    return TERM_LABELS.get(key, key)


def heldout_recon_mse(summary: dict[str, Any] | None, when: str) -> float | None:
    """The held-out masked reconstruction MSE of a pretraining summary at ``when`` (``"start"`` or
    ``"end"``): ``heldout_recon_mse_<when>``, else the older ``heldout_mae_<when>``; ``None`` if absent."""
    for key in HELDOUT_KEYS:
        value = (summary or {}).get(f"{key}_{when}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON lines of ``metrics.jsonl`` (a missing file gives ``[]``)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _series(rows: list[dict], key: str) -> list[tuple[float, float]]:
    return [
        (r["step"], r[key])
        for r in rows
        if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and "step" in r
    ]


def draw_loss_curve(rows: list[dict]) -> Figure | None:
    """Every loss term against the step (log scale), plus the probe AUC when logged.

    Parameters
    ----------
    rows:
        The records of ``metrics.jsonl`` (:func:`read_metrics`).

    Returns
    -------
    matplotlib.figure.Figure or None
        One panel (losses) or two (losses, synthetic-vs-real AUC on a fixed 0–1 axis); both share
        the step axis from 0 to the last step. Series with few points carry markers, so a single
        point shows. ``None`` when there is nothing to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("step"), (int, float))]
    if not rows:
        return None
    keys = dict.fromkeys(k for r in rows for k in r if k not in NOT_LOSSES)
    held = [k for k in keys if k in HELDOUT_KEYS]
    terms = [k for k in keys if k not in held]
    probe = _series(rows, "probe_auc")
    last_step = max(float(r["step"]) for r in rows)
    fig, axes = plt.subplots(1, 2 if probe else 1, figsize=(11 if probe else 7, 4), squeeze=False)
    ax = axes[0, 0]
    for term in terms:
        points = [(s, v) for s, v in _series(rows, term) if v > 0]  # log scale: positive values only
        if points:
            few = len(points) <= FEW_POINTS
            total = term == "total"  # drawn wide and pale: it often lies on the MSE term
            ax.plot(*zip(*points, strict=True), label=term_label(term), lw=3 if total else 1,
                    alpha=0.45 if total else 1.0, zorder=1 if total else 2, marker="o" if few else None,
                    ms=4)  # fmt: skip
    for key in held[:1]:  # one held-out series, whichever name the run logged it under
        points = [(s, v) for k in held for s, v in _series(rows, k) if v > 0]
        if points:
            ax.plot(*zip(*sorted(points), strict=True), label=term_label(key), color="k", ls="--", lw=1,
                    marker="s", ms=5)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("pretraining losses")
    ax.legend(fontsize=8)
    if probe:
        ax = axes[0, 1]
        ax.plot(*zip(*probe, strict=True), marker="o", label="probe AUC (held-out batches)")
        ax.axhline(0.95, color="red", ls="--", lw=1, label="warning (0.95)")
        ax.axhline(0.5, color="grey", ls=":", lw=1, label="0.5 = indistinguishable")
        ax.set_ylim(0.0, 1.02)
        ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.yaxis.set_major_formatter("{x:.1f}")
        ax.set_ylabel("ROC AUC")
        ax.set_title("synthetic vs real separability of the embedding")
        ax.legend(fontsize=8, loc="lower right")
    for ax in axes.ravel():
        ax.set_xlim(0, last_step * 1.03 if last_step > 0 else 1)  # one point: no 19.00–21.00 axis
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_curve(metrics_path: str | Path, out_png: str | Path) -> Path | None:
    """Draw :func:`draw_loss_curve` of ``metrics_path`` into ``out_png``.

    Returns the PNG path, or ``None`` when there is nothing to plot.
    """
    fig = draw_loss_curve(read_metrics(metrics_path))
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    out_png = Path(out_png)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
