"""Give the cells of a :class:`RawTable` their meaning and check they are usable.

Rejected (:class:`BadFileError`, naming the row/column): no numeric header, fewer than
10 spectral points, duplicate or non-monotonic or non-positive wavelengths, text inside
the spectrum, infinite values or values beyond float32 range, no usable spectrum left.

Kept with a warning in the manifest: missing values (empty spectra and empty columns are
dropped, gaps are filled by linear interpolation along the axis), constant spectra
(dropped), a handful of rows, an undeclared unit or signal type (guessed), non-positive
reflectance (clipped before the log).

The values are stored in ascending wavelength, in nm, as absorbance (reflectance and
transmittance converted with nirs4all's ``ToAbsorbance``), float32.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitnirs.data.csv import RawTable, parse_number
from vitnirs.data.declarations import Declaration, from_column
from vitnirs.data.signal import guess_signal_type, guess_unit, region_of, to_absorbance, to_nm
from vitnirs.data.table import SpectralTable
from vitnirs.errors import BadFileError

MIN_POINTS = 10
FEW_ROWS = 20  # below this a dataset is kept for pretraining but too small for a downstream split
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _axis(raw: RawTable) -> tuple[list[int], np.ndarray]:
    """Positions of the spectral columns and their axis values (native unit, file order)."""
    cols, axis = [], []
    for i, h in enumerate(raw.header):
        value = parse_number(h, ",") if h else None
        if value is not None:
            cols.append(i)
            axis.append(value)
    if not cols:
        raise BadFileError(
            raw.source, "no spectral columns: no column header parses as a number (wavelength)"
        )
    if len(cols) < MIN_POINTS:
        raise BadFileError(raw.source, f"only {len(cols)} spectral points; at least {MIN_POINTS} are needed")
    values = np.asarray(axis, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        bad = int(np.flatnonzero(~np.isfinite(values) | (values <= 0))[0])
        raise BadFileError(
            raw.source, "wavelength headers must be positive numbers", column=raw.header[cols[bad]]
        )
    _, first, counts = np.unique(values, return_index=True, return_counts=True)
    if np.any(counts > 1):
        dup = int(first[np.argmax(counts > 1)])
        twin = int(np.flatnonzero(values == values[dup])[1])
        raise BadFileError(
            raw.source,
            f"duplicate wavelength {values[dup]:g} (columns '{raw.header[cols[dup]]}' and "
            f"'{raw.header[cols[twin]]}')",
            column=raw.header[cols[twin]],
        )
    steps = np.sign(np.diff(values))
    if np.any(steps != steps[0]):
        k = int(np.argmax(steps != steps[0])) + 1
        raise BadFileError(
            raw.source,
            f"wavelength axis is not monotonic: {values[k]:g} follows {values[k - 1]:g} in a "
            f"{'rising' if steps[0] > 0 else 'falling'} axis (mixed units or shuffled columns?)",
            column=raw.header[cols[k]],
        )
    return cols, values


def _numeric_block(raw: RawTable, cols: list[int]) -> np.ndarray:
    """(n, L) float64 of the spectral cells; text, inf and float32 overflow are rejected."""
    block = raw.frame[cols].copy()
    for col in cols:
        series = block[col]
        if not pd.api.types.is_numeric_dtype(series):
            parsed = pd.to_numeric(series.str.replace(",", ".", regex=False), errors="coerce")
            bad = parsed.isna() & series.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise BadFileError(
                    raw.source,
                    f"text inside the spectrum: '{series.iloc[row]}' is not a number",
                    row=row + 1,
                    column=raw.header[col],
                )
            block[col] = parsed
    values = block.to_numpy(dtype=np.float64)
    finite = np.isfinite(values) | np.isnan(values)
    too_big = np.abs(np.where(np.isnan(values), 0.0, values)) > FLOAT32_MAX
    bad = ~finite | too_big
    if bad.any():
        r, c = np.argwhere(bad)[0]
        what = (
            "infinite value"
            if not np.isfinite(values[r, c])
            else f"value {values[r, c]:g} beyond float32 range"
        )
        raise BadFileError(raw.source, what, row=int(r) + 1, column=raw.header[cols[c]])
    return values


def _fill_missing(values: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Drop all-NaN rows, fill the other gaps by linear interpolation along the axis.

    Returns ``(values, kept_row_mask)``.
    """
    missing = np.isnan(values)
    if not missing.any():
        return values, np.ones(len(values), dtype=bool)
    empty_rows = missing.all(axis=1)
    if empty_rows.any():
        notes.append(f"{int(empty_rows.sum())} spectra with no values dropped (rows {_rows(empty_rows)})")
    values = values[~empty_rows]
    n_fill = int(np.isnan(values).sum())
    if n_fill:
        idx = np.arange(values.shape[1])
        rows_with_gaps = np.flatnonzero(np.isnan(values).any(axis=1))
        for r in rows_with_gaps:  # a cold path: only rows with gaps, once at prepare time
            gap = np.isnan(values[r])
            values[r, gap] = np.interp(idx[gap], idx[~gap], values[r, ~gap])
        notes.append(
            f"{n_fill} missing values in {len(rows_with_gaps)} spectra filled by linear interpolation "
            "along the wavelength axis"
        )
    return values, ~empty_rows


