"""Read one text file of the bank into a raw table: bytes → text → header + cells.

This module only deals with the *file*: encoding, binary garbage, separator and decimal
mark, the header row, ragged rows. What the columns mean (spectral points, targets,
metadata) and whether the numbers are usable is decided in :mod:`vitnirs.data.validate`.

The bank's CSV convention: one header row; every header that parses as a number is a
spectral point (:func:`parse_wavelength`, the one place a header becomes a wavelength);
``y_*`` columns are targets; any other column is metadata. Separators ``,`` ``;`` and tab
are recognised, and a decimal comma with ``;`` or tab.

The file is streamed, never held whole in memory: one pass over its bytes settles the
encoding, one over its lines counts them and checks the rows, and a third feeds pandas'
C parser the data lines, ``chunk_rows`` rows at a time, into one preallocated float64
block of spectral values. Every cell gets the value a single whole-file parse gives it;
the rare files where pandas' per-chunk type inference could differ from the whole-file
one (a spectral column with text, booleans or integers only in some chunks) are parsed
whole instead.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vitnirs.errors import BadFileError

__all__ = ["CHUNK_ROWS", "RawTable", "parse_wavelength", "read_csv", "spectral_axis"]

CHUNK_ROWS = 2048  # rows per pandas chunk: bounds the parser's memory, not the result
_SNIFF_BYTES = 1 << 16
_BLOCK_BYTES = 1 << 22  # bytes read at a time (~6 copies of a block live at once); blocks end at a line break
_EXACT_INT = 2**53  # integers up to this are exact in float64
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def parse_wavelength(header: str, decimal: str | None = ".") -> float | None:
    """The axis value a column header spells (``'1100'``, ``'1100,5'`` with a decimal comma), or None.

    ``decimal`` is the file's decimal mark: with ``"."`` a comma makes the header text,
    with ``","`` both marks are read; ``None`` (unknown, e.g. a DataFrame's column names)
    reads both.
    """
    cell = header.strip().strip('"').strip("'")
    if not _NUMBER.match(cell):
        return None
    if "," in cell:
        if decimal == ".":
            return None
        cell = cell.replace(",", ".")
    return float(cell)


def spectral_axis(header: Iterable[str], decimal: str | None = ".") -> tuple[list[int], np.ndarray]:
    """Positions of the headers that are wavelengths and their ``(L,)`` float64 values, in file order."""
    positions, values = [], []
    for i, h in enumerate(header):
        value = parse_wavelength(h, decimal) if h else None
        if value is not None:
            positions.append(i)
            values.append(value)
    return positions, np.asarray(values, dtype=np.float64)


@dataclass
class RawTable:
    """The cells of one file, before any meaning is given to them.

    ``frame`` has one column per header cell (columns are positions 0..n-1, so repeated
    header names are not mangled); spectral columns are already numeric where pandas
    could parse them, ``object`` where some cell is text. When ``spectra`` is given it
    holds the spectral columns, ``(n_rows, L)`` float64 in file order with NaN where a
    cell is missing, and ``frame`` only the other positions. ``spectral_columns`` and
    ``axis`` are the header parsed once with the file's decimal mark (:func:`spectral_axis`;
    from ``header`` when not given).
    """

    source: str
    header: list[str]
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    decimal: str = "."
    spectra: np.ndarray | None = None
    spectral_columns: list[int] | None = None
    axis: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.spectral_columns is None or self.axis is None:
            self.spectral_columns, self.axis = spectral_axis(self.header, self.decimal)

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def other_columns(self) -> list[int]:
        """Positions of the non-spectral columns (targets and metadata)."""
        spectral = set(self.spectral_columns)
        return [i for i in range(len(self.header)) if i not in spectral]


# ----------------------------------------------------------------------------- bytes → lines
def _byte_blocks(path: Path) -> Iterator[bytes]:
    """The file in blocks of about ``_BLOCK_BYTES``, each ending at a line break (``\\n``, or
    ``\\r`` not followed by ``\\n``) but the last: no line and no character spans two blocks
    in UTF-8, cp1252 or latin-1."""
    with open(path, "rb") as fh:
        parts: list[bytes] = []  # read since the last cut
        while block := fh.read(_BLOCK_BYTES):
            cut = block.rfind(b"\n") + 1 or block.rfind(b"\r", 0, len(block) - 1) + 1
            if cut == 0:
                parts.append(block)
                continue
            yield b"".join([*parts, block[:cut]])
            parts = [block[cut:]]
        if tail := b"".join(parts):
            yield tail


def _decoded(path: Path, encoding: str) -> Iterator[str]:
    """The file's text block by block, as ``data.decode(encoding)`` decodes it whole."""
    for i, block in enumerate(_byte_blocks(path)):
        yield block.decode(encoding if i == 0 or encoding != "utf-8-sig" else "utf-8")


def _check_binary(head: bytes, source: str) -> None:
    """NUL bytes, or more than 1 % control bytes, in the first ``_SNIFF_BYTES``: not text."""
    if b"\x00" in head:
        raise BadFileError(source, "binary file (NUL bytes), not a text CSV")
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    if control > 0.01 * len(head):
        raise BadFileError(source, "binary file (control bytes), not a text CSV")


