"""Masked autoencoder for spectra, after facebookresearch/mae ``models_mae.py``.

The batch is the dict of :mod:`vitnirs.batching`; its ``mask`` (True = masked) is built by
:func:`vitnirs.batching.masking.block_mask` in the data pipeline. Masked points are **dropped**
from the encoder input (gathered out with ``ids_keep``), not hidden behind a mask token; the
decoder predicts the normalised value at the masked wavelengths only.
"""

from __future__ import annotations

import torch
from torch import nn

from vitnirs.model.decoder import MAEDecoder

__all__ = [
    "READOUTS",
    "SHIPPABLE_MAX_DIM",
    "SpectralMAE",
    "keep_indices",
    "masked_indices",
    "masked_mean",
    "readout",
    "readout_dim",
    "select_first",
]

# how the (B, N, D) latents become one embedding per spectrum (see :func:`readout`)
READOUTS = ("mean", "mean+std", "mean+level", "mean+max", "groups4", "groups8", "flat")

SHIPPABLE_MAX_DIM = 512
"""The largest embedding TabPFN can take: the limit on :func:`readout_dim` for a readout we ship.
Wider readouts (``flat``, or ``groups8`` of a wide model) are for research only."""

Batch = dict[str, torch.Tensor]


def _groups(kind: str) -> int | None:
    """G of a ``"groupsG"`` kind, else None."""
    if kind.startswith("groups") and kind in READOUTS:
        return int(kind[len("groups") :])
    return None


def readout_dim(kind: str, n_latents: int, d_model: int) -> int:
    """The width of :func:`readout` ``kind`` of ``(B, n_latents, d_model)`` latents (arithmetic only).

    ``mean`` D; ``mean+std``, ``mean+max`` 2D; ``mean+level`` D + 2; ``groupsG`` G·D; ``flat`` N·D.
    ValueError for an unknown kind (no check that ``n_latents >= G``: :func:`readout` does that).
    """
    N, D = int(n_latents), int(d_model)
    groups = _groups(kind)
    if kind == "mean":
        return D
    if kind in ("mean+std", "mean+max"):
        return 2 * D
    if kind == "mean+level":
        return D + 2
    if groups is not None:
        return groups * D
    if kind == "flat":
        return N * D
    raise ValueError(f"readout must be one of {READOUTS}; got {kind!r}")


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the valid rows: x (B, T, D), valid bool (B, T) -> (B, D) (0 for a row with none)."""
    w = valid.to(x.dtype)[..., None]
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def _masked_readout(
    x: torch.Tensor, kind: str, level: torch.Tensor | None, valid: torch.Tensor
) -> torch.Tensor:
    """:func:`readout` over the valid tokens only (patch encoder): x (B, T, D), valid (B, T)."""
    mean = masked_mean(x, valid)  # [B, D]
    if kind == "mean+std":
        var = masked_mean((x - mean[:, None]) ** 2, valid)
        return torch.cat([mean, var.clamp_min(0).sqrt()], dim=-1)
    if kind == "mean+max":
        return torch.cat([mean, x.masked_fill(~valid[..., None], float("-inf")).amax(1).clamp_min(-1e4)], -1)
    groups = _groups(kind)
    if groups is not None:  # G contiguous groups of each row's valid tokens, as tensor_split sizes
        n = valid.sum(1, keepdim=True)  # [B, 1]
        rank = valid.long().cumsum(1) - 1  # [B, T] position among the valid tokens
        group = torch.div(rank * groups, n.clamp_min(1), rounding_mode="floor")  # [B, T]
        onehot = (group[..., None] == torch.arange(groups, device=x.device)) & valid[..., None]  # [B, T, G]
        w = onehot.to(x.dtype)
        means = torch.einsum("btg,btd->bgd", w, x) / w.sum(1)[..., None].clamp_min(1.0)  # [B, G, D]
        return means.reshape(x.shape[0], -1)
    raise ValueError(f"readout {kind!r} is not defined over a variable number of patch tokens")


def readout(
    latents: torch.Tensor,
    kind: str = "mean",
    level: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Latents (B, N, D) → one embedding per spectrum, (B, :func:`readout_dim`).

    With ``valid`` (bool (B, N): the output tokens of the patch encoder, padded) every statistic
    is over the valid rows only (``groupsG``: G contiguous groups of them; ``flat`` is refused).

    - ``"mean"`` (B, D): the mean over the latents, the encoder's own pooling.
    - ``"mean+std"`` (B, 2D): that, then the (population) std over the latents, how they spread.
    - ``"mean+level"`` (B, D + 2): the mean, then ``level`` (B, 2), each spectrum's mean and log
      std, what the per-spectrum normalisation removed (needs ``level``).
    - ``"mean+max"`` (B, 2D): the mean, then the max over the latents.
    - ``"groups4"``, ``"groups8"`` (B, G·D): the N latents split into G contiguous groups
      (:func:`torch.tensor_split` sizes: the first ``N % G`` groups have one more), each group's
      mean, concatenated group by group (columns ``g·D … g·D + D - 1`` are group g). Needs N >= G.
    - ``"flat"`` (B, N·D): the latents themselves, latent by latent (a research readout: large,
      above :data:`SHIPPABLE_MAX_DIM` for any real model).

    ValueError for an unknown kind, ``mean+level`` without ``level``, or fewer latents than groups.
    """
    if kind not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}; got {kind!r}")
    if valid is not None and kind not in ("mean", "mean+level"):
        return _masked_readout(latents, kind, level, valid.bool())
    if valid is not None:
        latents = masked_mean(latents, valid.bool())[:, None]  # [B, 1, D]: its mean is the masked mean
    if kind == "mean":
        return latents.mean(dim=1)
    if kind == "mean+std":
        return torch.cat([latents.mean(dim=1), latents.std(dim=1, unbiased=False)], dim=-1)
    if kind == "mean+level":
        if level is None:
            raise ValueError("readout 'mean+level' needs the level (B, 2) the normalisation removed")
        if level.shape != (latents.shape[0], 2):
            raise ValueError(f"level must be (B, 2) = ({latents.shape[0]}, 2); got {tuple(level.shape)}")
        return torch.cat([latents.mean(dim=1), level.to(latents.dtype)], dim=-1)
    if kind == "mean+max":
        return torch.cat([latents.mean(dim=1), latents.amax(dim=1)], dim=-1)
    groups = _groups(kind)
    if groups is not None:
        n = latents.shape[1]
        if n < groups:
            raise ValueError(f"readout {kind!r} needs at least {groups} latents; the model has {n}")
        parts = torch.tensor_split(latents, groups, dim=1)  # G x [B, N_g, D]
        return torch.cat([part.mean(dim=1) for part in parts], dim=-1)  # [B, G*D]
    if kind == "flat":
        return latents.reshape(latents.shape[0], -1)  # [B, N*D], latent by latent
    raise ValueError(f"readout must be one of {READOUTS}; got {kind!r}")


