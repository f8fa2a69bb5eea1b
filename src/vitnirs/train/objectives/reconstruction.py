"""Masked prediction: the decoder predicts the content of the masked tokens of the input view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vitnirs.model.encoder import EncoderOutput
from vitnirs.train.objectives.base import ObjectiveTerm

__all__ = ["Reconstruction"]


class Reconstruction(ObjectiveTerm):
    """``mae``: MSE of every channel of every masked patch (:meth:`SpectralMAE.reconstruction_loss`)."""

    name = "mae"
    views = ("input",)

    def forward(
        self, model: nn.Module, encoded: Mapping[str, EncoderOutput], batch: Mapping[str, Any]
    ) -> dict[str, torch.Tensor]:
        return {self.name: model.reconstruction_loss(encoded["input"])}
