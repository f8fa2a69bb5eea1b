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

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vitnirs.data.csv import RawTable
from vitnirs.data.declarations import Declaration, from_column
from vitnirs.data.signal import (
    REGION_RANGES_NM,
    guess_signal_type,
    guess_unit,
    region_of,
    to_absorbance,
    to_nm,
)
from vitnirs.data.spectra_input import MIN_POINTS, fill_gaps
from vitnirs.data.table import SpectralTable
from vitnirs.errors import BadFileError

__all__ = [
    "FEW_ROWS",
    "MIN_POINTS",
    "ValidatedTable",
    "build_table",
    "count_duplicate_rows",
    "validate_table",
]

FEW_ROWS = 20  # below this a dataset is kept for pretraining but too small for a downstream split
LATTICE_RANGE_NM = (  # the patch lattice's span, 350 nm–25 µm: the union of every region
    min(lo for lo, _ in REGION_RANGES_NM.values()),
    max(hi for _, hi in REGION_RANGES_NM.values()),
)
FLOAT32_MAX = float(np.finfo(np.float32).max)
_CHECK_ROWS = 1024  # rows checked at a time: bounds the temporaries of the value checks


def _check_axis(raw: RawTable) -> tuple[list[int], np.ndarray]:
    """Positions of the spectral columns and their axis values (native unit, file order),
    as the file's header spells them (:attr:`RawTable.axis`); rejected when unusable."""
    cols, values = raw.spectral_columns, raw.axis
    if not cols:
        raise BadFileError(
            raw.source, "no spectral columns: no column header parses as a number (wavelength)"
        )
    if len(cols) < MIN_POINTS:
        raise BadFileError(raw.source, f"only {len(cols)} spectral points; at least {MIN_POINTS} are needed")
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
    return list(cols), values.copy()


def _numeric_block(raw: RawTable, cols: list[int]) -> np.ndarray:
    """(n, L) float64 of the spectral cells; text, inf and float32 overflow are rejected.

    ``raw.spectra`` itself when the reader parsed it (not copied: never modify it).
    """
    if raw.spectra is not None:
        values = raw.spectra
    else:
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
    for start in range(0, len(values), _CHECK_ROWS):
        chunk = values[start : start + _CHECK_ROWS]
        bad = ~(np.isfinite(chunk) | np.isnan(chunk)) | (np.abs(chunk) > FLOAT32_MAX)  # NaN compares False
        if bad.any():
            r, c = np.argwhere(bad)[0]
            value = chunk[r, c]
            what = "infinite value" if not np.isfinite(value) else f"value {value:g} beyond float32 range"
            raise BadFileError(raw.source, what, row=start + int(r) + 1, column=raw.header[cols[c]])
    return values


def _beyond_float32(values: np.ndarray) -> bool:
    """Any ``|value| > FLOAT32_MAX`` (NaN is not), checked a block of rows at a time."""
    return any(
        bool(np.any(np.abs(values[start : start + _CHECK_ROWS]) > FLOAT32_MAX))
        for start in range(0, len(values), _CHECK_ROWS)
    )


def count_duplicate_rows(values: np.ndarray) -> int:
    """Rows equal (``==``) to an earlier row: ``len(values) - len(np.unique(values, axis=0))``.

    Rows are grouped by a hash of their bytes (``-0.0`` made ``0.0`` first, as ``==`` has
    them equal) and compared exactly within a group, so no sorted copy of the table is made.
    NaN-free ``(n, L)`` float input (with NaN, ``np.unique`` itself is used).
    """
    if np.isnan(values).any():
        return int(len(values) - len(np.unique(values, axis=0)))
    first_of: dict[bytes, list[int]] = {}
    n_dup = 0
    for r, row in enumerate(values):
        key = hashlib.blake2b((row + 0.0).tobytes(), digest_size=16).digest()
        group = first_of.setdefault(key, [])
        if any(np.array_equal(values[g], row) for g in group):
            n_dup += 1
        else:
            group.append(r)
    return n_dup


