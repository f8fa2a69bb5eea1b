"""Scores of one prediction, and their summary over repeated splits.

Regression: RMSEP, R², RPD (= std(y_true, ddof=1) / RMSEP), bias (mean(pred − true)).
Classification: accuracy and balanced accuracy (mean per-class recall).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["regression_metrics", "classification_metrics", "summarise", "protocol_family"]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSEP, R², RPD, bias and n of a regression prediction.

    Parameters
    ----------
    y_true, y_pred : np.ndarray
        Same length, 1-D (or ``(n, 1)``).

    Returns
    -------
    dict
        ``{"rmsep", "r2", "rpd", "bias", "n"}``; ``r2``/``rpd`` are NaN when undefined
        (constant ``y_true`` or fewer than 2 samples), ``rpd`` is inf for a perfect fit.
    """
    yt = np.asarray(y_true, dtype=np.float64).ravel()
    yp = np.asarray(y_pred, dtype=np.float64).ravel()
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.shape} values but y_pred has {yp.shape}")
    n = len(yt)
    if n == 0:
        raise ValueError("no samples to score")
    resid = yp - yt
    rmsep = float(np.sqrt(np.mean(resid**2)))
    ss_tot = float(np.sum((yt - yt.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else float("nan")
    sd = float(np.std(yt, ddof=1)) if n > 1 else float("nan")
    rpd = sd / rmsep if rmsep > 0 else (float("inf") if sd > 0 else float("nan"))
    return {"rmsep": rmsep, "r2": r2, "rpd": rpd, "bias": float(np.mean(resid)), "n": n}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over the classes of ``y_true``) and n."""
    yt = np.asarray(y_true, dtype=object).ravel()
    yp = np.asarray(y_pred, dtype=object).ravel()
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.shape} values but y_pred has {yp.shape}")
    if len(yt) == 0:
        raise ValueError("no samples to score")
    correct = yt == yp
    recalls = [float(np.mean(correct[yt == c])) for c in dict.fromkeys(yt.tolist())]
    return {
        "accuracy": float(np.mean(correct)),
        "balanced_accuracy": float(np.mean(recalls)),
        "n": len(yt),
    }


def protocol_family(protocol: str) -> str:
    """``"random_rep_3"`` → ``"random_rep"``; other protocol names unchanged."""
    return re.sub(r"_\d+$", "", protocol) if protocol.startswith("random_rep") else protocol


def summarise(records: Iterable[Mapping]) -> list[dict]:
    """Mean and std of the metrics over repeated splits.

    Records (``{"method", "protocol", "metrics", ...}``, as written by the baselines and the
    heads) are grouped by ``(dataset, target, method, protocol family)`` — the repeats
    ``random_rep_0..k`` form one group, any other protocol is a group of one.

    Returns
    -------
    list of dict
        ``{"dataset", "target", "method", "protocol", "n_splits", "metrics" (means),
        "std" (sample std, ddof=1; 0 for a single split), "n_train", "n_test"}``
        in first-seen order; keys absent from the inputs are None.
    """
    groups: dict[tuple, list[Mapping]] = {}
    for r in records:
        key = (r.get("dataset"), r.get("target"), r["method"], protocol_family(str(r["protocol"])))
        groups.setdefault(key, []).append(r)
    out = []
    for (dataset, target, method, proto), rs in groups.items():
        names = [k for k, v in rs[0]["metrics"].items() if isinstance(v, (int, float)) and k != "n"]
        vals = {k: np.array([float(r["metrics"][k]) for r in rs]) for k in names}
        out.append(
            {
                "dataset": dataset,
                "target": target,
                "method": method,
                "protocol": proto,
                "n_splits": len(rs),
                "metrics": {k: float(np.mean(v)) for k, v in vals.items()},
                "std": {k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in vals.items()},
                "n_train": float(np.mean([r.get("n_train", np.nan) for r in rs])),
                "n_test": float(np.mean([r.get("n_test", np.nan) for r in rs])),
            }
        )
    return out
