"""The streamed reader: a header becomes a wavelength in one place, chunked parsing gives what
one whole-file parse gives (every number, note and error), memory stays near the size of the
values, and ``validate_table`` maps the table back to the file's rows."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from conftest import WAVELENGTHS, good_rows, smooth_spectra

import vitnirs.data.csv as csv_module
from vitnirs.data.csv import parse_wavelength, read_csv, spectral_axis
from vitnirs.data.declarations import declaration
from vitnirs.data.validate import build_table, count_duplicate_rows, validate_table
from vitnirs.errors import BadFileError

ABS = declaration("nm", "absorbance", "test")


def test_parse_wavelength_uses_the_files_decimal_mark():
    assert parse_wavelength("1100") == 1100.0 and parse_wavelength(" '1100.5' ") == 1100.5
    assert parse_wavelength("1100,5", ".") is None  # a comma in a decimal-point file: text
    assert parse_wavelength("1100,5", ",") == 1100.5 and parse_wavelength("1100.5", ",") == 1100.5
    assert parse_wavelength("1100,5", None) == 1100.5  # mark unknown (column names): both read
    assert parse_wavelength("y_fat") is None and parse_wavelength("") is None
    assert spectral_axis(["id", "1100", "x", "1e3"])[0] == [1, 3]


def test_the_header_is_parsed_once_with_the_files_decimal_mark(csvs):
    header, rows = good_rows(25)
    # a comma-separated file (decimal point): a quoted "1100,5" header is a metadata column
    dot = csvs.table("dot.csv", ["sample_id", '"1100,5"', *WAVELENGTHS], [[r[0], 1, *r[2:]] for r in rows])
    raw = read_csv(dot)
    assert raw.decimal == "." and raw.spectral_columns == list(range(2, 14))
    result = validate_table(raw, name="dot", declared=ABS)
    assert list(result.table.metadata.columns) == ["sample_id", "1100,5"]
    np.testing.assert_array_equal(result.axis, WAVELENGTHS)
    # a ;-separated file with a decimal comma: the same header is a wavelength
    cells = [[r[0], *(str(v).replace(".", ",") for v in r[2:])] for r in rows]
    comma = csvs.table("comma.csv", ["sample_id", *(f"{w},5" for w in WAVELENGTHS)], cells, sep=";")
    raw = read_csv(comma)
    assert raw.decimal == "," and raw.axis.tolist() == [w + 0.5 for w in WAVELENGTHS]
    table = build_table(raw, name="comma", declared=ABS)
    np.testing.assert_array_equal(table.wavelengths_nm, raw.axis)


def _tricky_rows(n: int = 40) -> tuple[list, list[list]]:
    """Rows that hit every per-chunk case: gaps, an empty row, a constant row, a duplicate,
    a column of integers then floats, quoted text with the separator inside."""
    X = smooth_spectra(n)
    header = ["sample_id", "site", "y_a", *WAVELENGTHS]
    rows = []
    for i in range(n):
        cells: list = [f"s{i:02d}", f'"north, {i}"', round(0.5 * i, 3), *X[i]]
        cells[4] = int(round(X[i, 1] * 100)) if i < 25 else X[i, 1]  # integers, then floats
        rows.append(cells)
    rows[5][5] = ""
    rows[31][6:9] = ["", "NA", ""]
    rows[12][3:] = [""] * len(WAVELENGTHS)  # no value at all
    rows[17][3:] = [0.5] * len(WAVELENGTHS)  # constant
    rows[33] = [rows[33][0], rows[33][1], rows[33][2], *rows[20][3:]]  # the spectrum of row 20
    return header, rows


def _summary(path, chunk_rows: int) -> dict:
    try:
        result = validate_table(read_csv(path, chunk_rows=chunk_rows), name="t", declared=ABS)
    except BadFileError as err:
        return {"error": err.to_dict()}
    t = result.table
    return {
        "values": t.values.tobytes(),
        "wavelengths": t.wavelengths_nm.tobytes(),
        "targets": t.targets.to_dict("list"),
        "metadata": t.metadata.to_dict("list"),
        "dtypes": [str(d) for d in [*t.targets.dtypes, *t.metadata.dtypes]],
        "facts": (t.signal_type_original, t.native_axis_first, t.warnings, t.n_duplicated_spectra),
        "kept_rows": result.kept_rows.tolist(),
        "row_columns": result.row_columns().to_dict("list"),
    }


@pytest.mark.parametrize(
    "variant",
    ["plain", "crlf", "cr", "blank_lines", "cp1252_bom", "negative_zero_integers", "text_late"],
)
def test_chunks_and_blocks_change_nothing(csvs, monkeypatch, variant):
    header, rows = _tricky_rows()
    if variant == "negative_zero_integers":  # integers (one "-0") in some chunks, floats in others
        for i, row in enumerate(rows):
            row[5] = "-0" if i == 2 else (i if i < 25 else row[5])
    if variant == "text_late":
        rows[38][9] = "n.d."
    text = csvs.csv_text(header, rows)
    if variant == "blank_lines":
        lines = text.split("\n")
        text = "\n\n".join(lines[:10]) + "\n \n" + "\n".join(lines[10:]) + "\n\n\n"
    data = text.encode()
    if variant in ("crlf", "cr"):
        data = data.replace(b"\n", b"\r\n" if variant == "crlf" else b"\r")
    if variant == "cp1252_bom":
        data = b"\xef\xbb\xbf" + data.replace(b"s30", "s30é".encode("cp1252"))
    path = csvs.text("tricky.csv", data)
    whole = _summary(path, chunk_rows=10**6)  # one chunk, one block: the parse of the whole text
    assert ("error" in whole) == (variant == "text_late")
    for chunk_rows, block_bytes in ((1, 7), (3, 64), (16, 1 << 24)):
        monkeypatch.setattr(csv_module, "_BLOCK_BYTES", block_bytes)
        assert _summary(path, chunk_rows) == whole, (chunk_rows, block_bytes)


def test_validate_table_maps_the_table_back_to_the_files_rows(csvs):
    header, rows = _tricky_rows()
    result = validate_table(read_csv(csvs.table("t.csv", header, rows)), name="t", declared=ABS)
    assert result.n_rows == 40 and result.spectral_columns == list(range(3, 15))
    assert result.kept_rows.tolist() == [i for i in range(40) if i not in (12, 17)]
    assert result.table.n_rows == 38 and result.table.n_duplicated_spectra == 1
    every = result.row_columns()
    assert len(every) == 40 and every["sample_id"].tolist() == [f"s{i:02d}" for i in range(40)]
    assert every["site"][7] == "north, 7" and every["y_a"].dtype == np.float64


def test_duplicate_rows_counted_as_np_unique_counts_them():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 9))
    X[10] = X[3]
    X[11] = X[3]
    X[20, :] = 0.0
    X[21, :] = -0.0  # equal under ==
    X[30] = X[31]
    assert count_duplicate_rows(X) == len(X) - len(np.unique(X, axis=0)) == 4
    assert count_duplicate_rows(X[:0]) == 0


def test_reading_holds_little_more_than_the_values(csvs, monkeypatch):
    """The text is streamed: no whole copy of it (or of its lines) is held, nor a float64 copy
    of the values beside the block they are read into (the whole-text reader peaked at 8x)."""
    X = smooth_spectra(3000, n_points=200)
    path = csvs.table("big.csv", ["sample_id", *range(1000, 1200)], [[f"s{i}", *X[i]] for i in range(len(X))])
    monkeypatch.setattr(csv_module, "_BLOCK_BYTES", 1 << 16)
    tracemalloc.start()
    try:
        raw = read_csv(path, chunk_rows=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raw.spectra.shape == X.shape and path.stat().st_size > 0.9 * X.nbytes
    assert peak < 2 * X.nbytes, f"peak {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.1f} MiB of values"
