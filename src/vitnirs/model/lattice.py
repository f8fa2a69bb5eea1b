"""Patch tokens on one absolute wavelength lattice (``model.tokens: patch``).

The lattice is fixed for every instrument: ``λ_k = 350 nm · exp(k δ)`` up to 25 µm, with
``δ = model.lattice_step`` (default 0.0016: 1.6 nm at 1,000 nm, 2.3 nm at 1,450 nm, 4.0 nm at
2,500 nm, 16 nm at 10 µm; 2,666 points, truncated to whole patches). A log lattice is uniform in
wavenumber too, so MIR spectra in cm⁻¹ get the same relative resolution. Patch ``j`` is lattice
points ``[jP, (j + 1)P)``: one band falls in the same patch, with the same position code, on
every instrument.

Each spectrum (the normalised values of the batch contract, on its native grid) is linearly
interpolated at the lattice points its own range covers, never extrapolated; a lattice point
is *covered* when it lies inside the spectrum's range and its two native neighbours are at most
``max_gap`` (relative, 3 % of λ) apart, so a detector gap is not bridged. A patch is valid only
when all its P points are covered. Channels (``model.channels``), C values per lattice point:

- ``absorbance``: the interpolated values, standardised over the covered points. The batch
  contract already z-scores each spectrum over its native points, so this channel *is* the SNV
  spectrum (SNV is not a separate channel: it would be the same numbers);
- ``sg1`` / ``sg2``: Savitzky–Golay first / second derivative (polynomial order 2) along the
  lattice, i.e. with respect to log λ, each standardised over the covered points. Outside the
  covered span the spectrum is extended with its end values before filtering, which is
  ``scipy.signal.savgol_filter(..., mode="nearest")`` (a test checks it). Inside a detector gap
  the filter reads the straight line across it (those points are not covered, so no patch
  there is valid, but the derivative of covered points within half a window of the gap edge
  sees the line). The window is
  ``sg_window_nm`` at 1,450 nm in lattice points (odd, at least 5), the same fraction of λ everywhere.

Token = ``Linear(P·C → D)`` of the patch's values (point-major: P points × C channels) + the
Fourier code (:class:`~vitnirs.model.wavelength.WavelengthEncoding`) of the patch's centre.
Linear interpolation reads at most the two native points around each lattice point: a native
grid much finer than the lattice (0.5 nm) is decimated, not averaged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.functional import conv1d

from vitnirs.model.wavelength import WavelengthEncoding

__all__ = ["CHANNELS", "LATTICE_MAX_NM", "LATTICE_MIN_NM", "PatchTokenizer", "lattice_nm", "sg_points"]

LATTICE_MIN_NM, LATTICE_MAX_NM = 350.0, 25000.0
CHANNELS = ("absorbance", "sg1", "sg2")
_EPS = 1e-6


def lattice_nm(step: float, patch_size: int) -> np.ndarray:
    """The lattice (K,) in nm, K a multiple of ``patch_size``: ``350 · exp(k · step)`` ≤ 25 µm."""
    n = int(math.floor(math.log(LATTICE_MAX_NM / LATTICE_MIN_NM) / step)) + 1
    n -= n % patch_size
    return LATTICE_MIN_NM * np.exp(step * np.arange(n))


def sg_points(window_nm: float, step: float) -> int:
    """The SG window in lattice points: ``window_nm`` at 1,450 nm, odd, at least 5."""
    points = max(5, int(round(window_nm / (1450.0 * step))))
    return points + 1 - points % 2


def interpolate_rows(
    values: torch.Tensor, wavelengths: torch.Tensor, valid: torch.Tensor, query: torch.Tensor, max_gap: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row of ``values (B, L)`` at ``query (K,)`` nm: -> (interpolated (B, K), covered bool (B, K)).

    Rows are sorted by wavelength with padding last (the batch contract). Outside a row's range the
    value is its end value (clamped, never used as data: ``covered`` is False there).
    """
    B, L = values.shape
    n = valid.sum(1, keepdim=True)  # [B, 1]
    axis = wavelengths.float().masked_fill(~valid, float("inf")).contiguous()
    q = query.float().expand(B, -1).contiguous()  # [B, K]
    hi = torch.searchsorted(axis, q, right=True)
    hi = torch.minimum(hi.clamp_min(1), (n - 1).clamp_min(1)).clamp_max(L - 1)
    lo = (hi - 1).clamp_min(0)
    x0, x1 = axis.gather(1, lo), axis.gather(1, hi)
    y0, y1 = values.float().gather(1, lo), values.float().gather(1, hi)
    dx = torch.where(torch.isfinite(x1 - x0), x1 - x0, 1.0).clamp_min(1e-12)
    w = ((q - x0) / dx).clamp(0, 1)
    first = axis[:, :1]
    last = axis.gather(1, (n - 1).clamp_min(0))
    covered = (q >= first) & (q <= last) & (n >= 2) & ((x1 - x0) <= max_gap * q)
    return y0 + w * (y1 - y0), covered


