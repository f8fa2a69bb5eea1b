"""The loss-curve PNG of a run, drawn from its ``metrics.jsonl`` at the end of pretraining.

The drawing lives in :mod:`vitnirs.pretrain_log` (which imports nothing else from vitnirs), so
the report redraws the same figure without importing the trainer; this module keeps the
trainer's import path.
"""

from __future__ import annotations

from vitnirs.pretrain_log import NOT_LOSSES, draw_loss_curve, plot_loss_curve, read_metrics

__all__ = ["NOT_LOSSES", "draw_loss_curve", "plot_loss_curve", "read_metrics"]