def _encoding(path: Path, source: str) -> tuple[str, list[str]]:
    """The file's encoding: UTF-8 (with or without BOM), else cp1252/latin-1 with a warning."""
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    nonblank = bool(head.strip())
    if nonblank:  # not empty: a binary file is refused before it is read whole
        _check_binary(head, source)
    bom = 3 if head.startswith(codecs.BOM_UTF8) else 0
    offset, bad = 0, None
    for i, block in enumerate(_byte_blocks(path)):
        nonblank = nonblank or bool(block.strip())
        if bad is None:
            try:
                block.decode("utf-8-sig" if i == 0 else "utf-8")
            except UnicodeDecodeError as err:  # where `data.decode("utf-8-sig")` says: after the BOM
                bad = offset + err.start - (bom if i > 0 else 0)
        offset += len(block)
    if not nonblank:
        raise BadFileError(source, "file is empty")
    _check_binary(head, source)
    if bad is None:
        return "utf-8-sig", []
    line = _count_newlines(path, bad) + 1
    try:
        for _ in _decoded(path, "cp1252"):
            pass
        encoding = "cp1252"
    except UnicodeDecodeError:
        encoding = "latin-1"  # decodes every byte
    return encoding, [f"not UTF-8 (first bad byte on line {line}): read as {encoding}"]


def _count_newlines(path: Path, n_bytes: int) -> int:
    """``b"\\n"`` in the first ``n_bytes`` bytes of the file."""
    count = 0
    with open(path, "rb") as fh:
        while n_bytes > 0 and (block := fh.read(min(_BLOCK_BYTES, n_bytes))):
            count += block.count(b"\n")
            n_bytes -= len(block)
    return count


def _lines(path: Path, encoding: str) -> Iterator[list[str]]:
    """The non-blank lines of the file (``text.splitlines()``, blank ones dropped), per block."""
    for text in _decoded(path, encoding):
        yield [line for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- lines → header
def _sniff(header_line: str, first_row: str | None) -> tuple[str, str]:
    """Separator and decimal mark from the header (and first data row)."""
    if "\t" in header_line:
        sep = "\t"
    elif ";" in header_line:
        sep = ";"
    elif "," in header_line:
        sep = ","
    else:
        return ",", "."  # one column: reported later as "no spectral columns"
    decimal = "."
    if sep != ",":
        sample = header_line.split(sep) + (first_row.split(sep) if first_row else [])
        if any(re.match(r"^\s*[+-]?\d+,\d+\s*$", cell) for cell in sample):
            decimal = ","
    return sep, decimal


def _split_line(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep))


def _ragged(line: str, sep: str, n_fields: int) -> int | None:
    """The number of fields of a data row that does not match the header, else None
    (extra empty fields are allowed)."""
    if '"' not in line and line.count(sep) + 1 == n_fields:
        return None
    fields = _split_line(line, sep)
    if len(fields) == n_fields or (len(fields) > n_fields and not any(f.strip() for f in fields[n_fields:])):
        return None
    return len(fields)


@dataclass
class _Scan:
    """What one pass over the lines found: the header, its format, the row count, notes."""

    header: list[str]
    sep: str
    decimal: str
    n_data_lines: int
    notes: list[str]


def _scan(path: Path, encoding: str, notes: list[str], source: str) -> _Scan:
    """Count the lines, sniff the format from the first two, check every row's field count.

    Rows are numbered from 1 (the header is row 0) among the non-blank lines.
    """
    n_blank = trailing = n_kept = 0
    first: list[str] = []
    sep = decimal = ""
    header: list[str] = []
    for text in _decoded(path, encoding):
        for line in text.splitlines():
            if not line.strip():
                n_blank += 1
                trailing += 1
                continue
            trailing = 0
            n_kept += 1
            if n_kept <= 2:
                first.append(line)
                if n_kept == 1:
                    continue
                sep, decimal = _sniff(first[0], first[1])
                header = [h.strip() for h in _split_line(first[0], sep)]
            n_fields = _ragged(line, sep, len(header))
            if n_fields is not None:
                raise BadFileError(
                    source,
                    f"ragged rows: this row has {n_fields} fields but the header has {len(header)}",
                    row=n_kept - 1,
                )
    if n_blank and n_blank != n_kept and n_blank > trailing:
        notes.append(f"{n_blank - trailing} blank lines skipped")
    if n_kept < 2:
        raise BadFileError(source, "header only: the file has no data rows")
    return _Scan(header=header, sep=sep, decimal=decimal, n_data_lines=n_kept - 1, notes=notes)


