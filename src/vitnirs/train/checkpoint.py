"""Trainer state: what resuming a pretraining run needs beyond the model checkpoint.

The checkpoint format (file names, ``config.json``, the atomic writer, loading) belongs to
:mod:`vitnirs.checkpoint`; this module adds ``trainer.pt`` to a pretraining checkpoint —
optimizer, GradScaler, step and RNG states as plain containers of tensors / ints / floats /
str, so ``torch.load(weights_only=True)`` reads it — and keeps the newest ``keep`` checkpoints.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitnirs.checkpoint import (
    TRAINER_FILE,
    checkpoint_dir,
    complete_checkpoints,
    load_state,
    model_spec_from_config,
    read_meta,
    unwrap,
    write_checkpoint,
)
from vitnirs.errors import VitnirsError

__all__ = [
    "capture_rng_state",
    "load_model_weights",
    "load_trainer_state",
    "restore_rng_state",
    "save_checkpoint",
]


# ----------------------------------------------------------------------------- RNG states
def capture_rng_state() -> dict[str, Any]:
    """Torch (CPU and every CUDA device), numpy and Python RNG states as weights_only-safe types."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {"version": int(py_version), "state": [int(v) for v in py_state], "gauss": py_gauss},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# ----------------------------------------------------------------------------- save
def save_checkpoint(
    run_dir: str | Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    config_dict: dict[str, Any],
    norm_constants: dict[str, Any],
    rng_state: dict[str, Any],
    *,
    model_spec: dict[str, Any] | None = None,
    keep: int | None = None,
    extra_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``RUN_DIR/checkpoints/step_NNNNNNN/`` (model, config, ``trainer.pt``) atomically and
    keep the newest ``keep`` ones.

    ``step`` is the number of optimiser steps taken so far (resume continues at ``step``).
    ``model_spec`` (default: from ``config_dict["model"]``) is what the loader rebuilds.
    ``extra_state`` (tensors of training-only modules, e.g. the semi-supervised head) goes in
    ``trainer.pt`` under ``"extra"``: it is needed to resume, not to embed.
    Returns the checkpoint directory.
    """
    from vitnirs.checkpoint import FORMAT_VERSION

    trainer = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": rng_state,
        "extra": extra_state or {},
    }
    meta = {
        "step": int(step),
        "model": model_spec or model_spec_from_config(config_dict),
        "normalization": norm_constants,
        "config": config_dict,
    }
    final = write_checkpoint(
        checkpoint_dir(run_dir, step),
        unwrap(model).state_dict(),
        meta,
        extra=lambda tmp: torch.save(trainer, tmp / TRAINER_FILE),
    )  # re-saving a step (e.g. after a resume) swaps the folders
    if keep is not None:
        for old in complete_checkpoints(run_dir)[: -keep if keep > 0 else None]:
            shutil.rmtree(old, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------- load
def load_trainer_state(
    ckpt_dir: str | Path,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Load ``trainer.pt`` (``weights_only=True``) into the optimizer and scaler; return it."""
    read_meta(ckpt_dir)
    path = Path(ckpt_dir) / TRAINER_FILE
    if not path.is_file():
        raise VitnirsError(f"{ckpt_dir}: no {TRAINER_FILE}: cannot resume training from it")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return state


def load_model_weights(ckpt_dir: str | Path, model: torch.nn.Module) -> None:
    """Load a checkpoint's weights into an already-built model (resume)."""
    read_meta(ckpt_dir)
    unwrap(model).load_state_dict(load_state(ckpt_dir), strict=True)
