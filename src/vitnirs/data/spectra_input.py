"""Spectra handed to the encoder, checked once: their grid and their values, by one rule set.

:func:`check_spectra` is the one check of a block of spectra and its grid, used by
:func:`vitnirs.embedding.embed_spectra` (so by ``vitnirs embed`` and every evaluation) and by
:class:`vitnirs.embedder.SpectralEmbedder` (at ``fit``, on the grid it reads from its
``wavelengths`` parameter or from a DataFrame's column names: :func:`grid_from_parameter`,
:func:`grid_from_columns`). :func:`absorbance_of` converts reflectance or transmittance to the
absorbance the encoder was pretrained on, as ``vitnirs prepare`` stores it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vitnirs.data.csv import parse_wavelength
from vitnirs.data.signal import normalize_signal_type, to_absorbance

__all__ = [
    "MIN_POINTS",
    "absorbance_of",
    "check_spectra",
    "fill_gaps",
    "grid_from_columns",
    "grid_from_parameter",
]

MIN_POINTS = 10  # the fewest spectral points a spectrum may have, in a file or in Python


def _rows(bad: np.ndarray) -> str:
    """``'2 row(s), first row 3 (rows [3, 7])'`` for a bool (n,) mask of bad rows."""
    rows = np.flatnonzero(bad)
    more = " …" if len(rows) > 10 else ""
    return f"{len(rows)} row(s), first row {rows[0]} (rows {rows[:10].tolist()}{more})"


def check_spectra(
    X: Any, wavelengths_nm: Any, *, name: str = "wavelengths_nm"
) -> tuple[np.ndarray, np.ndarray]:
    """Check spectra and their grid → ``(X, w)``, ``w`` broadcast to ``X``'s ``(n, L)``.

    The rules, each with its own ``ValueError`` naming the problem (``name`` is the grid's
    parameter name in the messages):

    - ``X`` is a 2-D ``(n, L)`` array of numbers, ``L >= MIN_POINTS``, finite in every row (the rows
      that are not are named; :func:`fill_gaps` fills NaN gaps first, as ``vitnirs embed`` does);
    - the grid is ``(L,)`` (shared) or ``(n, L)`` (one per row) numbers, in nm: finite, positive,
      no value twice within a grid (one wavelength per column), in any order. The message names
      the column of a shared grid, the rows of per-row grids.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be (n, L); got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X must be numeric; got dtype {X.dtype}")
    if X.shape[1] < MIN_POINTS:
        raise ValueError(f"only {X.shape[1]} spectral points; at least {MIN_POINTS} are needed")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ValueError(f"X has non-finite values (NaN or inf) in {_rows(bad)}; clean or drop them first")
    try:
        w = np.asarray(wavelengths_nm, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers; got {wavelengths_nm!r:.80}") from None
    n, L = X.shape
    if w.shape not in ((L,), (n, L)):
        raise ValueError(f"{name} must be ({L},) or ({n}, {L}) to match X {X.shape}; got shape {w.shape}")
    grids = w.reshape(1 if w.ndim == 1 else n, L)  # [1 or n, L]

    def where(bad: np.ndarray) -> str:  # bad: bool [1 or n, L]: the column of a shared grid, else the rows
        return f" at column {np.flatnonzero(bad[0])[0]}" if w.ndim == 1 else f" in {_rows(bad.any(axis=1))}"

    bad = ~np.isfinite(grids)
    if bad.any():
        raise ValueError(f"{name} has non-finite values (NaN or inf){where(bad)}")
    bad = grids <= 0
    if bad.any():
        raise ValueError(f"{name} must be positive (in nm); got {grids[bad][0]:g}{where(bad)}")
    ordered = np.sort(grids, axis=1)
    bad = ordered[:, 1:] == ordered[:, :-1]  # [1 or n, L - 1]
    if bad.any():
        twice = f"{ordered[:, 1:][bad][0]:g} nm twice" + ("" if w.ndim == 1 else where(bad))
        raise ValueError(f"{name} has repeated values ({twice}): one wavelength per column")
    return X, np.broadcast_to(w, (n, L))


def fill_gaps(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Fill the missing values (NaN) of ``(n, L)`` spectra by linear interpolation along the axis.

    The one NaN rule of the package (``vitnirs prepare``/``embed`` and ``SpectralEmbedder``):
    gaps are filled, ends held at the nearest value; a row with no value at all is left NaN and
    flagged (the caller drops it, or gives it a NaN embedding). Returns ``(values, empty_rows,
    note)``: a float64 copy when something was filled, ``empty_rows`` bool ``(n,)``, and the
    warning for the filled gaps (None when no gap was filled).
    """
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    empty = missing.all(axis=1)
    gaps = np.flatnonzero(missing.any(axis=1) & ~empty)
    if not len(gaps):
        return values, empty, None
    values = values.copy()
    idx = np.arange(values.shape[1])
    for r in gaps:  # a cold path: only rows with gaps
        gap = missing[r]
        values[r, gap] = np.interp(idx[gap], idx[~gap], values[r, ~gap])
    return (
        values,
        empty,
        (
            f"{int(missing[gaps].sum())} missing values in {len(gaps)} spectra filled by linear "
            "interpolation along the wavelength axis"
        ),
    )


def grid_from_parameter(wavelengths: Any, n_features: int) -> np.ndarray:
    """``(L,)`` axis values (in the declared unit) of a ``wavelengths`` parameter: a list of
    ``n_features`` numbers, or ``{"first": a, "last": b}`` for an evenly spaced grid."""
    if isinstance(wavelengths, dict):
        if set(wavelengths) != {"first", "last"}:
            raise ValueError(
                "wavelengths as a dict must be {'first': value, 'last': value} (an evenly spaced "
                f"grid of X.shape[1] points); got keys {sorted(map(str, wavelengths))}"
            )
        return np.linspace(float(wavelengths["first"]), float(wavelengths["last"]), n_features)
    try:
        grid = np.asarray(wavelengths, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"wavelengths must be numbers; got {wavelengths!r:.80}") from None
    if grid.ndim != 1:
        raise ValueError(f"wavelengths must be one value per column, shape (L,); got shape {grid.shape}")
    if len(grid) != n_features:
        raise ValueError(
            f"wavelengths has {len(grid)} values but X has {n_features} columns: "
            "give one wavelength per spectral column"
        )
    return grid


def grid_from_columns(columns: Any) -> np.ndarray:
    """``(L,)`` axis values parsed from a DataFrame's column names (None: no DataFrame)."""
    if columns is None:
        raise ValueError(
            "wavelengths are missing: pass wavelengths=[...] (one per column of X), "
            "wavelengths={'first': ..., 'last': ...} for an evenly spaced grid, or X as a "
            "pandas DataFrame whose column names are the wavelengths"
        )
    grid, names = [], {str(c) for c in columns}
    for col in columns:  # names carry no decimal mark: '1100.5' and '1100,5' both read
        base, dot, suffix = str(col).rpartition(".")
        if dot and suffix.isdigit() and base in names and not isinstance(col, (int, float, np.number)):
            first, this = parse_wavelength(base, None), parse_wavelength(str(col), None)
            if this is None or first is None or _mangled(first, this, columns):
                raise ValueError(
                    f"column {col!r} looks like a second {base!r} column renamed by pandas (duplicate "
                    f"wavelength header {base!r}): one wavelength per column; fix the file's header"
                )
        value = col if isinstance(col, (int, float, np.number)) else parse_wavelength(str(col), None)
        if value is None:
            raise ValueError(
                f"wavelengths=None reads the grid from X's column names, but column {col!r} is "
                "not a number: select the spectral columns only, or pass wavelengths="
            )
        grid.append(float(value))
    return np.asarray(grid, dtype=np.float64)


def _mangled(first: float, this: float, columns: Any) -> bool:
    """Whether ``this`` ('1300.1') is pandas' name for a second ``first`` ('1300') column rather
    than a wavelength of a fine grid: its offset is far below the grid's median step."""
    values = [parse_wavelength(str(c), None) for c in columns]
    axis = np.sort(np.array([v for v in values if v is not None], dtype=np.float64))
    steps = np.diff(axis)
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 0.0
    return abs(this - first) < 0.25 * step


def absorbance_of(values: np.ndarray, signal_type: str) -> tuple[np.ndarray, list[str]]:
    """``(n, L)`` values of ``signal_type`` → ``(absorbance, notes)``: a new float64 array.

    Reflectance and transmittance (0-1 or %) become log10(1/R) as ``vitnirs prepare`` stores
    them; absorbance and ``"unknown"`` are kept. ``notes`` are the conversion's warnings (clipped
    values, an unconverted unknown signal). ``ValueError`` naming the rows when the conversion
    leaves a value that is not finite.
    """
    absorbance, _, notes = to_absorbance(values, normalize_signal_type(signal_type))
    absorbance = np.array(absorbance, dtype=np.float64)
    bad = ~np.isfinite(absorbance).all(axis=1)
    if bad.any():
        raise ValueError(f"{signal_type} spectra not finite after conversion to absorbance in {_rows(bad)}")
    return absorbance, notes
