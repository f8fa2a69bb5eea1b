"""Whether a checkpoint can read a spectrum's range: the coverage rule, in one place.

Every entry point that embeds spectra (``SpectralEmbedder``, ``vitnirs embed``, ``vitnirs
evaluate``, ``vitnirs finetune``) asks :func:`check_coverage` before it embeds, with the span its
encoder's tokenizer reads of each grid (``readable_span``: valid patches and their nm span) and
the regions the checkpoint was pretrained on (``config.data.regions``). The rule:

- **error** (:class:`CoverageError`, naming the source, the rows and the range) when the
  tokenizer reads fewer than :data:`MIN_VALID_PATCHES` patches of a spectrum (a file below the
  350 nm lattice gives none: its embedding would be all zeros), or when less than
  :data:`MIN_INSIDE_REGIONS` of its range (in log λ, the lattice's scale) lies in the checkpoint's
  pretraining regions (:data:`~vitnirs.data.signal.REGION_RANGES_NM`);
- **warning** naming the range used when the readable patches span less than
  :data:`FULL_COVERAGE` of the spectrum's range, or less than that lies in the regions;
- **unit cross-check**: when the axis was declared in one unit and reading it in the other would
  put it inside the pretraining regions while the declared reading is not
  (:func:`vitnirs.data.signal.guess_unit` agreeing), the message says which declaration fits.
  A cm⁻¹ file declared as nm (corn's 4,000–9,000 read as nm) is the commonest mislabelling.

Ranges are compared in log λ, the lattice's own scale (a patch is a fixed fraction of λ).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vitnirs.data.signal import REGION_RANGES_NM, REGIONS, guess_unit, to_nm
from vitnirs.errors import VitnirsError

__all__ = [
    "FULL_COVERAGE",
    "MIN_INSIDE_REGIONS",
    "MIN_VALID_PATCHES",
    "CoverageError",
    "check_coverage",
    "inside_fraction",
    "region_spans",
]

MIN_VALID_PATCHES = 8  # 8 patches of 8 lattice points: ~10 % of λ, ~100 nm at 1,000 nm
MIN_INSIDE_REGIONS = 0.5  # at least half the range (log λ) in the pretraining regions
FULL_COVERAGE = 0.9  # below this fraction read (or inside the regions): a warning naming the range used


class CoverageError(VitnirsError, ValueError):
    """The checkpoint cannot read these spectra (a ``ValueError`` too, for scikit-learn callers)."""


def region_spans(regions: Sequence[str] | None) -> list[tuple[float, float]]:
    """The union of the regions' nm ranges as disjoint ``(lo, hi)`` spans (None or empty: all)."""
    names = list(regions or REGIONS)
    unknown = sorted(set(names) - set(REGION_RANGES_NM))
    if unknown:
        raise ValueError(f"unknown region(s) {unknown}; known: {list(REGION_RANGES_NM)}")
    spans: list[list[float]] = []
    for lo, hi in sorted(REGION_RANGES_NM[n] for n in names):
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    return [(lo, hi) for lo, hi in spans]


