"""Tokenizers: spectra on their native grids → tokens at absolute wavelengths.

The interface every tokenizer keeps (:class:`Tokenizer`): called on a padded batch of the
batch contract (``values``, ``wavelengths`` nm, ``valid`` (B, L), optional MAE ``point_mask``
(B, L), True = masked), it returns :class:`Tokens` — the token vectors, their validity, which
of them are masked, their centre wavelengths and their raw content (what masked prediction
reconstructs). A tokenizer computes its tokens once per batch: the encoder reads the vectors,
the reconstruction term the content of the same call.

:class:`PatchTokenizer` is the one we ship: patches of one absolute log-λ lattice
(:mod:`vitnirs.model.lattice`). Token = ``Linear(P·C → D)`` of the patch's values (point-major:
P points × C channels) + the Fourier code (:class:`~vitnirs.model.wavelength.WavelengthEncoding`)
of the patch's centre. To add a tokenizer: a class here (or in its own file) with the same
call and ``content_dim``, and a name in :data:`TOKENIZERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.functional import conv1d

from vitnirs.model.lattice import CHANNELS, detrend, interpolate_rows, lattice_nm, sg_points, standardise
from vitnirs.model.wavelength import WavelengthEncoding

__all__ = ["TOKENIZERS", "PatchTokenizer", "Tokenizer", "Tokens", "select_first", "take_tokens"]


@dataclass
class Tokens:
    """A tokenizer's output for a padded batch (T tokens per row, the same T for every row).

    Attributes:
        vectors: (B, T, D) the token vectors the trunk reads.
        valid: bool (B, T), True = a real token (the spectrum covers all of it).
        masked: bool (B, T), True = hidden from the encoder for masked prediction (a subset of
            ``valid``; all False without a point mask).
        centres: (T,) nm, each token's centre wavelength (the same for every row).
        content: (B, T, content_dim) the token's raw values (the reconstruction target).
    """

    vectors: torch.Tensor
    valid: torch.Tensor
    masked: torch.Tensor
    centres: torch.Tensor
    content: torch.Tensor

    def rows(self, index: slice) -> Tokens:
        """The same tokens for a slice of the batch's rows (``centres`` is shared)."""
        return Tokens(
            self.vectors[index], self.valid[index], self.masked[index], self.centres, self.content[index]
        )