def _standardise(x: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std over each row's covered points (B, K); 0 where not covered."""
    c = covered.float()
    n = c.sum(1, keepdim=True).clamp_min(1)
    mean = (x * c).sum(1, keepdim=True) / n
    std = (((x - mean) * c) ** 2).sum(1, keepdim=True).div(n).sqrt().clamp_min(_EPS)
    return torch.where(covered, (x - mean) / std, 0.0)


class PatchTokenizer(nn.Module):
    """Spectra on native grids → patch tokens on the absolute lattice.

    Args:
        d_model: token width D.
        patch_size: lattice points per patch P.
        channels: names from :data:`CHANNELS`, C of them.
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
        self.proj = nn.Linear(self.patch_size * len(self.channels), d_model)
        self.position = WavelengthEncoding(d_model, n_frequencies=n_frequencies)

    @property
    def n_patches(self) -> int:
        """Patches of the whole lattice."""
        return int(self.centres.shape[0])

    def channel_values(
        self, values: torch.Tensor, wavelengths: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> channels (B, K, C) on the whole lattice (0 where not covered), covered bool (B, K)."""
        x, covered = interpolate_rows(values, wavelengths, valid, self.lattice, self.max_gap)  # [B, K]
        out = []
        if "absorbance" in self.channels:
            out.append(("absorbance", _standardise(x, covered)))
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
                out.append((name, _standardise(filtered[:, 0 if name == "sg1" else 1], covered)))
        order = {name: t for name, t in out}
        return torch.stack([order[c] for c in self.channels], dim=-1), covered  # [B, K, C]

    def patches(
        self,
        values: torch.Tensor,
        wavelengths: torch.Tensor,
        valid: torch.Tensor,
        point_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The batch's patches, cropped to the patches some row covers.

        Returns ``content (B, T, P·C)``, ``valid (B, T)`` (every point covered), ``masked (B, T)``
        (more than half its lattice points fall on masked native points; all False without
        ``point_mask (B, L)``) and ``centres (T,)`` nm.
        """
        B, P = values.shape[0], self.patch_size
        chans, covered = self.channel_values(values, wavelengths, valid)  # [B, K, C], [B, K]
        content = chans.reshape(B, -1, P * len(self.channels))  # [B, Np, P*C], point-major
        pvalid = covered.reshape(B, -1, P).all(-1)  # [B, Np]
        if point_mask is not None and bool(point_mask.any()):
            m, _ = interpolate_rows(point_mask.float(), wavelengths, valid, self.lattice, float("inf"))
            masked = m.reshape(B, -1, P).mean(-1) > 0.5
        else:
            masked = torch.zeros_like(pvalid)
        any_valid = pvalid.any(0)
        idx = torch.nonzero(any_valid).flatten()
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 1)
        return {
            "content": content[:, lo:hi],
            "valid": pvalid[:, lo:hi],
            "masked": masked[:, lo:hi] & pvalid[:, lo:hi],
            "centres": self.centres[lo:hi],
        }

    def embed(self, content: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """content (B, T, P·C), centres (T,) nm -> tokens (B, T, D)."""
        code = self.position.mlp(self.position.features(centres))  # [T, D]
        return self.proj(content) + code
