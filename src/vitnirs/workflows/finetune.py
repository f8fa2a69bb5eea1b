"""`vitnirs finetune`: a pretrained encoder + a small head, trained on one dataset's targets.

For users who have targets. One or several numeric ``y_*`` targets at once (the roadmap's
multi-task option: one output per target, each standardised on the train rows; a row missing a
target is left out of that target's loss only). The split is the evaluation suite's
(:func:`vitnirs.evaluate.splits.make_splits`: the native cal/test partition, else
Kennard–Stone 80/20); early stopping holds out ``val_fraction`` of the *train* rows, so no test
row is used for any choice. The head is a linear map of the embedding standardised with
train-row statistics (what ridge on the frozen embedding sees). Training is LP-FT: the head
alone for the first quarter of the epochs, then the encoder too at a small rate (``lr``, the
head at ``head_lr``), the standardisation re-estimated each epoch as the encoder moves;
``freeze_encoder`` trains the head only. The result says how the fine-tuned model
compares with ridge on the frozen embedding of the same checkpoint, on the same split.

Writes ``OUT/finetune.json`` (metrics per target, the split, the settings) and
``OUT/model.safetensors`` (encoder + head weights; the target scaling is in the JSON).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from vitnirs.errors import VitnirsError
from vitnirs.evaluate.downstream import run_heads
from vitnirs.evaluate.metrics import regression_metrics
from vitnirs.evaluate.splits import make_splits, regression_targets


def _inputs(X: np.ndarray, wavelengths_nm: np.ndarray, max_points: int) -> dict[str, torch.Tensor]:
    """Every row as the encoder reads it (:func:`vitnirs.embedding.encoder_inputs`)."""
    from vitnirs.embedding import encoder_inputs

    values, waves, valid, level = encoder_inputs(X, wavelengths_nm, max_points)
    return {"values": values, "wavelengths": waves, "valid": valid, "level": level}


class _Standardise(torch.nn.Module):
    """``(z - mean) / std`` with the frozen embedding's train-row statistics (fixed buffers).

    The embeddings of different spectra differ by small amounts around a large common part
    (as ridge on the frozen embedding, which standardises its features): without this the
    head starts blind to them.
    """

    def __init__(self, z: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(z.mean(0).astype(np.float32)))
        self.register_buffer("std", torch.from_numpy(np.maximum(z.std(0), 1e-8).astype(np.float32)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.mean) / self.std


def _predict(model, head, inputs: dict[str, torch.Tensor], rows: np.ndarray, batch_size: int) -> torch.Tensor:
    out = []
    for start in range(0, len(rows), batch_size):
        idx = torch.from_numpy(rows[start : start + batch_size])
        z = model.encode(*(inputs[k][idx] for k in ("values", "wavelengths", "valid", "level")))[1]
        out.append(head(z))  # [b, T]
    return torch.cat(out)


def _masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite entries of ``target (B, T)`` (a missing target costs nothing)."""
    has = torch.isfinite(target)
    return ((pred - torch.nan_to_num(target)) ** 2 * has).sum() / has.sum().clamp_min(1)


