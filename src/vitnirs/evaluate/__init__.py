"""Evaluation: the split protocol, metrics and the Phase 0 classical baselines.

Heavy imports (nirs4all, aom_nirs) happen inside the functions that need them.
"""

from vitnirs.evaluate.metrics import classification_metrics, regression_metrics, summarise
from vitnirs.evaluate.splits import Split, class_targets, make_splits, regression_targets

__all__ = [
    "Split",
    "make_splits",
    "class_targets",
    "regression_targets",
    "regression_metrics",
    "classification_metrics",
    "summarise",
]
