"""Masked autoencoder for spectra, after facebookresearch/mae ``models_mae.py``.

The batch is the dict of :mod:`vitnirs.batching`; its ``mask`` (B, L) (True = masked) marks
native points, built by :func:`vitnirs.batching.masking.block_mask` in the data pipeline. The
tokenizer turns it into a token mask (a patch is masked when more than half of its lattice
points fall on masked points). Mask convention, once: **True is masked (removed), False is
kept**. Masked tokens are *dropped* from the encoder input (gathered out), not hidden behind a
mask token; the decoder predicts the content of the masked tokens only — every channel of
every lattice point of a masked patch (SimMIM / MAE on the lattice), ``P·C`` values.

The four methods of MAE: ``forward_encoder`` (visible tokens → output tokens),
``forward_decoder`` (output tokens → predicted content of the masked tokens), ``forward_loss``
(MSE over the real masked tokens) and ``forward`` → ``(loss, pred, mask)``.
"""

from __future__ import annotations

import torch
from torch import nn

from vitnirs.model.decoder import MAEDecoder
from vitnirs.model.encoder import EncoderOutput, SpectralEncoder
from vitnirs.model.readout import readout
from vitnirs.model.tokenizer import select_first, take_tokens

__all__ = ["SpectralMAE"]

Batch = dict[str, torch.Tensor]


class SpectralMAE(nn.Module):
    """Encoder (tokenizer × trunk) + wavelength-query decoder, trained by masked prediction."""

    def __init__(self, encoder: SpectralEncoder, decoder: MAEDecoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    # -- inference ----------------------------------------------------------------------------
    def encode(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        level: torch.Tensor,
        meta: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Every valid token, no masking, with autograd (fine-tuning): inputs as the encoder's."""
        return self.encoder(values, wavelengths, valid, level, meta)

    @torch.no_grad()
    def embed(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        level: torch.Tensor,
        meta: torch.Tensor | None = None,
        kind: str = "mean",
    ) -> torch.Tensor:
        """Embedding for downstream use: eval mode (restored afterwards), no grad.

        Inputs as :meth:`encode` (``level`` (B, 2) is also what ``"mean+level"`` appends). Returns
        :func:`~vitnirs.model.readout.readout` ``kind`` of the output tokens: (B, readout_dim),
        e.g. (B, D) for ``"mean"`` (the encoder's own embedding).
        """
        was_training = self.training
        self.eval()
        try:
            out = self.encoder(values, wavelengths, valid, level, meta)
            return out.embedding if kind == "mean" else readout(out.tokens, kind, level, out.valid)
        finally:
            self.train(was_training)

    # -- pretraining --------------------------------------------------------------------------
    def forward_encoder(self, batch: Batch) -> EncoderOutput:
        """Encode the visible tokens of ``batch`` (its ``mask`` drops the masked ones)."""
        return self.encoder(
            batch["values"], batch["wavelengths"], batch["valid"], batch["level"], batch.get("meta"),
            point_mask=batch["mask"],
        )  # fmt: skip

    def forward_decoder(self, out: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predict the masked tokens' content from the output tokens.

        Returns ``pred`` (B, M, content_dim), ``ids_masked`` long (B, M) (their positions among
        ``out.input``'s T tokens, in order) and ``masked_valid`` bool (B, M) (False: padding of M).
        """
        ids, masked_valid = select_first(out.input.masked)  # [B, M], [B, M]
        centres = out.input.centres[ids]  # [B, M] nm
        return self.decoder(out.tokens, centres, masked_valid, out.valid), ids, masked_valid

    @staticmethod
    def forward_loss(target: torch.Tensor, pred: torch.Tensor, masked_valid: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the real masked tokens' values (padding slots of M ignored).

        target, pred: (B, M, C); masked_valid: bool (B, M). Normalised by the number of real
        masked values in the whole batch (0 if there are none); float32 under autocast.
        """
        weight = masked_valid.float()[..., None].expand_as(pred)
        sq = (pred.float() - target.float()) ** 2 * weight
        return sq.sum() / weight.sum().clamp_min(1.0)

    def reconstruction_loss(self, out: EncoderOutput, target: torch.Tensor | None = None) -> torch.Tensor:
        """Masked prediction loss of an encoder output.

        ``target`` (B, T, content_dim): what each token should be predicted as (default: its own
        content, ``out.input.content``; a clean-target objective passes the clean view's).
        """
        pred, ids, masked_valid = self.forward_decoder(out)
        wanted = take_tokens(out.input.content if target is None else target, ids)  # [B, M, C]
        return self.forward_loss(wanted, pred, masked_valid)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> loss (scalar), pred (B, T, content_dim), mask bool (B, T), as in MAE.

        Per token, not per point: ``pred`` holds the predicted content of each masked token
        (0 elsewhere) and ``mask`` marks the masked tokens (True = masked); T is the number of
        lattice patches some row of the batch covers.
        """
        out = self.forward_encoder(batch)
        pred, ids, masked_valid = self.forward_decoder(out)
        loss = self.forward_loss(take_tokens(out.input.content, ids), pred, masked_valid)
        full = torch.zeros_like(out.input.content, dtype=pred.dtype)  # [B, T, C]
        # ids is a slice of a per-row permutation: no index repeats; padding slots write 0
        full = full.scatter(1, ids[..., None].expand_as(pred), pred * masked_valid[..., None])
        return loss, full, out.input.masked