def _rows(rows: np.ndarray, most: int = 5) -> str:
    """``rows`` as a short list: a boolean mask over rows (→ 1-based numbers) or row numbers."""
    rows = (np.flatnonzero(rows) + 1 if rows.dtype == bool else rows).tolist()
    return ", ".join(map(str, rows[:most])) + (f", … ({len(rows)} in all)" if len(rows) > most else "")


def _typed(frame: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """Columns that parse entirely as numbers (with the file's decimal mark) become numeric;
    the rest stay text."""
    out = {}
    for col in frame.columns:
        series = frame[col]
        text = series.astype(str).str.replace(",", ".", regex=False) if decimal == "," else series
        parsed = pd.to_numeric(text, errors="coerce").where(series.notna())
        out[col] = parsed if (parsed.notna() == series.notna()).all() else series.astype(object)
    return pd.DataFrame(out, index=frame.index)


def _named_columns(raw: RawTable, positions: list[int], notes: list[str]) -> pd.DataFrame:
    """The non-spectral columns with their header names (repeats suffixed, empty dropped)."""
    frame, seen = {}, set()
    for i in positions:
        name = raw.header[i]
        series = raw.frame[i]
        if not name:
            if series.notna().any():
                name = f"column_{i + 1}"
                notes.append(f"column {i + 1} has no header: kept as metadata '{name}'")
            else:
                continue
        if name in seen:
            new = f"{name}_{i + 1}"
            notes.append(f"repeated column name '{name}': the second is kept as '{new}'")
            name = new
        seen.add(name)
        frame[name] = series
    return pd.DataFrame(frame, index=raw.frame.index)


def build_table(raw: RawTable, *, name: str, declared: Declaration | None = None) -> SpectralTable:
    """Validate a raw table and convert it into a :class:`SpectralTable` (see module doc)."""
    declared = declared or Declaration()
    notes = list(raw.warnings)
    cols, axis = _axis(raw)
    others = _named_columns(raw, [i for i in range(len(raw.header)) if i not in set(cols)], notes)
    if "signal_type" in others.columns:
        declared = declared.merged_under(from_column(others["signal_type"], raw.source))

    values = _numeric_block(raw, cols)
    empty_cols = np.isnan(values).all(axis=0)
    if empty_cols.all():
        raise BadFileError(raw.source, "every spectral value is missing")
    if empty_cols.any():
        notes.append(f"{int(empty_cols.sum())} spectral columns with no values dropped")
        values, axis = values[:, ~empty_cols], axis[~empty_cols]
        if len(axis) < MIN_POINTS:
            raise BadFileError(
                raw.source, f"only {len(axis)} spectral points with values; {MIN_POINTS} needed"
            )
    values, kept = _fill_missing(values, notes)
    others, row_numbers = others[kept], np.flatnonzero(kept) + 1  # file rows, 1-based

    constant = values.max(axis=1) == values.min(axis=1)
    if constant.all():
        raise BadFileError(raw.source, "every spectrum is constant (one value repeated across the axis)")
    if constant.any():
        notes.append(f"{int(constant.sum())} constant spectra dropped (rows {_rows(row_numbers[constant])})")
        values, others = values[~constant], others[~constant]

    unit = declared.unit
    if unit is None:
        unit, note = guess_unit(axis)
        notes.append(note)
    wavelengths_nm = to_nm(axis, unit)
    order = np.argsort(wavelengths_nm)
    wavelengths_nm, values = wavelengths_nm[order], values[:, order]

    signal_type = declared.signal_type
    if signal_type is None:
        signal_type, note = guess_signal_type(values, wavelengths_nm)
        notes.append(note)
    if signal_type == "reflectance" and np.nanmax(values) > 1.5:
        notes.append(
            f"declared reflectance (0-1) but values reach {np.nanmax(values):.3g}: is it reflectance%?"
        )
    stored, stored_type, conversion_notes = to_absorbance(values, signal_type)
    notes.extend(conversion_notes)
    if np.any(np.abs(stored) > FLOAT32_MAX):
        raise BadFileError(raw.source, "values beyond float32 range after conversion to absorbance")

    n_dup = int(len(values) - len(np.unique(values, axis=0)))
    if len(values) < FEW_ROWS:
        notes.append(f"only {len(values)} spectra: fine for pretraining, too few for a downstream split")

    target_cols = [c for c in others.columns if str(c).startswith("y_")]
    others = _typed(others.reset_index(drop=True), raw.decimal)
    return SpectralTable(
        name=name,
        source=raw.source,
        values=stored.astype(np.float32),
        wavelengths_nm=wavelengths_nm,
        native_unit=unit,
        native_axis_first=float(axis[0]),
        native_axis_last=float(axis[-1]),
        signal_type_original=signal_type,
        signal_type_stored=stored_type,
        region=region_of(wavelengths_nm),
        targets=others[target_cols],
        metadata=others.drop(columns=target_cols),
        warnings=notes,
        n_duplicated_spectra=n_dup,
        extra={"unit_declared_by": declared.unit_from, "signal_type_declared_by": declared.signal_type_from},
    )
