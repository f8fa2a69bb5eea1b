"""The periodic probe of a pretraining run: held-out masked reconstruction MSE, the separability of
synthetic vs real embeddings (the roadmap's utility check, run during training), and the
embedding's effective rank and median per-dimension std (``metrics.jsonl``:
``embedding_effective_rank``, ``embedding_dim_std``).

A probe that finds a collapse or a separable synthetic mix warns (``UserWarning``, once per
run and kind: every probe's figures are in ``metrics.jsonl``). The warnings are raised from
plain methods (``torch.no_grad`` as a context, not a decorator), so that they name the
training loop, not torch's decorator wrapper, as where they come from."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from vitnirs.embedding import collapse_stats

HELD_OUT_STEP = 10**12  # probe batches are drawn at steps the run never reaches
AUC_WARNING = 0.95
RANK_WARNING = 4.0  # effective rank of the probe embeddings under which the run warns of a collapse


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move a batch (and its ``view2``) to ``device``; non-blocking from pinned memory."""
    return {
        k: to_device(v, device)
        if isinstance(v, dict)
        else v.to(device, non_blocking=True)
        if isinstance(v, torch.Tensor)
        else v
        for k, v in batch.items()
    }


class Probe:
    """Held-out batches (drawn at steps the run never reaches): held-out masked reconstruction MSE, and the
    separability of synthetic vs real embeddings (logistic regression, ROC-AUC on a split).

    An AUC near 1 means the encoder tells synthetic from real spectra apart: the synthetic
    mix teaches it something the real bank does not have (the roadmap's utility check).
    """

    def __init__(self, data: Any, n_samples: int, amp_dtype: torch.dtype | None, device: torch.device):
        self.batches, n, i = [], 0, 0
        while n < n_samples and i < 64:
            batch = data.batch(HELD_OUT_STEP + i)
            batch.pop("view2", None)
            self.batches.append(batch)
            n, i = n + batch["values"].shape[0], i + 1
        self.amp_dtype, self.device, self.last_auc = amp_dtype, device, None

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        )

    @torch.no_grad()
    def heldout_recon_mse(self, model: torch.nn.Module) -> float | None:
        """Mean MAE loss of the model (eval mode) on the held-out batches; ``None`` when they mask no
        point (``masking.mask_ratio`` 0: there is nothing to reconstruct, and 0.0 would read as perfect)."""
        masks = [b.get("mask") for b in self.batches]
        if masks and all(m is not None and not bool(m.any()) for m in masks):
            return None
        was_training, losses = model.training, []
        model.eval()
        with self._autocast():
            for batch in self.batches:
                losses.append(float(model(to_device(batch, self.device))[0]))
        model.train(was_training)
        return float(np.mean(losses))

    def _warn_once(self, kind: str, message: str) -> None:
        """Warn of ``kind`` the first time this probe finds it (a probe built without ``__init__``,
        as tests do, warns too); ``stacklevel`` 3 names the caller of :meth:`__call__`."""
        warned = self.__dict__.setdefault("warned", set())
        if kind not in warned:
            warned.add(kind)
            warnings.warn(message, UserWarning, stacklevel=3)

    def __call__(self, model: torch.nn.Module) -> dict[str, Any]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        was_training, embs = model.training, []
        model.eval()
        with torch.no_grad(), self._autocast():
            for b in map(lambda b: to_device(b, self.device), self.batches):
                embs.append(
                    model.encode(
                        b["values"], b["wavelengths"], b["valid"], b["level"], b.get("meta")
                    ).embedding
                )
        model.train(was_training)
        X = torch.cat(embs).float().cpu().numpy()
        y = torch.cat([b["is_synthetic"] for b in self.batches]).numpy().astype(int)
        out: dict[str, Any] = {"heldout_recon_mse": self.heldout_recon_mse(model), "probe_auc": None}
        stats = collapse_stats(X)  # a collapse the reconstruction loss does not see
        out |= {
            "embedding_effective_rank": stats["effective_rank"],
            "embedding_dim_std": stats["dim_std_median"],
        }
        if stats["effective_rank"] < RANK_WARNING:
            self._warn_once(
                "collapse",
                f"embedding collapse: effective rank {stats['effective_rank']:.2f} < {RANK_WARNING:g} on the "
                f"probe batch ({X.shape[0]} spectra, {X.shape[1]} dimensions, median dim std "
                f"{stats['dim_std_median']:.3g}); the objective is squeezing the embedding (every probe: "
                "embedding_effective_rank in metrics.jsonl)",
            )
        if min(y.sum(), len(y) - y.sum()) < 10:
            return out  # too few synthetic or real spectra to judge
        X_fit, X_test, y_fit, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_fit, y_fit)
        auc = float(roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1]))
        if auc > AUC_WARNING:
            self._warn_once(
                "separable",
                f"synthetic and real spectra are separable in the embedding (probe AUC {auc:.3f} > "
                f"{AUC_WARNING}; raw spectra often are too). If it stays near 1, the encoder may be learning "
                "what tells them apart: try a lower training_strategy.p_synth (every probe: probe_auc in "
                "metrics.jsonl)",
            )
        self.last_auc = out["probe_auc"] = auc
        return out
