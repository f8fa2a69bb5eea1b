"""Pretraining: one function, :func:`pretrain`, that reads top to bottom (as nanoGPT's train.py).

Determinism: the batch of a step is a pure function of ``(seed, rank, step)`` (sampling, crops,
augmentation, masks: ``vitnirs.batching``), the learning rate a pure function of the step, and
the torch RNG (dropout, metadata dropout) is re-seeded from ``(seed, rank, step)`` before each
step. So a run stopped after a checkpoint and resumed ends with weights identical to an
uninterrupted run on CPU. On a GPU, attention backward kernels are not bitwise deterministic:
a resumed run then follows the uninterrupted one only to floating-point tolerance.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vitnirs.batching.collate import BatchSettings
from vitnirs.batching.contract import PAD_WAVELENGTH
from vitnirs.checkpoint import latest_checkpoint, model_spec_from_config, read_meta, weights_sha256
from vitnirs.config import Config, save_config
from vitnirs.errors import VitnirsError
from vitnirs.train.checkpoint import (
    capture_rng_state,
    load_model_weights,
    load_trainer_state,
    restore_rng_state,
    save_checkpoint,
)
from vitnirs.train.distributed import all_reduce_mean, barrier, cleanup, setup_distributed, wrap_ddp
from vitnirs.train.metrics import MetricsLogger, Window
from vitnirs.train.objectives import PretrainObjective, build_terms
from vitnirs.train.plots import plot_loss_curve
from vitnirs.train.probe import Probe, to_device
from vitnirs.train.schedule import lr_at, warmup_and_total_steps
from vitnirs.train.step import TrainStep


def pretrain(
    cfg: Config,
    *,
    store: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Pretrain a :class:`SpectralMAE` on a prepared store; return a summary dict.

    Writes ``RUN_DIR/config.yaml``, ``metrics.jsonl``, ``checkpoints/step_NNNNNNN/``,
    ``loss_curve.png`` (and ``tensorboard/`` when asked). ``resume`` continues from the newest
    checkpoint of ``run_dir``; ``max_steps`` stops at that step (the schedule still spans
    ``training.epochs``, so a later ``resume`` continues the same run). Under ``torchrun``
    (``WORLD_SIZE > 1``) each rank draws its own batches and rank 0 writes.
    """
    t, run_dir = cfg.training, Path(run_dir)
    rank, world_size, _, device = setup_distributed(t.device)
    main = rank == 0
    try:
        # ---- data, model, optimiser, schedule
        data = build_data(cfg, store, rank=rank, world_size=world_size)
        ts = cfg.training_strategy
        per_epoch = data.steps_per_epoch(ts.steps_per_epoch, ts.steps_per_dataset_k)
        warmup, total = warmup_and_total_steps(
            epochs=t.epochs, warmup_epochs=t.warmup_epochs, steps_per_epoch=per_epoch
        )
        stop = total if max_steps is None else min(total, max_steps)
        torch.manual_seed(t.seed)  # the same initial weights on every rank
        model = build_model(cfg).to(device)
        objective = build_objective(cfg, model, n_datasets=len(data.names))
        # the objective holds the model and its terms' own modules (heads): one optimiser for all;
        # an EMA teacher has requires_grad False and is left out
        optimizer = torch.optim.AdamW(param_groups(objective, t.weight_decay), lr=t.lr)
        trainer = TrainStep(
            optimizer, model.parameters(), precision=t.precision, device=device, grad_clip=t.grad_clip,
            hint="Try a lower training.lr, training.precision=fp32 or a smaller training.grad_clip; "
            "--resume restarts from the last good checkpoint",
        )  # fmt: skip
        amp_dtype, scaler = trainer.amp_dtype, trainer.scaler

        # ---- where to start: fresh, or the newest checkpoint
        start = 0
        if resume:
            start = restore(run_dir, objective, optimizer, scaler, cfg)
        elif latest_checkpoint(run_dir) is not None:
            raise VitnirsError(f"{run_dir} already holds checkpoints: pass --resume, or choose another --out")
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.yaml")
        logger = MetricsLogger(run_dir, start, enabled=main, tensorboard=t.tensorboard)
        probe = Probe(data, t.probe_samples, amp_dtype, device) if main else None
        summary: dict[str, Any] = {"start_step": start, "total_steps": total, "steps_per_epoch": per_epoch}
        if probe is not None and start == 0:
            # held-out masked reconstruction MSE (older summaries: heldout_mae_*, still read)
            summary["heldout_recon_mse_start"] = probe.heldout_recon_mse(model)

        # ---- the loop
        ddp_objective = wrap_ddp(objective, device)
        loader = make_loader(data, start, stop, num_workers=t.num_workers, pin_memory=device.type == "cuda")
        batches = iter(loader)
        bar = tqdm(
            total=stop, initial=start, disable=not (progress and main), unit="step", dynamic_ncols=True
        )
        window = Window()
        logged: dict[str, float] = {}
        for step in range(start, stop):
            tic = time.perf_counter()
            batch = to_device(next(batches), device)
            waited = time.perf_counter() - tic
            torch.manual_seed(step_seed(t.seed, rank, step))  # dropout: a function of (seed, rank, step)
            lr = lr_at(
                step, base_lr=t.lr, warmup_steps=warmup, total_steps=total, min_lr_ratio=t.min_lr_ratio
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            with trainer.autocast():
                loss, terms = ddp_objective(batch)
            # One host transfer per step: every term, averaged over ranks (a NaN on any rank shows).
            logged = dict(
                zip(terms, all_reduce_mean(torch.stack(list(terms.values()))).tolist(), strict=True)
            )
            trainer.update(loss, where=f"step {step}", logged=logged)
            objective.after_step()  # EMA teachers follow the student

            done = step + 1
            window.add(logged, spectra=batch["values"].shape[0] * world_size, waited=waited)
            bar.update(1)
            bar.set_postfix(loss=f"{logged['total']:.4f}", spectra_s=f"{window.rate():.0f}", refresh=False)
            if probe is not None and t.probe_every and (done % t.probe_every == 0 or done == stop):
                window.extra.update(probe(model))
            if done % t.log_every == 0 or done == stop:
                logger.write({"step": done, "epoch": round(done / per_epoch, 4), "lr": lr, **window.flush()})
            if done % t.checkpoint_every == 0 or done == stop:
                if main:
                    summary["checkpoint"] = str(
                        save_checkpoint(
                            run_dir, done, model, optimizer, scaler, cfg.to_dict(), norm_constants(cfg, data),
                            capture_rng_state(), model_spec=model_spec(cfg), keep=t.keep_checkpoints,
                            extra_state=objective.term_state() or None,
                        )
                    )  # fmt: skip
                barrier()
        bar.close()

        # ---- the end: summary, loss curve
        if main:
            summary.update(steps=stop, final={k: round(v, 6) for k, v in logged.items()})
            summary.update(spectra_per_s=round(window.overall_rate(), 1))
            if probe is not None:
                summary["heldout_recon_mse_end"] = probe.heldout_recon_mse(model)
                summary["probe_auc"] = probe.last_auc
            logger.close()
            png = plot_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss_curve.png")
            summary["loss_curve"] = str(png) if png else None
            summary.setdefault("checkpoint", str(latest_checkpoint(run_dir) or ""))
            if summary["checkpoint"]:  # the identity of its weights (results files record the same hash)
                summary["weights_sha256"] = weights_sha256(summary["checkpoint"])
            summary["store"] = str(Path(store).resolve())  # the model card reads regions and counts there
        return summary
    finally:
        cleanup()


# ----------------------------------------------------------------------------- building blocks
def build_data(cfg: Config, store: str | Path, *, rank: int, world_size: int):
    """The run's :class:`PretrainData` (the batches of this rank)."""
    from vitnirs.batching.loader import PretrainData

    return PretrainData(
        store, settings=BatchSettings.from_config(cfg), regions=list(cfg.data.regions),
        exclude=list(cfg.data.exclude_datasets), rank=rank, world_size=world_size,
        use_targets=cfg.training_strategy.use_targets_in_pretraining,
    )  # fmt: skip


def make_loader(data, start: int, stop: int, *, num_workers: int, pin_memory: bool):
    """Batches of steps ``[start, stop)`` in step order (DataLoader workers, pinned memory)."""
    from vitnirs.batching.loader import make_loader as _make_loader

    return _make_loader(data, start, stop, num_workers=num_workers, pin_memory=pin_memory)


def build_objective(
    cfg: Config, model: torch.nn.Module, *, n_datasets: int | None = None
) -> PretrainObjective:
    """The pretraining objective of a config: every term of :mod:`vitnirs.train.objectives` whose
    ``losses.<name>_weight`` is positive, on ``model`` (on its device). The semi-supervised head
    needs ``n_datasets``."""
    terms = build_terms(cfg.losses, model=model, n_datasets=n_datasets)
    return PretrainObjective(model, terms).to(next(model.parameters()).device)


def model_spec(cfg: Config) -> dict[str, Any]:
    """Preset + keyword arguments that rebuild the model (stored in every checkpoint)."""
    return model_spec_from_config(cfg.to_dict())


def build_model(cfg: Config) -> torch.nn.Module:
    """The :class:`SpectralMAE` of a config (preset, with the config's sizes)."""
    from vitnirs.model import build_mae

    spec = model_spec(cfg)
    return build_mae(spec["preset"], **spec["kwargs"])


def norm_constants(cfg: Config, data: Any) -> dict[str, Any]:
    """What a checkpoint needs to prepare new spectra exactly as in pretraining."""
    return {
        "values": "per spectrum: (x - mean) / std over its real points, absorbance",
        "level": "(mean, log(std)) removed by that normalisation, fed to the encoder",
        "wavelengths": f"absolute, nm (cm-1 converted); padding at {PAD_WAVELENGTH}",
        "max_points": cfg.training.max_points,
        "regions": list(cfg.data.regions),
        "datasets": list(getattr(data, "names", [])),
        "meta_vocab": getattr(data, "meta_vocab", {}),
    }


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only; biases, norms and 1-D embeddings are not decayed (as nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def step_seed(seed: int, rank: int, step: int) -> int:
    """The torch seed of one step of one rank."""
    return int(np.random.SeedSequence([int(seed), int(rank), int(step), 7]).generate_state(1, np.uint64)[0])


def restore(run_dir: Path, objective: PretrainObjective, optimizer, scaler, cfg: Config) -> int:
    """Load the newest checkpoint of ``run_dir`` into the model (and semi-supervised head),
    optimizer, scaler and RNG; return its step."""
    model = objective.model
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise VitnirsError(f"--resume: no checkpoint in {run_dir / 'checkpoints'}")
    saved = read_meta(ckpt)
    if saved.get("model") != model_spec(cfg):
        raise VitnirsError(
            f"--resume: the model of {ckpt} ({saved.get('model')}) differs from the config's "
            f"({model_spec(cfg)}); resume with the run's own config ({run_dir / 'config.yaml'})"
        )
    load_model_weights(ckpt, model)
    state = load_trainer_state(ckpt, optimizer, scaler)
    if objective.term_state():
        if not state.get("extra"):
            raise VitnirsError(
                f"--resume: {ckpt} has no state for the objective's terms ({', '.join(objective.weights)}); "
                "resume with the run's own config"
            )
        objective.terms.load_state_dict(state["extra"])
    restore_rng_state(state["rng"])
    return int(state["step"])