class Tokenizer(Protocol):
    """What the encoder needs of a tokenizer."""

    content_dim: int  # values per token in ``Tokens.content``: what the decoder predicts

    def __call__(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        point_mask: torch.Tensor | None = None,
    ) -> Tokens: ...

    def readable_span(self, wavelengths_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grids ``(n, L)`` nm → valid tokens per row, and the nm span they cover (the coverage rule)."""
        ...


def select_first(flag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the True entries of ``flag`` (B, T), first and in order, padded to the row max.

    Returns ``ids`` long (B, K) and ``ids_valid`` bool (B, K) (False where a shorter row was
    padded: those ids point at False entries and must be ignored). MAE's argsort trick, made
    stable and padding-aware.
    """
    ids = torch.sort((~flag).to(torch.uint8), dim=1, stable=True).indices  # True entries first
    n = int(flag.sum(dim=1).max()) if flag.numel() else 0
    ids = ids[:, :n]
    return ids, torch.gather(flag, 1, ids)


def take_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (B, T, C) at ``ids`` long (B, K) -> (B, K, C)."""
    return torch.gather(x, 1, ids[..., None].expand(-1, -1, x.shape[-1]))


class PatchTokenizer(nn.Module):
    """Spectra on native grids → patch tokens on the absolute lattice.

    Args:
        d_model: token width D.
        patch_size: lattice points per patch P.
        channels: names from :data:`~vitnirs.model.lattice.CHANNELS`, C of them.
        lattice_step: δ of the log lattice.
        sg_window_nm: SG window at 1,450 nm.
        n_frequencies: Fourier frequencies of the patch-centre code.
        max_gap: largest native spacing bridged, relative to λ.
    """

    def __init__(
        self,
        *,
        d_model: int,
        patch_size: int = 8,
        channels: tuple[str, ...] | list[str] = ("absorbance", "sg1"),
        lattice_step: float = 0.0016,
        sg_window_nm: float = 20.0,
        n_frequencies: int = 32,
        max_gap: float = 0.03,
    ):
        super().__init__()
        unknown = sorted(set(channels) - set(CHANNELS))
        if unknown or not channels:
            raise ValueError(f"model.channels must be a non-empty subset of {CHANNELS}; got {list(channels)}")
        from scipy.signal import savgol_coeffs

        self.patch_size, self.channels, self.max_gap = int(patch_size), tuple(channels), float(max_gap)
        self.content_dim = self.patch_size * len(self.channels)
        grid = lattice_nm(lattice_step, self.patch_size)
        centres = np.exp(np.log(grid).reshape(-1, self.patch_size).mean(1))  # geometric centre [Np]
        self.sg_window = sg_points(sg_window_nm, lattice_step)
        kernels = [savgol_coeffs(self.sg_window, 2, deriv=d, use="dot") for d in (1, 2)]
        # not persistent: rebuilt from the constructor arguments, so checkpoints hold only weights
        self.register_buffer("lattice", torch.tensor(grid, dtype=torch.float32), persistent=False)  # [K]
        self.register_buffer("centres", torch.tensor(centres, dtype=torch.float32), persistent=False)
        self.register_buffer(
            "sg", torch.tensor(np.stack(kernels), dtype=torch.float32)[:, None], persistent=False
        )
        self.proj = nn.Linear(self.content_dim, d_model)
        self.position = WavelengthEncoding(d_model, n_frequencies=n_frequencies)

    @property
    def n_patches(self) -> int:
        """Patches of the whole lattice."""
        return int(self.centres.shape[0])

    @torch.no_grad()
    def readable_span(self, wavelengths_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What this tokenizer reads of grids ``(n, L)`` in nm (finite, any order) →
        ``(valid_patches (n,) int, lo_nm (n,), hi_nm (n,))``: the number of valid patches of each
        row and the lattice span they cover (NaN where none is valid). The validity rule is the
        one :meth:`patches` applies."""
        grids = np.sort(np.atleast_2d(np.asarray(wavelengths_nm, dtype=np.float64)), axis=1)
        w = torch.as_tensor(grids, dtype=torch.float32, device=self.lattice.device)  # [n, L]
        _, covered = interpolate_rows(torch.zeros_like(w), w, torch.ones_like(w, dtype=torch.bool),
                                      self.lattice, self.max_gap)  # fmt: skip
        pvalid = covered.reshape(len(w), -1, self.patch_size).all(-1).cpu().numpy()  # [n, Np]
        edges = self.lattice.cpu().numpy().reshape(-1, self.patch_size)[:, [0, -1]]  # [Np, 2]
        count = pvalid.sum(1)
        lo, hi = np.full(len(w), np.nan), np.full(len(w), np.nan)
        some = count > 0
        lo[some] = edges[pvalid[some].argmax(1), 0]
        hi[some] = edges[pvalid.shape[1] - 1 - pvalid[some][:, ::-1].argmax(1), 1]
        return count, lo, hi

    def channel_values(
        self, values: torch.Tensor, wavelengths: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> channels (B, K, C) on the whole lattice (0 where not covered), covered bool (B, K)."""
        x, covered = interpolate_rows(values, wavelengths, valid, self.lattice, self.max_gap)  # [B, K]
        out = {}
        if "absorbance" in self.channels:
            out["absorbance"] = standardise(x, covered)
        if "snv_dt" in self.channels:
            out["snv_dt"] = standardise(detrend(x, covered), covered)
        derivs = [c for c in ("sg1", "sg2") if c in self.channels]
        if derivs:
            K, half = x.shape[1], self.sg_window // 2
            pos = torch.arange(K, device=x.device).expand_as(x)
            big = torch.full_like(x, K, dtype=torch.long)
            first = torch.where(covered, pos, big).amin(1, keepdim=True).clamp_max(K - 1)
            last = torch.where(covered, pos, -1).amax(1, keepdim=True).clamp_min(0)
            ext = x.gather(1, torch.minimum(torch.maximum(pos, first), last.clamp_min(first)))  # ends held
            ext = torch.nn.functional.pad(ext[:, None], (half, half), mode="replicate")  # [B, 1, K + 2h]
            filtered = conv1d(ext, self.sg)  # [B, 2, K]: d1, d2
            for name in derivs:
                out[name] = standardise(filtered[:, 0 if name == "sg1" else 1], covered)
        return torch.stack([out[c] for c in self.channels], dim=-1), covered  # [B, K, C]

    def patches(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        point_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The batch's patches, cropped to the patches some row covers (no token vectors).

        Returns ``content (B, T, P·C)``, ``valid (B, T)`` (every point covered), ``masked (B, T)``
        (more than half its lattice points fall on masked native points; all False without
        ``point_mask (B, L)``) and ``centres (T,)`` nm.
        """
        B, P = values.shape[0], self.patch_size
        chans, covered = self.channel_values(values, wavelengths, valid)  # [B, K, C], [B, K]
        content = chans.reshape(B, -1, self.content_dim)  # [B, Np, P*C], point-major
        pvalid = covered.reshape(B, -1, P).all(-1)  # [B, Np]
        if point_mask is not None and bool(point_mask.any()):
            m, _ = interpolate_rows(point_mask.float(), wavelengths, valid, self.lattice, float("inf"))
            masked = m.reshape(B, -1, P).mean(-1) > 0.5
        else:
            masked = torch.zeros_like(pvalid)
        idx = torch.nonzero(pvalid.any(0)).flatten()
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 1)
        return {
            "content": content[:, lo:hi],
            "valid": pvalid[:, lo:hi],
            "masked": masked[:, lo:hi] & pvalid[:, lo:hi],
            "centres": self.centres[lo:hi],
        }

    def embed(self, content: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """content (B, T, P·C), centres (T,) nm -> token vectors (B, T, D)."""
        code = self.position.mlp(self.position.features(centres))  # [T, D]
        return self.proj(content) + code

    def forward(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        point_mask: torch.Tensor | None = None,
    ) -> Tokens:
        """A padded batch (B, L) → :class:`Tokens` of its patches (T = the patches some row covers)."""
        p = self.patches(values, wavelengths, valid, point_mask)
        return Tokens(vectors=self.embed(p["content"], p["centres"]), **p)


TOKENIZERS: dict[str, type[nn.Module]] = {"patch": PatchTokenizer}
"""Tokenizers by ``model.tokenizer`` name."""