# ----------------------------------------------------------------------------- index helpers
def select_first(flag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the True entries of ``flag`` (B, L), first in original order, padded to the row max."""
    ids = torch.sort((~flag).to(torch.uint8), dim=1, stable=True).indices  # True entries first
    n = int(flag.sum(dim=1).max()) if flag.numel() else 0
    ids = ids[:, :n]
    return ids, torch.gather(flag, 1, ids)


def keep_indices(mask: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the points the encoder sees (real and not masked).

    Args:
        mask: bool (B, L), True = masked.  valid: bool (B, L), True = real point.

    Returns:
        ids_keep: int64 (B, K), K = most kept points in a row; kept points first, in order.
        keep_valid: bool (B, K), False where a shorter row was padded (its ids point at
        masked/padding positions and must be ignored).
    """
    return select_first(valid.bool() & ~mask.bool())


def masked_indices(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the masked points (B, M) and their validity (B, M), as :func:`keep_indices`."""
    return select_first(mask.bool())


class SpectralMAE(nn.Module):
    """Encoder + wavelength-query decoder, trained by masked reconstruction.

    The encoder is a :class:`SpectralPerceiver` (point tokens: latents (B, N, D), all valid) or a
    :class:`~vitnirs.model.patch_encoder.PatchEncoder` (patch tokens: output tokens (B, T, D)
    with their validity). ``latent_valid`` below is None for the first and bool (B, T) for the
    second; with patch tokens the decoder predicts each masked patch's P·C values.
    """

    def __init__(self, encoder: nn.Module, decoder: MAEDecoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    @property
    def tokens(self) -> str:
        """``"point"`` or ``"patch"`` (``model.tokens``)."""
        return getattr(self.encoder, "tokens", "point")

    def _run(self, *args: torch.Tensor | None, **kw: torch.Tensor | None):
        """The encoder's output as (latents, embedding, latent_valid or None)."""
        out = self.encoder(*args, **kw)
        return out if len(out) == 3 else (*out, None)

    # -- encoder ------------------------------------------------------------------------------
    def encode(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        level: torch.Tensor,
        meta: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All real points, no masking, with autograd: -> latents (B, N, D), embedding (B, D)."""
        return self._run(values, wavelengths, valid, level, meta)[:2]

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
        :func:`readout` ``kind`` of the latents (B, N, D): (B, :func:`readout_dim`), e.g. (B, D)
        for ``"mean"`` (the encoder's own embedding, bit for bit).
        """
        was_training = self.training
        self.eval()
        try:
            latents, embedding, latent_valid = self._run(values, wavelengths, valid, level, meta)
            return embedding if kind == "mean" else readout(latents, kind, level, latent_valid)
        finally:
            self.train(was_training)

    def forward_encoder(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encode the visible points (patches) only: -> latents (B, N, D), embedding (B, D), latent_valid."""
        if self.tokens == "patch":  # the encoder drops the mostly-masked patches itself
            return self._run(
                batch["values"], batch["wavelengths"], batch["valid"], batch["level"], batch.get("meta"),
                point_mask=batch["mask"],
            )  # fmt: skip
        ids_keep, keep_valid = keep_indices(batch["mask"], batch["valid"])  # [B, K], [B, K]
        values = torch.gather(batch["values"], 1, ids_keep)  # [B, K]
        wavelengths = torch.gather(batch["wavelengths"], 1, ids_keep)  # [B, K]
        return self._run(values, wavelengths, keep_valid, batch["level"], batch.get("meta"))

    # -- decoder ------------------------------------------------------------------------------
    def forward_decoder(
        self, latents: torch.Tensor, batch: Batch, latent_valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predict at the masked points: -> pred (B, M), ids_masked (B, M), masked_valid (B, M).

        The points are ``batch["decode"]`` when present (a subsample of the mask, see
        :func:`~vitnirs.batching.masking.decode_subset`), else every masked point. Point tokens
        only: patch tokens use :meth:`reconstruction_loss`.
        """
        ids_masked, masked_valid = masked_indices(batch.get("decode", batch["mask"]))  # [B, M], [B, M]
        wavelengths = torch.gather(batch["wavelengths"], 1, ids_masked)  # [B, M]
        return self.decoder(latents, wavelengths, masked_valid, latent_valid), ids_masked, masked_valid

    def reconstruction_loss(
        self, latents: torch.Tensor, batch: Batch, latent_valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The masked-reconstruction loss from the encoder's output on ``batch`` (its first rows).

        Point tokens: the normalised value at each masked point. Patch tokens: every channel of
        every lattice point of each masked patch (SimMIM / MAE on the lattice), (B, M, P·C).
        """
        if self.tokens == "patch":
            t = self.encoder.targets(batch)  # content [B, M, P*C], valid [B, M], centres [B, M]
            pred = self.decoder(latents, t["centres"], t["valid"], latent_valid)  # [B, M, P*C]
            weight = t["valid"].float()[..., None].expand_as(pred)
            sq = (pred.float() - t["content"].float()) ** 2 * weight
            return sq.sum() / weight.sum().clamp_min(1.0)
        pred, ids_masked, masked_valid = self.forward_decoder(latents, batch, latent_valid)
        target = torch.gather(batch["values"], 1, ids_masked)  # [B, M]
        return self.forward_loss(target, pred, masked_valid)

    @staticmethod
    def forward_loss(target: torch.Tensor, pred: torch.Tensor, masked_valid: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the real masked points only (padding slots of M are ignored).

        target, pred: (B, M); masked_valid: bool (B, M). Normalised by the number of real masked
        points in the whole batch (0 if there are none). Computed in float32 under autocast.
        """
        weight = masked_valid.float()
        sq = (pred.float() - target.float()) ** 2 * weight
        return sq.sum() / weight.sum().clamp_min(1.0)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> loss (scalar), pred (B, L) (0 where not masked; patch tokens: zeros), mask (B, L) bool, as in MAE."""
        latents, _, latent_valid = self.forward_encoder(batch)
        if self.tokens == "patch":
            loss = self.reconstruction_loss(latents, batch, latent_valid)
            return loss, torch.zeros_like(batch["values"]), batch["mask"]
        pred, ids_masked, masked_valid = self.forward_decoder(latents, batch)
        target = torch.gather(batch["values"], 1, ids_masked)  # [B, M]
        loss = self.forward_loss(target, pred, masked_valid)
        # ids_masked is a slice of a per-row permutation: no index repeats, padding slots write 0
        full = torch.zeros_like(batch["values"], dtype=pred.dtype).scatter(1, ids_masked, pred)
        return loss, full, batch["mask"]