def inside_fraction(lo: float, hi: float, spans: Sequence[tuple[float, float]]) -> float:
    """Fraction of ``[lo, hi]`` nm (measured in log λ) that lies in ``spans``."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi <= lo:
        return 0.0
    inside = sum(max(0.0, np.log(min(hi, b) / max(lo, a))) for a, b in spans if min(hi, b) > max(lo, a))
    return float(inside / np.log(hi / lo))


def _span_text(spans: Sequence[tuple[float, float]]) -> str:
    return ", ".join(f"{a:,.0f}–{b:,.0f} nm" for a, b in spans)


def _rows_text(rows: np.ndarray, n: int) -> str:
    if n == 1:
        return ""
    more = " …" if len(rows) > 5 else ""
    return f" (rows {', '.join(map(str, rows[:5].tolist()))}{more} of {n})"


def _unit_hint(axis: np.ndarray | None, unit: str | None, spans: Sequence[tuple[float, float]]) -> str:
    """A sentence saying which unit declaration would put ``axis`` inside ``spans`` ('' if none)."""
    if axis is None or unit not in ("nm", "cm-1"):
        return ""
    axis = np.asarray(axis, dtype=np.float64)
    other = "cm-1" if unit == "nm" else "nm"
    guessed, _ = guess_unit(axis)
    with np.errstate(divide="ignore"):
        nm = np.sort(to_nm(axis, other))
    if guessed != other or inside_fraction(nm[0], nm[-1], spans) < MIN_INSIDE_REGIONS:
        return ""
    return (
        f" The axis ({axis.min():g}–{axis.max():g}) was declared in {unit}; read as {other} it would be "
        f"{nm[0]:,.0f}–{nm[-1]:,.0f} nm, inside them: is the unit {other}? Declare it "
        f"(--unit {other}, wavelength_unit='{other}', or the bank's manifest.json)."
    )


def check_coverage(
    wavelengths_nm: np.ndarray,
    readable: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    regions: Sequence[str] | None,
    source: str,
    axis: np.ndarray | None = None,
    unit: str | None = None,
) -> list[str]:
    """Apply the coverage rule; return the warnings, raise :class:`CoverageError` on what cannot be read.

    Args:
        wavelengths_nm: the grids, ``(L,)`` shared or ``(n, L)`` one per row, nm.
        readable: ``(valid_patches, lo_nm, hi_nm)``, each ``(n,)`` or ``(1,)`` for a shared grid:
            what the encoder's tokenizer reads of each grid (``Tokenizer.readable_span``).
        regions: the checkpoint's pretraining regions (``config.data.regions``; None: all).
        source: the file or object named in the messages.
        axis, unit: the axis as declared (native unit) and its unit, for the unit cross-check.
    """
    grids = np.atleast_2d(np.asarray(wavelengths_nm, dtype=np.float64))  # [n or 1, L]
    count, used_lo, used_hi = (np.asarray(a, dtype=np.float64) for a in readable)
    lo, hi = grids.min(axis=1), grids.max(axis=1)
    spans = region_spans(regions)
    inside = np.array([inside_fraction(a, b, spans) for a, b in zip(lo, hi, strict=True)])
    read = np.array([inside_fraction(a, b, [(c, d)]) if np.isfinite(c) else 0.0
                     for a, b, c, d in zip(lo, hi, used_lo, used_hi, strict=True)])  # fmt: skip
    where = f"pretraining regions ({', '.join(regions or REGIONS)}: {_span_text(spans)})"
    n = len(grids)
    few, outside = count < MIN_VALID_PATCHES, inside < MIN_INSIDE_REGIONS
    if (few | outside).any():
        r = int(np.flatnonzero(few | outside)[0])
        why = (
            f"the checkpoint reads {int(count[r])} patch(es) of it (at least {MIN_VALID_PATCHES} are needed; "
            f"its lattice starts at 350 nm)"
            if few[r]
            else f"only {inside[r]:.0%} of that range lies in its {where}"
        )
        raise CoverageError(
            f"{source}: spectra at {lo[r]:,.0f}–{hi[r]:,.0f} nm{_rows_text(np.flatnonzero(few | outside), n)}: "
            f"{why}; this model cannot embed them.{_unit_hint(axis, unit, spans)}"
        )
    notes = []
    short = read < FULL_COVERAGE
    if short.any():
        r = int(np.flatnonzero(short)[0])
        notes.append(
            f"{source}: spectra at {lo[r]:,.0f}–{hi[r]:,.0f} nm{_rows_text(np.flatnonzero(short), n)}: the "
            f"checkpoint reads {used_lo[r]:,.0f}–{used_hi[r]:,.0f} nm of them ({read[r]:.0%} of the range); "
            "the rest is not embedded"
        )
    seen = np.array([inside_fraction(c, d, spans) for c, d in zip(used_lo, used_hi, strict=True)])
    strange = seen < FULL_COVERAGE  # of what is read, too much lies outside the pretraining regions
    if strange.any():
        r = int(np.flatnonzero(strange)[0])
        notes.append(
            f"{source}: spectra at {lo[r]:,.0f}–{hi[r]:,.0f} nm{_rows_text(np.flatnonzero(strange), n)}: "
            f"{1 - seen[r]:.0%} of the range read ({used_lo[r]:,.0f}–{used_hi[r]:,.0f} nm) lies outside its "
            f"{where}; that part is embedded, but the model never saw such light in pretraining"
        )
    hint = _unit_hint(axis, unit, spans) if inside.min() < 1.0 else ""
    if hint:
        notes.append(f"{source}:{hint}")
    return notes
