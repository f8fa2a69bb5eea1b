"""Read one text file of the bank into a raw table: bytes → text → header + cells.

This module only deals with the *file*: encoding, binary garbage, separator and decimal
mark, the header row, ragged rows. What the columns mean (spectral points, targets,
metadata) and whether the numbers are usable is decided in :mod:`vitnirs.data.validate`.

The bank's CSV convention: one header row; every header that parses as a number is a
spectral point; ``y_*`` columns are targets; any other column is metadata. Separators
``,`` ``;`` and tab are recognised, and a decimal comma with ``;`` or tab.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vitnirs.errors import BadFileError

_SNIFF_BYTES = 1 << 16
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


@dataclass
class RawTable:
    """The cells of one file, before any meaning is given to them.

    ``frame`` has one column per header cell (columns are positions 0..n-1, so repeated
    header names are not mangled); spectral columns are already numeric where pandas
    could parse them, ``object`` where some cell is text.
    """

    source: str
    header: list[str]
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    decimal: str = "."


def parse_number(text: str, decimal: str = ".") -> float | None:
    """The float a header cell spells (``'1100'``, ``'1100,5'`` with a decimal comma), or None."""
    cell = text.strip().strip('"').strip("'")
    if not _NUMBER.match(cell):
        return None
    if "," in cell:
        if decimal != ",":
            return None
        cell = cell.replace(",", ".")
    return float(cell)


def _decode(data: bytes, source: str) -> tuple[str, list[str]]:
    """Bytes → text: UTF-8 (with or without BOM), else cp1252/latin-1 with a warning."""
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head:
        raise BadFileError(source, "binary file (NUL bytes), not a text CSV")
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    if control > 0.01 * len(head):
        raise BadFileError(source, "binary file (control bytes), not a text CSV")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        for encoding in ("cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            return text, [f"not UTF-8 (first bad byte on line {line}): read as {encoding}"]
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


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


def _check_ragged(lines: list[str], sep: str, n_fields: int, source: str) -> None:
    """Every data row must have as many fields as the header (extra empty fields allowed)."""
    for i, line in enumerate(lines[1:], start=1):
        if '"' not in line and line.count(sep) + 1 == n_fields:
            continue
        fields = _split_line(line, sep)
        if len(fields) == n_fields or (
            len(fields) > n_fields and not any(f.strip() for f in fields[n_fields:])
        ):
            continue
        raise BadFileError(
            source,
            f"ragged rows: this row has {len(fields)} fields but the header has {n_fields}",
            row=i,
        )


def read_csv(path: str | Path) -> RawTable:
    """Read one bank file into a :class:`RawTable`; :class:`BadFileError` if it cannot be.

    Rows are numbered from 1 (the header is row 0); blank lines are dropped first.
    """
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BadFileError(source, f"cannot read the file ({err.strerror or err})") from err
    if not data.strip():
        raise BadFileError(source, "file is empty")
    text, notes = _decode(data, source)
    lines = text.splitlines()
    n_blank = sum(1 for line in lines if not line.strip())
    lines = [line for line in lines if line.strip()]
    if n_blank and n_blank != len(lines):
        trailing = len(text.splitlines()) - len(text.rstrip().splitlines())
        if n_blank > trailing:
            notes.append(f"{n_blank - trailing} blank lines skipped")
    if len(lines) < 2:
        raise BadFileError(source, "header only: the file has no data rows")

    sep, decimal = _sniff(lines[0], lines[1])
    header = [h.strip() for h in _split_line(lines[0], sep)]
    _check_ragged(lines, sep, len(header), source)

    # Spectral columns are parsed as floats by pandas' C parser; every other column is text.
    numeric = {i for i, h in enumerate(header) if parse_number(h, decimal) is not None}
    try:
        frame = pd.read_csv(
            io.StringIO("\n".join(lines[1:])),
            sep=sep,
            decimal=decimal,
            header=None,
            names=list(range(len(header))),
            usecols=range(len(header)),
            dtype={i: str for i in range(len(header)) if i not in numeric},
            keep_default_na=True,
            skipinitialspace=True,
            engine="c",
            low_memory=False,
        )
    except (pd.errors.ParserError, ValueError) as err:
        raise BadFileError(source, f"cannot parse the rows ({str(err).strip()})") from err
    return RawTable(source=source, header=header, frame=frame, warnings=notes, decimal=decimal)
