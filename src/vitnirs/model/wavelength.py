"""Absolute wavelength encoding: the same wavelength gets the same code on every instrument.

log λ is normalised over a fixed range (350 nm - 25 µm by default: vis-NIR, NIR and MIR once
cm⁻¹ is converted to nm), never per spectrum, so 1,450 nm means the water band everywhere.
Fixed Fourier features of that coordinate (geometric frequencies) go through a small
learnable MLP.

Resolution: with the defaults, the normalised coordinate moves by about 3e-4 per 2 nm at
1,450 nm; the top frequency (``max_frequency`` = 1024 cycles over the range) has a period of
about 1e-3 of the range, i.e. it separates points a few nm apart in the NIR.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vitnirs.model.attention import take_rows

__all__ = ["LATTICE_MAX_NM", "LATTICE_MIN_NM", "WavelengthEncoding"]

LATTICE_MIN_NM, LATTICE_MAX_NM = 350.0, 25000.0
"""The absolute range every code and the patch lattice cover: vis-NIR, NIR and MIR (cm⁻¹ converted)."""


class WavelengthEncoding(nn.Module):
    """Fourier features of normalised log λ + a learnable MLP.

    Args:
        d_model: output width.
        n_frequencies: number of geometric frequencies (features: sin and cos of each, plus the
            coordinate itself).
        min_nm, max_nm: the fixed absolute range mapped to [0, 1] in log λ (values outside are
            not clipped: they extrapolate smoothly).
        max_frequency: highest frequency, in cycles over the whole range (lowest: 0.5).
    """

    def __init__(
        self,
        d_model: int,
        *,
        n_frequencies: int = 32,
        min_nm: float = LATTICE_MIN_NM,
        max_nm: float = LATTICE_MAX_NM,
        max_frequency: float = 1024.0,
    ):
        super().__init__()
        if not 0 < min_nm < max_nm:
            raise ValueError(f"need 0 < min_nm < max_nm, got {min_nm}, {max_nm}")
        self.log_min = math.log(min_nm)
        self.log_span = math.log(max_nm) - math.log(min_nm)
        freqs = 2 * math.pi * torch.logspace(math.log10(0.5), math.log10(max_frequency), n_frequencies)
        # not persistent: rebuilt from the constructor arguments, so checkpoints hold only weights
        self.register_buffer("freqs", freqs, persistent=False)  # [F]
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_frequencies + 1, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )

    def features(self, wavelengths_nm: torch.Tensor) -> torch.Tensor:
        """Fixed features: (...,) nm -> (..., 2F + 1), float32 whatever the input dtype."""
        log_nm = torch.log(wavelengths_nm.float().clamp_min(1e-3))
        x = (log_nm - self.log_min) / self.log_span  # [...], 0 at min_nm, 1 at max_nm
        angles = x[..., None] * self.freqs  # [..., F]
        return torch.cat([x[..., None], torch.sin(angles), torch.cos(angles)], dim=-1)

    def table(self, wavelengths_nm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """wavelengths_nm: (B, L) nm -> (codes, index).

        On CPU, codes (U, d_model) once per distinct wavelength and index long (B, L) into them
        (spectra of a batch share few grids: 1,430 -> 1,760 spectra/s embedding, tiny preset,
        L = 700, one CPU thread). On GPU, where ``torch.unique`` would synchronise, codes
        (B, L, d_model) directly and index None.
        """
        if wavelengths_nm.device.type != "cpu":
            return self.mlp(self.features(wavelengths_nm)), None
        distinct, inverse = torch.unique(wavelengths_nm, return_inverse=True)  # [U], [B, L]
        return self.mlp(self.features(distinct)), inverse

    def forward(self, wavelengths_nm: torch.Tensor) -> torch.Tensor:
        """wavelengths_nm: (B, L) in nm -> codes (B, L, d_model); the same values on any device."""
        codes, index = self.table(wavelengths_nm)
        return codes if index is None else take_rows(codes, index)  # [B, L, D]