def _fill_missing(values: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Drop all-NaN rows, fill the other gaps (:func:`~vitnirs.data.spectra_input.fill_gaps`,
    the package's one NaN rule). Returns ``(values, kept_row_mask)``."""
    values, empty_rows, filled = fill_gaps(values)
    if empty_rows.any():
        notes.append(f"{int(empty_rows.sum())} spectra with no values dropped (rows {_rows(empty_rows)})")
    if filled:
        notes.append(filled)
    return values[~empty_rows], ~empty_rows


def _rows(rows: np.ndarray, most: int = 5) -> str:
    """``rows`` as a short list: a boolean mask over rows (→ 1-based numbers) or row numbers."""
    rows = (np.flatnonzero(rows) + 1 if rows.dtype == bool else rows).tolist()
    return ", ".join(map(str, rows[:most])) + (f", … ({len(rows)} in all)" if len(rows) > most else "")


def _typed(frame: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """Text columns that parse entirely as numbers (with the file's decimal mark) become
    numeric; the rest stay text. Columns that already have a type (parquet) keep it."""
    out = {}
    for col in frame.columns:
        series = frame[col]
        if not (series.dtype == object or isinstance(series.dtype, pd.StringDtype)):
            out[col] = series
            continue
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


@dataclass
class ValidatedTable:
    """A validated file: the :class:`SpectralTable` for the store, and how its rows map back
    to the file's data rows (what ``vitnirs embed`` writes, one row per data row).

    Attributes
    ----------
    table:
        What :func:`build_table` returns.
    spectral_columns:
        Header positions of the spectral columns, file order (those with no value included).
    axis:
        ``(len(spectral_columns),)`` float64, their axis values as the header spells them
        (native unit, file order).
    kept_rows:
        ``(table.n_rows,)`` int, the 0-based data row of each row of ``table`` (rows with no
        spectral value and constant spectra are dropped).
    named_columns:
        The non-spectral columns of every data row with their names, as read (index
        ``0..n_rows-1``); :meth:`row_columns` gives them typed.
    decimal:
        The file's decimal mark.
    """

    table: SpectralTable
    spectral_columns: list[int]
    axis: np.ndarray
    kept_rows: np.ndarray
    named_columns: pd.DataFrame
    decimal: str = "."

    @property
    def n_rows(self) -> int:
        """Data rows in the file."""
        return len(self.named_columns)

    def row_columns(self) -> pd.DataFrame:
        """Targets and metadata of every data row, typed as :func:`build_table` types those of
        the kept rows (a column is numeric when every value of every row parses)."""
        return _typed(self.named_columns.reset_index(drop=True), self.decimal)


def build_table(raw: RawTable, *, name: str, declared: Declaration | None = None) -> SpectralTable:
    """Validate a raw table and convert it into a :class:`SpectralTable` (see module doc)."""
    return validate_table(raw, name=name, declared=declared).table


def validate_table(raw: RawTable, *, name: str, declared: Declaration | None = None) -> ValidatedTable:
    """:func:`build_table`, with the axis as parsed, the kept rows and every row's columns."""
    declared = declared or Declaration()
    notes = list(raw.warnings)
    cols, axis = _check_axis(raw)
    spectral_columns, parsed_axis = list(cols), axis.copy()
    every_row = _named_columns(raw, raw.other_columns, notes)
    others = every_row
    if "signal_type" in others.columns:
        declared = declared.merged_under(from_column(others["signal_type"], raw.source))

    values = _numeric_block(raw, cols)  # may be raw.spectra itself: copied before any change
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
    kept_rows = np.flatnonzero(kept)
    others, row_numbers = others[kept], kept_rows + 1  # file rows, 1-based

    constant = values.max(axis=1) == values.min(axis=1)
    if constant.all():
        raise BadFileError(raw.source, "every spectrum is constant (one value repeated across the axis)")
    if constant.any():
        notes.append(f"{int(constant.sum())} constant spectra dropped (rows {_rows(row_numbers[constant])})")
        values, others, kept_rows = values[~constant], others[~constant], kept_rows[~constant]

    unit = declared.unit
    if unit is None:
        unit, note = guess_unit(axis)
        notes.append(note)
    wavelengths_nm = to_nm(axis, unit)
    lattice_lo, lattice_hi = LATTICE_RANGE_NM
    outside = (wavelengths_nm < lattice_lo) | (wavelengths_nm > lattice_hi)
    if outside.any():  # no vitnirs model reads it: embedding refuses what it cannot read (data.coverage)
        notes.append(
            f"{int(outside.sum())} of {len(axis)} points ({wavelengths_nm.min():,.0f}–{wavelengths_nm.max():,.0f} nm "
            f"as {unit}) lie outside the lattice {lattice_lo:,.0f}–{lattice_hi:,.0f} nm: no model reads them"
            + ("" if declared.unit else "; declare the unit if the guess is wrong")
        )
    order = np.argsort(wavelengths_nm)
    if np.any(order != np.arange(len(order))) or not values.flags.c_contiguous:  # else no copy needed
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
    if _beyond_float32(stored):
        raise BadFileError(raw.source, "values beyond float32 range after conversion to absorbance")

    n_dup = count_duplicate_rows(values)
    if len(values) < FEW_ROWS:
        notes.append(f"only {len(values)} spectra: fine for pretraining, too few for a downstream split")

    target_cols = [c for c in others.columns if str(c).startswith("y_")]
    others = _typed(others.reset_index(drop=True), raw.decimal)
    table = SpectralTable(
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
    return ValidatedTable(
        table=table,
        spectral_columns=spectral_columns,
        axis=parsed_axis,
        kept_rows=kept_rows,
        named_columns=every_row,
        decimal=raw.decimal,
    )
