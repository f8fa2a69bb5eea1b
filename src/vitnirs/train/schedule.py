"""Learning-rate schedule: linear warm-up then cosine decay, a pure function of the step.

Being a function of the step only (no scheduler object with hidden state), the learning rate
of a resumed run is the one an uninterrupted run would have used, by construction.
"""

from __future__ import annotations

import math


def lr_at(
    step: int,
    *,
    base_lr: float,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
) -> float:
    """Learning rate of optimiser step ``step`` (0-based).

    Linear warm-up from ``base_lr / warmup_steps`` to ``base_lr`` over the first
    ``warmup_steps`` steps, then a half cosine from ``base_lr`` down to
    ``min_lr_ratio * base_lr`` at ``total_steps``; constant at the minimum after it.

    Parameters
    ----------
    step:
        The step about to be taken, 0-based.
    base_lr:
        Peak learning rate (``training.lr``).
    warmup_steps:
        Steps of linear warm-up (``training.warmup_epochs`` x steps per epoch); 0 = none.
    total_steps:
        Steps of the whole run (``training.epochs`` x steps per epoch).
    min_lr_ratio:
        Final learning rate as a fraction of ``base_lr``.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    min_lr = base_lr * min_lr_ratio
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return base_lr
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def warmup_and_total_steps(*, epochs: int, warmup_epochs: int, steps_per_epoch: int) -> tuple[int, int]:
    """(warm-up steps, total steps) of a run measured in virtual epochs."""
    total = epochs * steps_per_epoch
    return min(warmup_epochs * steps_per_epoch, total), total