def finetune(
    checkpoint: str | Path,
    store: Any,
    dataset: str,
    targets: Sequence[str],
    *,
    out: str | Path,
    epochs: int = 200,
    lr: float = 1e-4,
    head_lr: float = 1e-2,
    batch_size: int = 32,
    freeze_encoder: bool = False,
    val_fraction: float = 0.15,
    patience: int = 30,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fine-tune ``checkpoint`` on ``targets`` of ``dataset`` (a :class:`PreparedStore` name).

    Returns the ``finetune.json`` dict: per target the test metrics of the fine-tuned model and
    of ridge on the frozen embedding (same split), the split, the best epoch and the settings.
    """
    from vitnirs.embedding import embed_spectra, load_encoder

    started, out = time.perf_counter(), Path(out)
    all_targets = regression_targets(store.targets(dataset))
    missing = [t for t in targets if t not in all_targets]
    if not targets or missing:
        raise VitnirsError(
            f"{dataset}: no numeric target {missing or '(none given)'}; it has {sorted(all_targets) or 'none'}"
        )
    X = np.asarray(store.values(dataset), dtype=np.float64)
    wl = store.wavelengths_nm(dataset)
    Y = np.stack([all_targets[t] for t in targets], axis=1)  # [n, T], NaN = missing
    split = make_splits(store.metadata(dataset), X, Y[:, 0], seed=seed, n_repeats=0)[0]
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(split.train)
    n_val = max(1, int(round(val_fraction * len(shuffled))))
    val, fit = np.sort(shuffled[:n_val]), np.sort(shuffled[n_val:])
    mean, std = np.nanmean(Y[fit], axis=0), np.nanstd(Y[fit], axis=0)
    std = np.where(std > 0, std, 1.0)
    Yz = torch.from_numpy(((Y - mean) / std).astype(np.float32))

    torch.manual_seed(seed)
    model, info = load_encoder(checkpoint)
    frozen_z = embed_spectra(model, X, wl)
    inputs = _inputs(X, wl, info.get("max_points") or 0)
    # standardised embedding -> linear map per target (a LayerNorm here would mix the features)
    head = torch.nn.Sequential(
        _Standardise(frozen_z[fit]), torch.nn.Linear(model.encoder.d_model, len(targets))
    )
    probe_epochs = epochs if freeze_encoder else max(1, epochs // 4)  # LP-FT: the head first, then both
    for p in model.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": head_lr}, {"params": model.encoder.parameters(), "lr": lr}],
        weight_decay=0.01,
    )

    best = (float("inf"), -1, None)
    from tqdm.auto import tqdm

    bar = tqdm(range(epochs), desc="finetune", unit="epoch", disable=not progress)
    for epoch in bar:
        if epoch == probe_epochs:
            for p in model.encoder.parameters():
                p.requires_grad_(True)
        if epoch >= probe_epochs:  # the encoder moves: re-centre the head's inputs on it
            with torch.no_grad():
                z = _predict(model, torch.nn.Identity(), inputs, fit, 256).numpy()
            (
                head[0].mean.copy_(torch.from_numpy(z.mean(0))),
                head[0].std.copy_(torch.from_numpy(np.maximum(z.std(0), 1e-8))),
            )
        model.train(epoch >= probe_epochs)
        head.train()
        order = rng.permutation(fit)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            loss = _masked_mse(_predict(model, head, inputs, rows, batch_size), Yz[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        head.eval()
        with torch.no_grad():
            val_loss = float(_masked_mse(_predict(model, head, inputs, val, 256), Yz[val]))
        bar.set_postfix(val=f"{val_loss:.4f}")
        if val_loss < best[0]:
            best = (val_loss, epoch, (copy.deepcopy(model.state_dict()), copy.deepcopy(head.state_dict())))
        elif epoch - best[1] >= patience:
            break
    model.load_state_dict(best[2][0])
    head.load_state_dict(best[2][1])
    with torch.no_grad():
        pred = _predict(model, head, inputs, split.test, 256).numpy() * std + mean  # [n_test, T]

    per_target = []
    for j, name in enumerate(targets):
        ok = np.isfinite(Y[split.test, j])
        frozen = run_heads(frozen_z, Y[:, j], split.train[np.isfinite(Y[split.train, j])],
                           split.test[ok], methods=["ridge"], seed=seed)[0]  # fmt: skip
        tuned = regression_metrics(Y[split.test, j][ok], pred[ok, j])
        per_target.append({"target": name, "finetuned": tuned, "frozen_ridge": frozen["metrics"],
                           "finetuned_vs_frozen_ridge": round(tuned["rmsep"] / frozen["metrics"]["rmsep"], 3)})  # fmt: skip
    result = {
        "dataset": dataset, "checkpoint": str(info["checkpoint"]), "protocol": split.name,
        "split_note": split.note, "n_train": len(fit), "n_val": len(val), "n_test": len(split.test),
        "targets": per_target, "target_mean": mean.tolist(), "target_std": std.tolist(),
        "best_epoch": best[1], "best_val_loss": best[0], "epochs_run": epoch + 1,
        "settings": {"lr": lr, "head_lr": head_lr, "batch_size": batch_size, "freeze_encoder": freeze_encoder,
                     "val_fraction": val_fraction, "patience": patience, "seed": seed},
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    weights = {f"encoder.{k}": v.contiguous() for k, v in model.state_dict().items()}
    weights |= {f"head.{k}": v.contiguous() for k, v in head.state_dict().items()}
    save_file(weights, str(out / "model.safetensors"))
    (out / "finetune.json").write_text(json.dumps(result, indent=1))
    return result
