"""What an objective term is: a part that declares the views it reads and returns its losses.

The views of a pretraining batch (the batch contract, :mod:`vitnirs.batching`):

- ``input``: the batch itself — augmented (nuisances on), masked;
- ``corrected``: the same spectra minus their cached AsLS baseline (same points, same mask);
- ``clean``: the same spectra before the nuisance augmentations (same points, same mask);
- ``view2``: a second nuisance view of the same spectra (its own augmentation and mask).

:class:`~vitnirs.train.objectives.objective.PretrainObjective` encodes every view some active
term reads, all in ONE encoder call (each on its visible tokens), and hands each term the
:class:`~vitnirs.model.encoder.EncoderOutput` of its views. A term may own modules (a head, or a
teacher network that it updates by EMA in :meth:`ObjectiveTerm.after_step`); they are saved
with the trainer state, never in the encoder's weights.

Adding a term: a file in this package with an :class:`ObjectiveTerm` subclass (its ``name``,
``views`` and ``forward``), and a ``losses.<name>_weight`` key in the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from vitnirs.model.encoder import EncoderOutput

__all__ = ["VIEWS", "ObjectiveTerm", "ema_update", "view_of"]

Tensor = torch.Tensor
VIEWS = ("input", "corrected", "clean", "view2")


def view_of(batch: Mapping[str, Any], view: str) -> Mapping[str, Any]:
    """One view of a batch as a batch of its own (keys of the batch contract)."""
    if view == "input":
        return batch
    if view == "corrected":
        return {**batch, "values": batch["corrected_values"], "level": batch["corrected_level"]}
    if view == "clean":
        return {**batch, "values": batch["clean_values"], "level": batch["clean_level"]}
    if view == "view2":
        return batch["view2"]
    raise ValueError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")


class ObjectiveTerm(nn.Module):
    """One weighted part of the pretraining objective.

    Subclasses set ``name`` (the logged key; config ``losses.<name>_weight`` unless
    ``weight_key`` says otherwise) and ``views``, and implement :meth:`forward`; they may
    override :meth:`from_config` and :meth:`after_step`.
    """

    name: ClassVar[str]
    views: ClassVar[tuple[str, ...]] = ("input",)
    weight_key: ClassVar[str | None] = None

    def __init__(self, weight: float):
        super().__init__()
        self.weight = float(weight)

    @classmethod
    def config_key(cls) -> str:
        """The ``losses.*`` key of this term's weight."""
        return cls.weight_key or f"{cls.name}_weight"

    @classmethod
    def from_config(cls, losses: Any, *, model: nn.Module, n_datasets: int | None) -> ObjectiveTerm:
        """The term as the config's ``losses`` section sets it (default: its weight alone)."""
        return cls(getattr(losses, cls.config_key()))

    def forward(
        self, model: nn.Module, encoded: Mapping[str, EncoderOutput], batch: Mapping[str, Any]
    ) -> dict[str, Tensor]:
        """``{name: loss, name_part: ...}``: scalars; only ``name`` is weighted, the rest is logged."""
        raise NotImplementedError

    def after_step(self, model: nn.Module) -> None:
        """Called after each optimiser step (an EMA teacher follows the student here)."""


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher ← momentum · teacher + (1 - momentum) · student``, parameter by parameter."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.lerp_(s.detach().to(t.dtype), 1.0 - momentum)
