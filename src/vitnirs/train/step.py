"""One optimisation step, shared by pretraining and fine-tuning: autocast, the fp16 GradScaler,
gradient clipping and the stop on a non-finite loss live here and nowhere else.

>>> step = TrainStep(optimizer, params, precision="auto", device=device, grad_clip=1.0)  # doctest: +SKIP
>>> with step.autocast():                                                               # doctest: +SKIP
...     loss = objective(batch)
>>> step.update(loss, where="step 12", logged={"total": float(loss)})                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager

import torch

from vitnirs.errors import VitnirsError

__all__ = ["TrainStep", "autocast_dtype", "check_finite"]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``training.precision`` (``None`` = fp32, autocast off)."""
    if precision == "auto":
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16_ok else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def check_finite(logged: Mapping[str, float], where: str, hint: str) -> None:
    """A :class:`VitnirsError` naming ``where`` and every term when one of ``logged`` is not finite."""
    if not all(math.isfinite(v) for v in logged.values()):
        shown = ", ".join(f"{k}={v:.4g}" for k, v in logged.items())
        raise VitnirsError(f"non-finite loss at {where} ({shown}); stopped without saving. {hint}")


class TrainStep:
    """Backward, unscale, clip and step for one optimiser.

    Parameters
    ----------
    optimizer:
        The optimiser of every trained parameter.
    params:
        The parameters whose gradient norm is clipped (``grad_clip`` > 0).
    precision:
        ``auto`` (bf16 on a GPU that has it, else fp32), ``fp32``, ``bf16`` or ``fp16``
        (fp16 alone uses the GradScaler).
    device:
        Where the model runs.
    grad_clip:
        Gradient-norm threshold; 0 turns clipping off.
    hint:
        What the non-finite error tells the user to try.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: Iterable[torch.nn.Parameter],
        *,
        precision: str,
        device: torch.device,
        grad_clip: float,
        hint: str = "Try a lower learning rate or precision fp32.",
    ):
        self.optimizer, self.params = optimizer, list(params)
        self.device, self.grad_clip, self.hint = device, float(grad_clip), hint
        self.amp_dtype = autocast_dtype(precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)

    def autocast(self) -> AbstractContextManager:
        """The forward pass's autocast context (a no-op in fp32)."""
        dtype = self.amp_dtype or torch.float32
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.amp_dtype is not None)

    def update(self, loss: torch.Tensor, *, where: str, logged: Mapping[str, float] | None = None) -> None:
        """Stop on a non-finite loss (``logged``: the terms to show, default the loss), else
        backward, clip and step; gradients are zeroed after."""
        check_finite(logged if logged is not None else {"loss": float(loss.detach())}, where, self.hint)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
