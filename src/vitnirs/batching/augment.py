"""Vectorised torch versions of the nirs4all augmenters, for a padded batch.

nirs4all's operators (``nirs4all.operators.augmentation``) work on one (n, L) array with one
wavelength axis; a pretraining batch mixes grids and lengths, and the GPU machine has no
nirs4all. Each function below reproduces one operator's law of change (same parameters, same
units) on a padded batch ``values (B, L)`` (absorbance, before normalisation), ``wavelengths
(B, L)`` nm and ``valid (B, L)``, in a handful of tensor ops; padding is returned untouched.
tests/test_augment.py checks each against the nirs4all operator. Every random number comes from
the ``torch.Generator`` passed in.

Speed-ups: 256 spectra × 700 points, one CPU thread (as in a data worker), median of 20 calls,
torch vs nirs4all 1.4 on the same array; nirs4all gets one shared grid, its most favourable case
(a mixed-grid batch would need one nirs4all call per grid). Below 1 means the torch op is slower:
kept because it runs on padded mixed-grid batches and where nirs4all is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


def _uniform(shape: tuple[int, ...], low: float, high: float, g: torch.Generator, like: Tensor) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=g, dtype=like.dtype, device=like.device)


def _count(valid: Tensor) -> Tensor:
    return valid.sum(dim=1, keepdim=True).clamp_min(1)


def masked_std(values: Tensor, valid: Tensor) -> Tensor:
    """``(B, 1)`` population std of each spectrum over its real points."""
    n = _count(valid)
    mean = (values * valid).sum(1, keepdim=True) / n
    return ((((values - mean) * valid) ** 2).sum(1, keepdim=True) / n).sqrt()


def baseline_drift(
    values: Tensor,
    wavelengths: Tensor,
    valid: Tensor,
    g: torch.Generator,
    *,
    degree: int = 3,
    coeff_ranges: list[tuple[float, float]] | None = None,
) -> Tensor:
    """Add ``Σ c_i λ̃^i``, λ̃ the axis scaled to [-1, 1] per spectrum (``PolynomialBaselineDrift``).

    Default ranges are nirs4all's: ``c_i ~ U(±0.1/(i+1))``. Speed-up vs nirs4all: ×2.1 (1.8 vs 3.7 ms).
    """
    ranges = coeff_ranges or [(-0.1 / (i + 1), 0.1 / (i + 1)) for i in range(degree + 1)]
    lo = wavelengths.masked_fill(~valid, float("inf")).amin(1, keepdim=True)
    hi = wavelengths.masked_fill(~valid, float("-inf")).amax(1, keepdim=True)
    x = 2 * (wavelengths - lo) / (hi - lo).clamp_min(1e-12) - 1  # [B, L]
    drift, power = torch.zeros_like(values), torch.ones_like(values)
    for low, high in ranges:  # ≤ 4 terms, not a loop over samples
        drift = drift + _uniform((values.shape[0], 1), low, high, g, values) * power
        power = power * x
    return torch.where(valid, values + drift, values)


def scatter(
    values: Tensor,
    valid: Tensor,
    g: torch.Generator,
    *,
    a_range: tuple[float, float] = (-0.1, 0.1),
    b_range: tuple[float, float] = (0.9, 1.1),
    sigma_gain: float = 0.0,
) -> Tensor:
    """``a + b (1 + ε) x``: ``ScatterSimulationMSC(reference_mode='self')`` then ``MultiplicativeNoise``.

    ``a ~ U(a_range)``, ``b ~ U(b_range)``, ``ε ~ N(0, sigma_gain)`` per spectrum.
    Speed-up vs nirs4all: MSC ×1.0 (0.25 vs 0.26 ms), MultiplicativeNoise ×0.6 (0.23 vs 0.14 ms).
    """
    shape = (values.shape[0], 1)
    a = _uniform(shape, *a_range, g, values)
    b = _uniform(shape, *b_range, g, values)
    eps = torch.randn(shape, generator=g, dtype=values.dtype, device=values.device) * sigma_gain
    return torch.where(valid, a + b * (1 + eps) * values, values)


def gaussian_noise(values: Tensor, valid: Tensor, g: torch.Generator, *, sigma: float = 0.01) -> Tensor:
    """Add ``N(0, sigma × std(x))`` per point, std over the real points (``GaussianAdditiveNoise``).

    Speed-up vs nirs4all: ×2.0 (1.7 vs 3.3 ms).
    """
    noise = torch.randn(values.shape, generator=g, dtype=values.dtype, device=values.device)
    return torch.where(valid, values + noise * masked_std(values, valid) * sigma, values)


def band_mask(
    values: Tensor,
    valid: Tensor,
    g: torch.Generator,
    *,
    n_bands_range: tuple[int, int] = (1, 3),
    bandwidth_range: tuple[int, int] = (5, 20),
) -> Tensor:
    """Replace 1–3 bands by the straight line between their neighbours (``BandMasking(mode='interp')``).

    Same law as nirs4all: band count ``U{n_lo..n_hi}``, centre ``U{0..n-1}``, width ``U{w_lo..w_hi-1}``
    points, band ``[c - w//2, c + w//2)`` clipped to the real points. Speed-up vs nirs4all: ×4.2 (0.9 vs 3.7 ms).
    """
    B, L = values.shape
    n = valid.sum(1, keepdim=True)  # [B, 1]
    span = torch.arange(bandwidth_range[1], device=values.device).expand(B, -1)  # [B, W] offsets in a band
    count = torch.randint(n_bands_range[0], n_bands_range[1] + 1, (B, 1), generator=g, device=values.device)
    # W spare columns so a band's window never wraps; only (B, W) windows are touched, never (B, L)
    out = torch.cat([values, values.new_zeros((B, bandwidth_range[1]))], dim=1)
    for band in range(n_bands_range[1]):  # ≤ 3 bands, sequential as in nirs4all
        center = (torch.rand((B, 1), generator=g, device=values.device) * n).long().clamp_max(n - 1)
        width = torch.randint(
            bandwidth_range[0], bandwidth_range[1], (B, 1), generator=g, device=values.device
        )
        start = (center - width // 2).clamp_min(0)
        end = torch.minimum(center + width // 2, n)
        left = out.gather(1, (start - 1).clamp_min(0))
        right = out.gather(1, torch.minimum(end, n - 1).clamp_min(0))
        slope = (right - left) / (end - start + 1).to(values.dtype)
        index = start + span
        inside = (span < end - start) & (band < count)
        line = left + slope * (span + 1).to(values.dtype)
        out = out.scatter(1, index, torch.where(inside, line, out.gather(1, index)))
    return out[:, :L]


def resample(values: Tensor, wavelengths: Tensor, valid: Tensor, query: Tensor) -> Tensor:
    """Linear interpolation of each row at ``query`` (B, L) nm, clamped at the ends like ``np.interp``."""
    n = valid.sum(1, keepdim=True).clamp_min(1)
    axis = wavelengths.masked_fill(~valid, float("inf")).contiguous()  # sorted per row, padding last
    hi = torch.searchsorted(axis, query.contiguous(), right=True)
    hi = torch.minimum(hi.clamp_min(1), (n - 1).clamp_min(1)).clamp_max(values.shape[1] - 1)
    lo = (hi - 1).clamp_min(0)
    x0, x1 = axis.gather(1, lo), axis.gather(1, hi)
    y0, y1 = values.gather(1, lo), values.gather(1, hi)
    w = ((query - x0) / torch.where(torch.isfinite(x1 - x0), x1 - x0, 1.0).clamp_min(1e-12)).clamp(0, 1)
    w = w * (n > 1)  # a one-point spectrum stays as it is
    return torch.where(valid, y0 + w * (y1 - y0), values)


def shift_stretch(
    values: Tensor,
    wavelengths: Tensor,
    valid: Tensor,
    g: torch.Generator,
    *,
    shift_range: tuple[float, float] = (-2.0, 2.0),
    stretch_range: tuple[float, float] = (1.0, 1.0),
) -> Tensor:
    """Resample at ``c + (λ - c)/f - s`` nm, ``s ~ U(shift_range)``, ``f ~ U(stretch_range)``, c the mean λ.

    ``WavelengthShift`` (f = 1) and ``WavelengthStretch`` (s = 0) with wavelengths, in one
    interpolation; the returned values sit on the true λ. Speed-up vs nirs4all: shift ×0.3 (7.0 vs
    2.0 ms), stretch ×0.3 (6.4 vs 2.0 ms): the batched ``searchsorted`` over per-row grids costs more
    than nirs4all's per-row ``np.interp`` on one shared grid.
    """
    shape = (values.shape[0], 1)
    s = _uniform(shape, *shift_range, g, wavelengths)
    f = _uniform(shape, *stretch_range, g, wavelengths)
    c = (wavelengths * valid).sum(1, keepdim=True) / _count(valid)
    return resample(values, wavelengths, valid, c + (wavelengths - c) / f - s)


def blur(
    values: Tensor,
    wavelengths: Tensor,
    valid: Tensor,
    g: torch.Generator,
    *,
    sigma_range: tuple[float, float] = (0.5, 4.0),
    half_width: int = 8,
) -> Tensor:
    """A coarser instrument: Gaussian smoothing of ``σ ~ U(sigma_range)`` nm per spectrum.

    Each point becomes the weighted mean of its real neighbours within ``half_width`` points,
    weights ``exp(-(Δλ)² / 2σ²)`` on the true λ (any grid). nirs4all has no resolution operator
    for mixed grids; this one is (B, L, 2·half_width + 1) tensor ops. The window caps the
    effective σ at about ``half_width × spacing / 2``: measured on a 1 nm-wide peak, σ = 4 nm acts
    as 4 nm on a 2 nm grid, 3.6 nm on a 1 nm grid and 2.3 nm on a 0.5 nm grid.
    """
    B, L = values.shape
    sigma = _uniform((B, 1, 1), *sigma_range, g, values)
    k = half_width
    pad = lambda t, fill: torch.nn.functional.pad(t, (k, k), value=fill).unfold(1, 2 * k + 1, 1)  # noqa: E731
    win_x = pad(values, 0.0)  # [B, L, 2k+1]
    win_l = pad(wavelengths, 0.0)
    win_v = pad(valid.to(values.dtype), 0.0)
    w = torch.exp(-((win_l - wavelengths[..., None]) ** 2) / (2 * sigma**2)) * win_v
    smoothed = (w * win_x).sum(-1) / w.sum(-1).clamp_min(1e-12)
    return torch.where(valid, smoothed, values)


def detector_response(
    values: Tensor,
    wavelengths: Tensor,
    valid: Tensor,
    g: torch.Generator,
    *,
    amplitude: float = 0.05,
    n_bumps: int = 3,
) -> Tensor:
    """Add a smooth response curve, ``std(x) · Σ a_j exp(-(λ - c_j)² / 2 w_j²)`` (absorbance units).

    A detector whose response differed between the reference and the sample adds
    ``-log10 r(λ)`` to the absorbance, ``r`` smooth: ``n_bumps`` Gaussian bumps with centres
    ``c_j`` uniform over the spectrum's range, widths ``w_j ~ U(0.1, 0.4)`` of the range and
    amplitudes ``a_j ~ U(±amplitude)`` in units of the spectrum's std.
    """
    B = values.shape[0]
    lo = wavelengths.masked_fill(~valid, float("inf")).amin(1, keepdim=True)
    hi = wavelengths.masked_fill(~valid, float("-inf")).amax(1, keepdim=True)
    span = (hi - lo).clamp_min(1e-6)
    curve = torch.zeros_like(values)
    for _ in range(n_bumps):  # ≤ 3 bumps, not a loop over samples
        c = lo + span * _uniform((B, 1), 0.0, 1.0, g, values)
        w = span * _uniform((B, 1), 0.1, 0.4, g, values)
        a = _uniform((B, 1), -amplitude, amplitude, g, values)
        curve = curve + a * torch.exp(-((wavelengths - c) ** 2) / (2 * w**2))
    return torch.where(valid, values + curve * masked_std(values, valid), values)


@dataclass
class Augmenter:
    """The augmentation stack of pretraining; each op applied per spectrum with its probability.

    Order: shift/stretch, blur (resolution), scatter, baseline drift, detector response, band
    masking, noise (the instrument distortions first, the measurement noise last). Blur and
    response are off by default (probability 0): the nuisance-only views of the study turn them on.
    """

    p_baseline_drift: float = 0.5
    p_scatter: float = 0.5
    p_noise: float = 0.8
    p_band_mask: float = 0.2
    p_shift: float = 0.3
    p_blur: float = 0.0
    p_response: float = 0.0
    drift_degree: int = 3
    scatter_a_range: tuple[float, float] = (-0.1, 0.1)
    scatter_b_range: tuple[float, float] = (0.9, 1.1)
    sigma_gain: float = 0.03
    noise_sigma: float = 0.01
    n_bands_range: tuple[int, int] = (1, 3)
    bandwidth_range: tuple[int, int] = (5, 20)
    shift_range: tuple[float, float] = (-2.0, 2.0)
    stretch_range: tuple[float, float] = (0.995, 1.005)

    def __call__(
        self, values: Tensor, wavelengths: Tensor, valid: Tensor, generator: torch.Generator
    ) -> Tensor:
        """``values (B, L)`` absorbance → augmented ``(B, L)``; padding untouched."""
        g, B = generator, values.shape[0]

        def chosen(p: float) -> Tensor:  # [B, 1] which spectra get this op
            return torch.rand((B, 1), generator=g, device=values.device) < p

        steps = (
            (
                self.p_shift,
                lambda x: shift_stretch(
                    x, wavelengths, valid, g, shift_range=self.shift_range, stretch_range=self.stretch_range
                ),
            ),
            (self.p_blur, lambda x: blur(x, wavelengths, valid, g)),
            (
                self.p_scatter,
                lambda x: scatter(
                    x,
                    valid,
                    g,
                    a_range=self.scatter_a_range,
                    b_range=self.scatter_b_range,
                    sigma_gain=self.sigma_gain,
                ),
            ),
            (
                self.p_baseline_drift,
                lambda x: baseline_drift(x, wavelengths, valid, g, degree=self.drift_degree),
            ),
            (self.p_response, lambda x: detector_response(x, wavelengths, valid, g)),
            (
                self.p_band_mask,
                lambda x: band_mask(
                    x, valid, g, n_bands_range=self.n_bands_range, bandwidth_range=self.bandwidth_range
                ),
            ),
            (self.p_noise, lambda x: gaussian_noise(x, valid, g, sigma=self.noise_sigma)),
        )
        for p, op in steps:
            if p > 0:
                values = torch.where(chosen(p), op(values), values)
        return values
