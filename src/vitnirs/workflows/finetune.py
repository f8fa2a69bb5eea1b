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

Writes ``OUT/finetune.json`` (metrics per target, the split, the settings) and the checkpoint
``OUT/model/`` (:func:`vitnirs.checkpoint.write_checkpoint`, atomic): the fine-tuned model, its
``config.json`` (the source checkpoint's, plus a ``finetuned`` record: targets, their scaling,
the head file) and ``head.safetensors``. :func:`vitnirs.embedding.load_encoder` and
``SpectralEmbedder(checkpoint="OUT/model")`` read it like any checkpoint; :func:`load_finetuned`
gives the head too. Each optimiser step goes through :class:`vitnirs.train.step.TrainStep` (autocast,
clipping, the non-finite stop), as in pretraining.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from vitnirs.checkpoint import (
    HEAD_FILE,
    find_checkpoint,
    load_state,
    read_meta,
    weights_sha256,
    write_checkpoint,
)
from vitnirs.errors import VitnirsError
from vitnirs.evaluate.downstream import run_heads
from vitnirs.evaluate.metrics import regression_metrics
from vitnirs.evaluate.splits import make_splits, regression_targets
from vitnirs.model.heads import StandardisedLinearHead
from vitnirs.train.step import TrainStep

__all__ = ["FINETUNED_DIR", "finetune", "load_finetuned"]

FINETUNED_DIR = "model"  # OUT/model/: the fine-tuned checkpoint


def _inputs(X: np.ndarray, wavelengths_nm: np.ndarray, max_points: int) -> dict[str, torch.Tensor]:
    """Every row as the encoder reads it (:func:`vitnirs.embedding.encoder_inputs`)."""
    from vitnirs.embedding import encoder_inputs

    values, waves, valid, level = encoder_inputs(X, wavelengths_nm, max_points)
    return {"values": values, "wavelengths": waves, "valid": valid, "level": level}


def _predict(model, head, inputs: dict[str, torch.Tensor], rows: np.ndarray, batch_size: int) -> torch.Tensor:
    out = []
    for start in range(0, len(rows), batch_size):
        idx = torch.from_numpy(rows[start : start + batch_size])
        z = model.encode(*(inputs[k][idx] for k in ("values", "wavelengths", "valid", "level"))).embedding
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
    grad_clip: float = 1.0,
    precision: str = "auto",
    progress: bool = True,
) -> dict:
    """Fine-tune ``checkpoint`` on ``targets`` of ``dataset`` (a :class:`PreparedStore` name).

    Returns the ``finetune.json`` dict: per target the test metrics of the fine-tuned model and
    of ridge on the frozen embedding (same split), the split, the best epoch and the settings.
    ``grad_clip`` and ``precision`` are as ``training.*`` in pretraining.
    """
    from vitnirs.embedding import check_readable, embed_spectra, load_encoder, with_readout

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
    for note in check_readable(model, info, np.asarray(wl), source=dataset):  # or CoverageError
        print(f"warning: {note}", file=sys.stderr)
    frozen_z = embed_spectra(model, X, wl, info=with_readout(info, "mean"))  # the head reads the (n, D) mean
    inputs = _inputs(X, wl, info.max_points or 0)
    head = StandardisedLinearHead(model.encoder.d_model, len(targets)).fit_scale(frozen_z[fit])
    probe_epochs = epochs if freeze_encoder else max(1, epochs // 4)  # LP-FT: the head first, then both
    for p in model.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": head_lr}, {"params": model.encoder.parameters(), "lr": lr}],
        weight_decay=0.01,
    )
    step = TrainStep(
        optimizer, [*head.parameters(), *model.encoder.parameters()], precision=precision,
        device=torch.device("cpu"), grad_clip=grad_clip, hint="Try a lower lr / head_lr.",
    )  # fmt: skip

    best = (float("inf"), -1, None)
    bar = tqdm(range(epochs), desc="finetune", unit="epoch", disable=not progress)
    for epoch in bar:
        if epoch == probe_epochs:
            for p in model.encoder.parameters():
                p.requires_grad_(True)
        if epoch >= probe_epochs:  # the encoder moves: re-centre the head's inputs on it
            with torch.no_grad():
                head.fit_scale(_predict(model, torch.nn.Identity(), inputs, fit, 256))
        model.train(epoch >= probe_epochs)
        head.train()
        order = rng.permutation(fit)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            with step.autocast():
                loss = _masked_mse(_predict(model, head, inputs, rows, batch_size), Yz[rows])
            step.update(loss, where=f"epoch {epoch}")
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
        "dataset": dataset, "checkpoint": info.checkpoint, "protocol": split.name,
        "split_note": split.note, "n_train": len(fit), "n_val": len(val), "n_test": len(split.test),
        "targets": per_target, "target_mean": mean.tolist(), "target_std": std.tolist(),
        "best_epoch": best[1], "best_val_loss": best[0], "epochs_run": epoch + 1,
        "settings": {"lr": lr, "head_lr": head_lr, "batch_size": batch_size, "freeze_encoder": freeze_encoder,
                     "val_fraction": val_fraction, "patience": patience, "seed": seed, "grad_clip": grad_clip,
                     "precision": precision},
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    source = find_checkpoint(checkpoint)
    meta = {k: v for k, v in read_meta(source).items() if k not in ("portable", "dtype")}  # float32 now
    meta["finetuned"] = {
        "source": str(source), "dataset": dataset, "targets": list(targets), "target_mean": mean.tolist(),
        "target_std": std.tolist(), "head": HEAD_FILE, "freeze_encoder": freeze_encoder,
    }  # fmt: skip
    head_state = {k: v.contiguous() for k, v in head.state_dict().items()}
    result["finetuned_checkpoint"] = str(out / FINETUNED_DIR)
    write_checkpoint(
        out / FINETUNED_DIR, model.state_dict(), meta,
        extra=lambda tmp: save_file(head_state, str(tmp / HEAD_FILE)),
    )  # fmt: skip
    result["weights_sha256"] = weights_sha256(out / FINETUNED_DIR)  # the fine-tuned encoder's weights file
    result["source_weights_sha256"] = weights_sha256(source)  # the checkpoint it started from
    (out / "finetune.json").write_text(json.dumps(result, indent=1))
    return result


def load_finetuned(checkpoint: str | Path, *, device: str = "cpu"):
    """A fine-tuned checkpoint's model, its info and its head: ``(model, info, head)``.

    ``head(model.embed(...))`` predicts the standardised targets; ``info.finetuned`` holds
    ``target_mean`` / ``target_std`` to undo the scaling.
    """
    from vitnirs.embedding import load_encoder

    model, info = load_encoder(checkpoint, device=device)
    if not info.finetuned:
        raise VitnirsError(
            f"{info.checkpoint}: not a fine-tuned checkpoint (no 'finetuned' in its config.json)"
        )
    head = StandardisedLinearHead(model.encoder.d_model, len(info.finetuned["targets"]))
    head.load_state_dict(load_state(info.checkpoint, info.finetuned["head"], device=device))
    return model, info, head.eval()