# ----------------------------------------------------------------------------- lines → cells
class _DataText(io.TextIOBase):
    """The data lines joined by ``"\\n"`` (what the parser reads), produced block by block."""

    def __init__(self, blocks: Iterator[list[str]]):
        self._pieces = self._join(blocks)
        self._buffer, self._pos = "", 0

    @staticmethod
    def _join(blocks: Iterator[list[str]]) -> Iterator[str]:
        """``"\\n".join(lines[1:])`` over the blocks' lines, one piece per block."""
        started, header = False, True
        for lines in blocks:
            if header and lines:
                lines, header = lines[1:], False
            if lines:
                yield "\n".join([""] + lines if started else lines)
                started = True

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            out = self._buffer[self._pos :] + "".join(self._pieces)
            self._buffer, self._pos = "", 0
            return out
        while len(self._buffer) - self._pos < size and (piece := next(self._pieces, None)) is not None:
            self._buffer, self._pos = self._buffer[self._pos :] + piece, 0
        out = self._buffer[self._pos : self._pos + size]
        self._pos += len(out)
        return out


def _read_options(scan: _Scan, spectral: list[int]) -> dict:
    """The pandas ``read_csv`` options: spectral columns parsed as numbers, the others as text."""
    n = len(scan.header)
    numeric = set(spectral)
    return {
        "sep": scan.sep,
        "decimal": scan.decimal,
        "header": None,
        "names": list(range(n)),
        "usecols": range(n),
        "dtype": {i: str for i in range(n) if i not in numeric},
        "keep_default_na": True,
        "skipinitialspace": True,
        "engine": "c",
        "low_memory": False,
    }


def _parse_whole(path: Path, encoding: str, scan: _Scan, spectral: list[int], source: str) -> pd.DataFrame:
    """Every cell, from one parse of the whole data text (the parser holds all its tokens)."""
    try:
        return pd.read_csv(_DataText(_lines(path, encoding)), **_read_options(scan, spectral))
    except (pd.errors.ParserError, ValueError) as err:
        raise BadFileError(source, f"cannot parse the rows ({str(err).strip()})") from err


def _parse_chunks(
    path: Path, encoding: str, scan: _Scan, spectral: list[int], chunk_rows: int, source: str
) -> tuple[np.ndarray, pd.DataFrame] | None:
    """``(spectra, other columns)`` parsed ``chunk_rows`` rows at a time, or None when a chunk's
    type inference may differ from the whole-file parse (then :func:`_parse_whole`)."""
    n_max = scan.n_data_lines  # rows <= lines: a quoted cell may span lines
    numeric = set(spectral)
    others = [i for i in range(len(scan.header)) if i not in numeric]
    spectra = np.empty((n_max, len(spectral)), dtype=np.float64)  # [n_rows, L]
    has_float = np.zeros(len(spectral), dtype=bool)
    risky_int = np.zeros(len(spectral), dtype=bool)  # an integer chunk that float parsing could differ from
    frames, row = [], 0
    stream = _DataText(_lines(path, encoding))
    try:
        for chunk in pd.read_csv(stream, chunksize=chunk_rows, **_read_options(scan, spectral)):
            block = chunk[spectral]
            kinds = np.array([dtype.kind for dtype in block.dtypes], dtype="U1")
            if not np.isin(kinds, ("f", "i")).all() or row + len(chunk) > n_max:
                return None  # text, booleans, unsigned: the whole-file parse decides
            ints = kinds == "i"
            if ints.any():
                v = block.loc[:, ints].to_numpy()
                risky = (v == 0) | (v > _EXACT_INT) | (v < -_EXACT_INT)  # was it "-0"? beyond 2**53?
                risky_int[ints] |= risky.any(axis=0)
            has_float |= kinds == "f"
            spectra[row : row + len(chunk)] = block.to_numpy(dtype=np.float64)
            frames.append(chunk[others])
            row += len(chunk)
    except (pd.errors.ParserError, ValueError) as err:
        raise BadFileError(source, f"cannot parse the rows ({str(err).strip()})") from err
    if (has_float & risky_int).any():
        return None  # the whole-file parse reads such a column's integers as floats
    frame = pd.concat(frames) if frames else pd.DataFrame(columns=others)
    frame.index = pd.RangeIndex(row)
    return spectra[:row], frame


def read_csv(path: str | Path, *, chunk_rows: int = CHUNK_ROWS) -> RawTable:
    """Read one bank file into a :class:`RawTable`; :class:`BadFileError` if it cannot be.

    Rows are numbered from 1 (the header is row 0); blank lines are dropped first. The
    result does not depend on ``chunk_rows`` (rows parsed at a time).
    """
    path = Path(path)
    source = str(path)
    try:
        encoding, notes = _encoding(path, source)
        scan = _scan(path, encoding, notes, source)
        spectral, axis = spectral_axis(scan.header, scan.decimal)
        parsed = _parse_chunks(path, encoding, scan, spectral, max(1, chunk_rows), source)
        spectra, frame = parsed or (None, _parse_whole(path, encoding, scan, spectral, source))
    except OSError as err:
        raise BadFileError(source, f"cannot read the file ({err.strerror or err})") from err
    return RawTable(
        source=source, header=scan.header, frame=frame, warnings=notes, decimal=scan.decimal,
        spectra=spectra, spectral_columns=spectral, axis=axis,
    )  # fmt: skip
