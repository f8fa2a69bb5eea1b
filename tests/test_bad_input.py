"""Bad and untidy bank files: each is rejected with a plain reason (file, row, column) or kept
with the right warning, and the kept values are exactly what the file says, converted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vitnirs.data.bank import bank_jobs
from vitnirs.data.csv import read_csv
from vitnirs.data.declarations import Declaration, declaration
from vitnirs.data.validate import build_table
from vitnirs.errors import BadFileError, VitnirsError

ABSORBANCE_NM = declaration("nm", "absorbance", "test")


def build(path: Path, declared: Declaration | None = ABSORBANCE_NM):
    return build_table(read_csv(path), name=path.stem, declared=declared)


def rejected(path: Path, declared: Declaration | None = ABSORBANCE_NM) -> BadFileError:
    with pytest.raises(BadFileError) as info:
        build(path, declared)
    err = info.value
    assert err.file == str(path)
    assert str(err).startswith(f"{path}: {err.reason}")
    return err


def with_cell(rows: list[list], row: int, col: int, value) -> list[list]:
    out = [list(r) for r in rows]
    out[row][col] = value
    return out


# ----------------------------------------------------------------------------- rejected files
def test_empty_file(csvs):
    path = csvs.text("empty.csv", "")
    err = rejected(path)
    assert str(err) == f"{path}: file is empty"
    assert (err.row, err.column) == (None, None)


def test_whitespace_only_file_is_empty(csvs):
    path = csvs.text("blank.csv", "\n  \n\t\n")
    assert rejected(path).reason == "file is empty"


def test_header_only(csvs):
    header, _ = csvs.rows()
    path = csvs.table("header.csv", header, [])
    assert str(rejected(path)) == f"{path}: header only: the file has no data rows"


def test_no_numeric_header(csvs):
    path = csvs.table("words.csv", ["id", "colour", "weight"], [["a", "red", "1.0"], ["b", "blue", "2.0"]])
    err = rejected(path)
    assert err.reason == "no spectral columns: no column header parses as a number (wavelength)"


def test_ragged_row_with_too_many_fields(csvs):
    header, rows = csvs.rows()
    rows[3] = [*rows[3], 0.123]  # data row 4
    err = rejected(csvs.table("long.csv", header, rows))
    assert err.reason == "ragged rows: this row has 15 fields but the header has 14"
    assert (err.row, err.column) == (4, None)
    assert str(err).endswith("(row 4)")


def test_ragged_row_with_too_few_fields(csvs):
    header, rows = csvs.rows()
    rows[6] = rows[6][:-2]  # data row 7
    err = rejected(csvs.table("short.csv", header, rows))
    assert err.reason == "ragged rows: this row has 12 fields but the header has 14"
    assert err.row == 7


def test_trailing_empty_fields_are_not_ragged(csvs):
    header, rows = csvs.rows()
    rows = [[*r, ""] for r in rows]  # a trailing separator on every data row
    table = build(csvs.table("trailing.csv", header, rows))
    assert table.values.shape == (25, 12)


def test_text_inside_the_spectrum(csvs):
    header, rows = csvs.rows()
    rows = with_cell(rows, 5, 2 + 3, "n/a?")  # data row 6, column '1130'
    err = rejected(csvs.table("text.csv", header, rows))
    assert err.reason == "text inside the spectrum: 'n/a?' is not a number"
    assert (err.row, err.column) == (6, "1130")


def test_infinite_value(csvs):
    header, rows = csvs.rows()
    rows = with_cell(rows, 6, 2 + 3, "inf")  # data row 7, column '1130'
    err = rejected(csvs.table("inf.csv", header, rows))
    assert err.reason == "infinite value"
    assert (err.row, err.column) == (7, "1130")
    assert str(err).endswith("(row 7, column '1130')")


def test_negative_infinite_value(csvs):
    header, rows = csvs.rows()
    err = rejected(csvs.table("ninf.csv", header, with_cell(rows, 0, 2, "-inf")))
    assert (err.reason, err.row, err.column) == ("infinite value", 1, "1100")


def test_value_beyond_float32_range(csvs):
    header, rows = csvs.rows()
    rows = with_cell(rows, 7, 2 + 11, "1e39")  # data row 8, column '1210'
    err = rejected(csvs.table("huge.csv", header, rows))
    assert err.reason == "value 1e+39 beyond float32 range"
    assert (err.row, err.column) == (8, "1210")


def test_duplicate_wavelengths(csvs):
    header, rows = csvs.rows()
    header[2 + 4] = 1130  # '1130' twice
    err = rejected(csvs.table("dup.csv", header, rows))
    assert err.reason == "duplicate wavelength 1130 (columns '1130' and '1130')"
    assert err.column == "1130"


def test_duplicate_wavelengths_spelled_differently(csvs):
    header, rows = csvs.rows()
    header[2 + 1] = "1100.0"  # '1100' and '1100.0' are the same wavelength
    err = rejected(csvs.table("dup2.csv", header, rows))
    assert err.reason == "duplicate wavelength 1100 (columns '1100' and '1100.0')"
    assert err.column == "1100.0"


def test_non_monotonic_wavelengths(csvs):
    header, rows = csvs.rows()
    header[2 + 3], header[2 + 4] = header[2 + 4], header[2 + 3]  # ... 1120, 1140, 1130, 1150 ...
    err = rejected(csvs.table("shuffled.csv", header, rows))
    assert err.reason == (
        "wavelength axis is not monotonic: 1130 follows 1140 in a rising axis "
        "(mixed units or shuffled columns?)"
    )


def test_non_monotonic_wavelengths_names_the_offending_column(csvs):
    header, rows = csvs.rows()
    header[2 + 3], header[2 + 4] = header[2 + 4], header[2 + 3]
    err = rejected(csvs.table("shuffled.csv", header, rows))
    assert err.column == "1130"


def test_fewer_than_10_spectral_points(csvs):
    header, rows = csvs.rows()
    path = csvs.table("nine.csv", header[:11], [r[:11] for r in rows])  # 9 wavelengths
    assert rejected(path).reason == "only 9 spectral points; at least 10 are needed"


def test_ten_spectral_points_are_enough(csvs):
    header, rows = csvs.rows()
    table = build(csvs.table("ten.csv", header[:12], [r[:12] for r in rows]))
    assert table.n_points == 10


def test_binary_garbage_with_nul_bytes(csvs):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes() + b"\x00\x00"
    path = csvs.text("garbage.csv", data)
    assert str(rejected(path)) == f"{path}: binary file (NUL bytes), not a text CSV"


def test_binary_garbage_with_control_bytes(csvs):
    path = csvs.text("ctrl.csv", bytes(range(1, 9)) * 200)
    assert rejected(path).reason == "binary file (control bytes), not a text CSV"


def test_every_spectral_value_missing(csvs):
    header, rows = csvs.rows(5)
    path = csvs.table("allnan.csv", header, [[*r[:2], *[""] * 12] for r in rows])
    assert rejected(path).reason == "every spectral value is missing"


def test_all_spectra_constant_is_rejected(csvs):
    header, rows = csvs.rows()
    path = csvs.table("flat.csv", header, [[*r[:2], *[0.5] * 12] for r in rows])
    assert rejected(path).reason == "every spectrum is constant (one value repeated across the axis)"


def test_non_positive_wavelength_header(csvs):
    header, rows = csvs.rows()
    header[2] = -5
    err = rejected(csvs.table("neg_axis.csv", header, rows))
    assert (err.reason, err.column) == ("wavelength headers must be positive numbers", "-5")


def test_signal_type_column_with_several_values(csvs):
    header, rows = csvs.rows()
    header[0] = "signal_type"
    rows = [["absorbance" if i % 2 else "reflectance", *r[1:]] for i, r in enumerate(rows)]
    err = rejected(csvs.table("mixed.csv", header, rows), declaration("nm", None, "test"))
    assert err.reason == "the 'signal_type' column holds several values (absorbance, reflectance)"


# ----------------------------------------------------------------------------- kept with a warning
def test_latin1_metadata_value_is_kept_with_a_warning(csvs):
    header, rows = csvs.rows()
    rows[2][0] = "café"  # data row 3 = line 4 of the file
    path = csvs.text("latin.csv", csvs.csv_text(header, rows).encode("latin-1"))
    table = build(path)
    assert table.warnings == ["not UTF-8 (first bad byte on line 4): read as cp1252"]
    assert table.metadata["sample_id"][2] == "café"
    assert table.n_rows == 25


def test_latin1_header_is_kept_with_a_warning(csvs):
    header, rows = csvs.rows()
    header[0] = "échantillon"
    table = build(csvs.text("latin_header.csv", csvs.csv_text(header, rows).encode("latin-1")))
    assert table.warnings == ["not UTF-8 (first bad byte on line 1): read as cp1252"]
    assert list(table.metadata.columns) == ["échantillon"]


def test_utf8_bom_is_not_a_warning(csvs):
    header, rows = csvs.rows()
    table = build(csvs.text("bom.csv", b"\xef\xbb\xbf" + csvs.csv_text(header, rows).encode()))
    assert table.warnings == []
    assert list(table.metadata.columns) == ["sample_id"]


def test_nan_block_is_interpolated_and_empty_row_dropped(csvs):
    header, rows = csvs.rows()
    for r in (3, 4, 5):  # data rows 4-6: a 3 x 4 hole, columns 1120-1150
        for c in range(2 + 2, 2 + 6):
            rows[r][c] = ""
    rows[10] = [*rows[10][:2], *[""] * 12]  # data row 11: no values at all
    table = build(csvs.table("holes.csv", header, rows))
    assert table.warnings == [
        "1 spectra with no values dropped (rows 11)",
        "12 missing values in 3 spectra filled by linear interpolation along the wavelength axis",
    ]
    assert table.n_rows == 24
    assert "s10" not in set(table.metadata["sample_id"])
    assert table.metadata["sample_id"].tolist()[9:11] == ["s09", "s11"]
    row = np.array([float(v) for v in rows[4][2:] if v != ""])  # 8 known values of data row 5
    known_idx = np.array([0, 1, 6, 7, 8, 9, 10, 11])
    filled = np.interp(np.arange(12), known_idx, row)
    np.testing.assert_allclose(table.values[4], filled.astype(np.float32), rtol=1e-6)
    assert np.isfinite(table.values).all()


def test_empty_spectral_column_is_dropped(csvs):
    header, rows = csvs.rows()
    header, rows = [*header, 1220], [[*r, ""] for r in rows]
    table = build(csvs.table("emptycol.csv", header, rows))
    assert table.n_points == 12
    assert table.warnings == ["1 spectral columns with no values dropped"]


def test_constant_spectra_are_dropped(csvs):
    header, rows = csvs.rows()
    rows[4] = [*rows[4][:2], *[0.5] * 12]  # data row 5
    rows[9] = [*rows[9][:2], *[1.25] * 12]  # data row 10
    table = build(csvs.table("const.csv", header, rows))
    assert table.warnings == ["2 constant spectra dropped (rows 5, 10)"]
    assert table.n_rows == 23
    assert {"s04", "s09"}.isdisjoint(table.metadata["sample_id"])
    assert len(table.targets) == 23


def test_constant_spectrum_row_number_after_a_dropped_empty_row(csvs):
    header, rows = csvs.rows()
    rows[1] = [*rows[1][:2], *[""] * 12]  # data row 2: empty, dropped
    rows[4] = [*rows[4][:2], *[0.5] * 12]  # data row 5: constant
    table = build(csvs.table("const2.csv", header, rows))
    assert "1 constant spectra dropped (rows 5)" in table.warnings


def test_a_handful_of_rows_is_kept_with_a_warning(csvs):
    table = build(csvs.good("five.csv", n=5))
    assert table.n_rows == 5
    assert table.warnings == ["only 5 spectra: fine for pretraining, too few for a downstream split"]


def test_twenty_rows_give_no_few_rows_warning(csvs):
    assert build(csvs.good("twenty.csv", n=20)).warnings == []


def test_large_and_negative_absorbance_is_kept_unchanged(csvs):
    A = np.round(np.random.default_rng(3).normal(0.0, 3000.0, (25, 12)), 2)
    A[0, :3] = [-4500.25, 12000.5, -0.01]
    table = build(csvs.table("big_abs.csv", csvs.wavelengths, A.tolist()))
    assert table.warnings == []
    assert (table.signal_type_original, table.signal_type_stored) == ("absorbance", "absorbance")
    assert table.values.dtype == np.float32
    np.testing.assert_array_equal(table.values, A.astype(np.float32))


def test_transmittance_percent_above_100(csvs):
    T = np.round(20 + 60 * np.random.default_rng(1).random((25, 12)), 3)
    T[0, 0], T[3, 4] = 120.0, 105.0
    table = build(csvs.table("trans.csv", csvs.wavelengths, T.tolist()), declaration("nm", "T%", "test"))
    assert table.warnings == ["2 transmittance values above 100 % (negative absorbance)"]
    assert (table.signal_type_original, table.signal_type_stored) == ("transmittance%", "absorbance")
    np.testing.assert_allclose(table.values, np.log10(100.0 / T), rtol=1e-5)
    assert table.values[0, 0] < 0 and table.values[3, 4] < 0
    assert (table.values < 0).sum() == 2


def test_duplicated_spectra_are_counted_and_kept(csvs):
    header, rows = csvs.rows()
    rows[5] = [rows[5][0], rows[5][1], *rows[0][2:]]
    rows[9] = [rows[9][0], rows[9][1], *rows[0][2:]]
    rows[12] = [rows[12][0], rows[12][1], *rows[11][2:]]
    table = build(csvs.table("dups.csv", header, rows))
    assert table.n_duplicated_spectra == 3
    assert table.n_rows == 25
    assert table.warnings == []


def test_blank_lines_are_skipped_with_a_note(csvs):
    header, rows = csvs.rows()
    text = csvs.csv_text(header, rows[:3]) + "\n\n" + csvs.csv_text(header, rows[3:]).split("\n", 1)[1]
    table = build(csvs.text("gaps.csv", text))
    assert table.n_rows == 25
    assert table.warnings == ["2 blank lines skipped"]


# ----------------------------------------------------------------------------- separators, axes
def _with_decimal_comma(rows: list[list]) -> list[list]:
    return [[str(c).replace(".", ",") if not isinstance(c, str) else c for c in r] for r in rows]


@pytest.mark.parametrize(
    ("name", "sep", "comma"),
    [
        ("semi.csv", ";", True),
        ("tab.tsv", "\t", False),
        ("tabcomma.txt", "\t", True),
        ("plain.csv", ",", False),
    ],
)
def test_separators_and_decimal_marks(csvs, name, sep, comma):
    header, rows = csvs.rows()
    reference = build(csvs.good("reference.csv"))
    cells = _with_decimal_comma(rows) if comma else rows
    table = build(csvs.table(name, header, cells, sep=sep))
    assert table.warnings == []
    np.testing.assert_array_equal(table.values, reference.values)
    np.testing.assert_array_equal(table.wavelengths_nm, reference.wavelengths_nm)
    assert table.metadata["sample_id"].tolist() == reference.metadata["sample_id"].tolist()


def test_decimal_comma_in_wavelength_headers(csvs):
    header, rows = csvs.rows()
    header = [*header[:2], *[f"{w},5" for w in csvs.wavelengths]]
    table = build(csvs.table("semi_hdr.csv", header, _with_decimal_comma(rows), sep=";"))
    np.testing.assert_array_equal(table.wavelengths_nm, np.array(csvs.wavelengths) + 0.5)


def test_decimal_comma_in_targets(csvs):
    header, rows = csvs.rows()
    rows = [[r[0], i + 0.25, *r[2:]] for i, r in enumerate(rows)]
    table = build(csvs.table("semi_y.csv", header, _with_decimal_comma(rows), sep=";"))
    assert pd.api.types.is_float_dtype(table.targets["y_a"])
    np.testing.assert_allclose(table.targets["y_a"].to_numpy(float), np.arange(25) + 0.25)


def test_descending_axis_is_stored_ascending(csvs):
    header, rows = csvs.rows()
    reference = build(csvs.table("asc.csv", header, rows))
    desc = build(
        csvs.table("desc.csv", [*header[:2], *header[2:][::-1]], [[*r[:2], *r[2:][::-1]] for r in rows])
    )
    np.testing.assert_array_equal(desc.wavelengths_nm, np.array(csvs.wavelengths, dtype=float))
    np.testing.assert_array_equal(desc.values, reference.values)  # columns reordered with the axis
    assert (desc.native_axis_first, desc.native_axis_last) == (1210.0, 1100.0)
    assert (reference.native_axis_first, reference.native_axis_last) == (1100.0, 1210.0)


@pytest.mark.parametrize("descending", [True, False])
def test_wavenumber_axis_is_converted_to_nm(csvs, descending):
    wn = np.linspace(4000.0, 600.0, 18)  # MIR; FTIR files usually run from high to low wavenumber
    X = csvs.spectra(25, 18)
    if not descending:
        wn, X = wn[::-1], X[:, ::-1]
    table = build(csvs.table("mir.csv", [f"{v:g}" for v in wn], X.tolist()), declaration("cm-1", "A", "test"))
    order = np.argsort(1e7 / wn)
    np.testing.assert_allclose(table.wavelengths_nm, np.sort(1e7 / wn))
    assert np.all(np.diff(table.wavelengths_nm) > 0)
    np.testing.assert_array_equal(table.values, X[:, order].astype(np.float32))
    assert (table.native_unit, table.region) == ("cm-1", "MIR")
    assert (table.native_axis_first, table.native_axis_last) == (wn[0], wn[-1])
    assert table.wavelengths_nm[0] == pytest.approx(2500.0)
    assert table.wavelengths_nm[-1] == pytest.approx(1e7 / 600)


def test_reflectance_percent_becomes_absorbance(csvs):
    R = np.round(20 + 60 * np.random.default_rng(1).random((25, 12)), 3)
    table = build(csvs.table("refl.csv", csvs.wavelengths, R.tolist()), declaration("nm", "%R", "test"))
    assert (table.signal_type_original, table.signal_type_stored) == ("reflectance%", "absorbance")
    np.testing.assert_allclose(table.values, np.log10(100.0 / R), rtol=1e-6)
    assert table.warnings == []


def test_reflectance_fraction_becomes_absorbance(csvs):
    R = np.round(0.2 + 0.6 * np.random.default_rng(2).random((25, 12)), 5)
    table = build(csvs.table("refl01.csv", csvs.wavelengths, R.tolist()), declaration("nm", "R", "test"))
    np.testing.assert_allclose(table.values, np.log10(1.0 / R), rtol=1e-6)


def test_undeclared_unit_and_signal_type_are_guessed_with_warnings(csvs):
    table = build(csvs.good("undeclared.csv"), None)
    unit_note, signal_note = table.warnings[0], table.warnings[1]
    assert "not declared" in unit_note and "guessed 'nm'" in unit_note
    assert "not declared" in signal_note and "guessed" in signal_note
    assert table.native_unit == "nm"
    assert table.signal_type_original in ("absorbance", "reflectance", "transmittance", "unknown")
    assert table.extra == {"unit_declared_by": None, "signal_type_declared_by": None}


def test_undeclared_axis_beyond_2600_is_guessed_cm1(csvs):
    wn = np.linspace(4000.0, 3000.0, 12)
    table = build(
        csvs.table("wn.csv", [f"{v:g}" for v in wn], csvs.spectra(25).tolist()), declaration(None, "A", "t")
    )
    assert table.native_unit == "cm-1"
    assert table.warnings[0].startswith("axis unit not declared: guessed 'cm-1' from an axis reaching 4000")


def test_signal_type_column_declares_the_signal_type(csvs):
    R = np.round(20 + 60 * np.random.default_rng(1).random((25, 12)), 3)
    rows = [["reflectance%", *r] for r in R.tolist()]
    table = build(
        csvs.table("st.csv", ["signal_type", *csvs.wavelengths], rows), declaration("nm", None, "t")
    )
    assert table.signal_type_original == "reflectance%"
    assert table.extra["signal_type_declared_by"] == "the file's 'signal_type' column"
    np.testing.assert_allclose(table.values, np.log10(100.0 / R), rtol=1e-6)


# ----------------------------------------------------------------------------- columns
def test_numeric_and_class_targets_and_metadata_order(csvs):
    X = csvs.spectra(25)
    header = ["zeta", "sample_id", *csvs.wavelengths, "y_num", "alpha", "y_class", "batch"]
    rows = [[f"z{i}", f"s{i:02d}", *X[i].tolist(), 0.5 * i, f"a{i}", "ab"[i % 2], i % 3] for i in range(25)]
    table = build(csvs.table("cols.csv", header, rows))
    assert list(table.metadata.columns) == ["zeta", "sample_id", "alpha", "batch"]
    assert list(table.targets.columns) == ["y_num", "y_class"]
    assert pd.api.types.is_float_dtype(table.targets["y_num"])
    np.testing.assert_array_equal(table.targets["y_num"].to_numpy(), 0.5 * np.arange(25))
    assert table.targets["y_class"].tolist() == ["ab"[i % 2] for i in range(25)]
    assert not pd.api.types.is_numeric_dtype(table.targets["y_class"])
    assert pd.api.types.is_integer_dtype(table.metadata["batch"])
    assert table.metadata["zeta"].tolist() == [f"z{i}" for i in range(25)]


def test_unnamed_and_repeated_columns(csvs):
    X = csvs.spectra(25)
    header = ["id", "", "id", *csvs.wavelengths]
    rows = [[f"s{i}", f"x{i}", f"t{i}", *X[i].tolist()] for i in range(25)]
    table = build(csvs.table("names.csv", header, rows))
    assert list(table.metadata.columns) == ["id", "column_2", "id_3"]
    assert table.warnings == [
        "column 2 has no header: kept as metadata 'column_2'",
        "repeated column name 'id': the second is kept as 'id_3'",
    ]


# ----------------------------------------------------------------------------- declarations
def _declare_bank(folder: Path, entries: list[dict]) -> None:
    (folder / "manifest.json").write_text(json.dumps({"datasets": entries}))


def _job(jobs, file_name: str):
    return next(j for j in jobs if j.path.name == file_name)


def test_declarations_from_the_bank_manifest(csvs, tmp_path):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    csvs.good("b.csv", folder=bank, seed=1)
    _declare_bank(bank, [{"file": "a.csv", "unit": "nm", "signal_type": "reflectance%"}])
    jobs, notes = bank_jobs(bank)
    assert notes == []
    a, b = _job(jobs, "a.csv"), _job(jobs, "b.csv")
    assert a.declared == Declaration("nm", "reflectance%", "bank manifest.json", "bank manifest.json")
    assert b.declared == Declaration()
    table = build_table(read_csv(a.path), name=a.name, declared=a.declared)
    assert table.signal_type_original == "reflectance%"
    assert not any("not declared" in w for w in table.warnings)


def test_bank_manifest_entry_with_a_bad_unit_is_a_note(csvs, tmp_path):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    _declare_bank(bank, [{"file": "a.csv", "unit": "furlong"}])
    jobs, notes = bank_jobs(bank)
    assert jobs[0].declared == Declaration()
    assert len(notes) == 1 and "'a.csv' ignored" in notes[0] and "furlong" in notes[0]


def test_unreadable_bank_manifest_is_a_note(csvs, tmp_path):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    (bank / "manifest.json").write_text("{not json")
    jobs, notes = bank_jobs(bank)
    assert len(jobs) == 1 and len(notes) == 1 and "ignored, not a bank manifest" in notes[0]


def test_declarations_from_config_rules(csvs, tmp_path):
    bank = tmp_path / "bank"
    csvs.good("mir_1.csv", folder=bank)
    csvs.good("nir_1.csv", folder=bank)
    rules = [{"pattern": "mir_*.csv", "unit": "cm-1", "signal_type": "absorbance"}]
    jobs, _ = bank_jobs(bank, rules=rules)
    assert _job(jobs, "mir_1.csv").declared == Declaration(
        "cm-1", "absorbance", "config pattern 'mir_*.csv'", "config pattern 'mir_*.csv'"
    )
    assert _job(jobs, "nir_1.csv").declared == Declaration()


def test_declaration_precedence_cli_over_config_over_manifest(csvs, tmp_path):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    _declare_bank(bank, [{"file": "a.csv", "unit": "nm", "signal_type": "absorbance"}])
    rules = [{"pattern": "*.csv", "unit": "cm-1", "signal_type": None}]

    (job,), _ = bank_jobs(bank)
    assert (job.declared.unit, job.declared.unit_from) == ("nm", "bank manifest.json")

    (job,), _ = bank_jobs(bank, rules=rules)  # config wins for the unit, manifest keeps the signal
    assert (job.declared.unit, job.declared.unit_from) == ("cm-1", "config pattern '*.csv'")
    assert (job.declared.signal_type, job.declared.signal_type_from) == ("absorbance", "bank manifest.json")

    (job,), _ = bank_jobs(bank, rules=rules, unit="nm", signal_type="R%")  # the command line wins
    assert job.declared == Declaration("nm", "reflectance%", "command line", "command line")


def test_single_file_reads_the_manifest_beside_it(csvs, tmp_path):
    bank = tmp_path / "bank"
    path = csvs.good("a.csv", folder=bank)
    _declare_bank(bank, [{"file": "a.csv", "unit": "nm", "signal_type": "absorbance"}])
    (job,), _ = bank_jobs(path)
    assert job.declared.unit_from == "bank manifest.json"


def test_bad_cli_declaration_names_the_allowed_values(csvs):
    path = csvs.good("a.csv")
    with pytest.raises(VitnirsError, match=r"unknown axis unit 'furlong' \(allowed: nm, cm-1\)"):
        bank_jobs(path, unit="furlong")
    with pytest.raises(VitnirsError, match=r"unknown signal type 'opacity' \(allowed: absorbance"):
        bank_jobs(path, signal_type="opacity")


def test_declared_unit_changes_the_stored_axis(csvs):
    path = csvs.good("a.csv")
    nm = build(path, declaration("nm", "A", "t"))
    cm = build(path, declaration("cm-1", "A", "t"))
    np.testing.assert_allclose(cm.wavelengths_nm, np.sort(1e7 / nm.wavelengths_nm))
    np.testing.assert_array_equal(cm.values, nm.values[:, ::-1])


def test_read_error_is_a_bad_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(BadFileError, match="cannot read the file"):
        read_csv(missing)
    assert not missing.exists()
