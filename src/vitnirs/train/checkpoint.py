"""Checkpoints: a directory per step, written atomically, loaded without unpickling objects.

Layout::

    RUN_DIR/checkpoints/step_0001200/
        model.safetensors   the unwrapped model's state_dict (safetensors: tensors only)
        config.json         resolved config, format_version, normalisation constants and the
                            model spec (preset + keyword arguments) that rebuilds the model
        trainer.pt          optimizer, GradScaler, step, RNG states; plain containers of
                            tensors/ints/floats/str only, so ``torch.load(weights_only=True)`` reads it

A portable checkpoint (:mod:`vitnirs.workflows.export`) is the same directory without ``trainer.pt``,
possibly with bfloat16 weights: :func:`load_model` reads it (casting to float32), resuming does not.

A checkpoint is written under a temporary name in ``checkpoints/`` and renamed into place,
so a run killed while saving leaves either the previous checkpoints or the new one, never a
half-written directory that ``latest_checkpoint`` would pick.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vitnirs.errors import VitnirsError
from vitnirs.files import replace_dir

FORMAT_VERSION = 1
MODEL_FILE, CONFIG_FILE, TRAINER_FILE = "model.safetensors", "config.json", "trainer.pt"
_PREFIX = "step_"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DDP (``.module``) and/or ``torch.compile`` (``._orig_mod``)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    """``RUN_DIR/checkpoints/step_NNNNNNN``."""
    return Path(run_dir) / "checkpoints" / f"{_PREFIX}{step:07d}"


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
def model_spec_from_config(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The (preset, kwargs) that rebuild the model: the config's ``model`` section as built."""
    section = dict(config_dict.get("model", {}))
    preset = section.pop("preset", "base")
    return {"builder": "vitnirs.model.build_mae", "preset": preset, "kwargs": section}


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
    """Write ``RUN_DIR/checkpoints/step_NNNNNNN/`` atomically and keep the newest ``keep`` ones.

    ``step`` is the number of optimiser steps taken so far (resume continues at ``step``).
    ``model_spec`` (default: from ``config_dict["model"]``) is what :func:`load_model` rebuilds.
    ``extra_state`` (tensors of training-only modules, e.g. the semi-supervised head) goes in
    ``trainer.pt`` under ``"extra"``: it is needed to resume, not to embed.
    Returns the checkpoint directory.
    """
    final = checkpoint_dir(run_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{final.name}.", dir=final.parent))
    try:
        state = {k: v.detach().cpu().clone().contiguous() for k, v in unwrap(model).state_dict().items()}
        save_file(state, str(tmp / MODEL_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        meta = {
            "format_version": FORMAT_VERSION,
            "step": int(step),
            "model": model_spec or model_spec_from_config(config_dict),
            "normalization": norm_constants,
            "config": config_dict,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        trainer = {
            "format_version": FORMAT_VERSION,
            "step": int(step),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "rng": rng_state,
            "extra": extra_state or {},
        }
        torch.save(trainer, tmp / TRAINER_FILE)
        replace_dir(tmp, final)  # re-saving a step (e.g. after a resume) swaps the folders
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        _prune(final.parent, keep)
    return final


def _complete_checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    found = [
        p
        for p in ckpt_root.iterdir()
        if p.is_dir()
        and p.name.startswith(_PREFIX)
        and p.name[len(_PREFIX) :].isdigit()
        and all((p / f).is_file() for f in (MODEL_FILE, CONFIG_FILE, TRAINER_FILE))
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def _prune(ckpt_root: Path, keep: int) -> None:
    for old in _complete_checkpoints(ckpt_root)[: -keep if keep > 0 else None]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or ``None``."""
    found = _complete_checkpoints(Path(run_dir) / "checkpoints")
    return found[-1] if found else None


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory as given, or a run directory's newest complete checkpoint.

    :class:`~vitnirs.errors.VitnirsError` naming the path when it is neither.
    """
    path = Path(path)
    if not path.exists():
        raise VitnirsError(f"{path}: no such checkpoint or run directory")
    if (path / MODEL_FILE).is_file() and (path / CONFIG_FILE).is_file():
        return path
    found = latest_checkpoint(path)
    if found is None:
        raise VitnirsError(
            f"{path}: neither a checkpoint directory (model.safetensors + config.json) "
            "nor a run directory with complete checkpoints under checkpoints/"
        )
    return found


# ----------------------------------------------------------------------------- load
def read_checkpoint_config(ckpt_dir: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint, checked (a clear error for a missing dir or bad version)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise VitnirsError(f"{ckpt_dir}: no such checkpoint directory")
    missing = [f for f in (MODEL_FILE, CONFIG_FILE) if not (ckpt_dir / f).is_file()]
    if missing:
        raise VitnirsError(f"{ckpt_dir}: not a vitnirs checkpoint (missing {', '.join(missing)})")
    try:
        meta = json.loads((ckpt_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise VitnirsError(f"{ckpt_dir / CONFIG_FILE}: unreadable ({exc})") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise VitnirsError(
            f"{ckpt_dir}: checkpoint format_version {version!r} is not supported "
            f"(this vitnirs reads format_version {FORMAT_VERSION})"
        )
    return meta


def _default_builder(preset: str, **kwargs: Any) -> torch.nn.Module:
    from vitnirs.model import build_mae

    return build_mae(preset, **kwargs)


def load_model(
    ckpt_dir: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    builder: Callable[..., torch.nn.Module] | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint and load its weights.

    Returns ``(model, meta)`` where ``meta`` is the checkpoint's ``config.json`` (keys
    ``config``, ``model``, ``normalization``, ``step``, ``format_version``). ``builder``
    replaces ``vitnirs.model.build_mae`` (tests use a stand-in model).
    """
    meta = read_checkpoint_config(ckpt_dir)
    spec = meta["model"]
    model = (builder or _default_builder)(spec["preset"], **spec.get("kwargs", {}))
    state = load_file(str(Path(ckpt_dir) / MODEL_FILE), device=str(map_location))
    # a portable checkpoint may store bfloat16 weights (vitnirs.workflows.export): compute in float32
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.to(map_location), meta


def load_trainer_state(
    ckpt_dir: str | Path,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Load ``trainer.pt`` (``weights_only=True``) into the optimizer and scaler; return it."""
    read_checkpoint_config(ckpt_dir)
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
    read_checkpoint_config(ckpt_dir)
    unwrap(model).load_state_dict(load_file(str(Path(ckpt_dir) / MODEL_FILE)), strict=True)
