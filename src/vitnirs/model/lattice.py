"""The absolute wavelength lattice of the patch tokens, and reading spectra onto it.

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
- ``snv_dt``: the absorbance channel linearly detrended (classical SNV-DT): the least-squares line
  in log λ over the covered points is subtracted, then the rest standardised. An offset and a
  tilt in log λ leave it unchanged (what a baseline drift moves); curvature remains;
- ``sg1`` / ``sg2``: Savitzky–Golay first / second derivative (polynomial order 2) along the
  lattice, i.e. with respect to log λ, each standardised over the covered points. Outside the
  covered span the spectrum is extended with its end values before filtering, which is
  ``scipy.signal.savgol_filter(..., mode="nearest")`` (a test checks it). Inside a detector gap
  the filter reads the straight line across it (those points are not covered, so no patch
  there is valid, but the derivative of covered points within half a window of the gap edge
  sees the line). The window is
  ``sg_window_nm`` at 1,450 nm in lattice points (odd, at least 5), the same fraction of λ everywhere.

The token vectors (:class:`~vitnirs.model.tokenizer.PatchTokenizer`) are made from these values.
Linear interpolation reads at most the two native points around each lattice point: a native
grid much finer than the lattice (0.5 nm) is decimated, not averaged.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vitnirs.model.wavelength import LATTICE_MAX_NM, LATTICE_MIN_NM

__all__ = [
    "CHANNELS", "LATTICE_MAX_NM", "LATTICE_MIN_NM", "detrend", "interpolate_rows", "lattice_nm", "sg_points",
    "standardise",
]  # fmt: skip

CHANNELS = ("absorbance", "snv_dt", "sg1", "sg2")
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


def standardise(x: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std over each row's covered points (B, K); 0 where not covered."""
    c = covered.float()
    n = c.sum(1, keepdim=True).clamp_min(1)
    mean = (x * c).sum(1, keepdim=True) / n
    std = (((x - mean) * c) ** 2).sum(1, keepdim=True).div(n).sqrt().clamp_min(_EPS)
    return torch.where(covered, (x - mean) / std, 0.0)


def detrend(x: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
    """``x (B, K)`` minus its least-squares line in the lattice index (log λ) over each row's
    covered points; 0 where not covered. Rows with fewer than two covered points lose their mean."""
    c = covered.float()
    t = torch.arange(x.shape[1], device=x.device, dtype=x.dtype).expand_as(x)
    n = c.sum(1, keepdim=True).clamp_min(1)
    t_mean = (t * c).sum(1, keepdim=True) / n
    x_mean = (x * c).sum(1, keepdim=True) / n
    tc = (t - t_mean) * c
    slope = (tc * (x - x_mean)).sum(1, keepdim=True) / (tc * tc).sum(1, keepdim=True).clamp_min(_EPS)
    return torch.where(covered, x - x_mean - slope * (t - t_mean), 0.0)
