"""`vitnirs pack`: a float16 copy of the pretraining regions, read by pretraining without nirs4all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import absorbance_table
from test_train import TINY, make_tiny_store

from vitnirs.batching.collate import BatchSettings
from vitnirs.batching.loader import PretrainData
from vitnirs.cli import main
from vitnirs.config import load_config
from vitnirs.data.pack import pack_store, rounding_error
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.errors import VitnirsError


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The tiny training store (NIR + vis-NIR + synthetic NIR) plus one MIR dataset."""
    path = make_tiny_store(tmp_path_factory.mktemp("store") / "store")
    grid = np.linspace(2500, 25000, 40)
    rng = np.random.default_rng(5)
    mir = absorbance_table("mir_d", 0.2 + rng.uniform(0, 1, (30, 40)), grid, region="MIR")
    prepare(table_jobs([mir], "real"), path, progress=False)
    return path


@pytest.fixture(scope="module")
def packed(store: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "packed"
    pack_store(store, out)
    return out


def test_pack_keeps_the_pretraining_regions_in_float16(store: Path, packed: Path) -> None:
    src, dst = PreparedStore(store), PreparedStore(packed)
    assert sorted(dst.names()) == ["nir_a", "synth_c", "visnir_b"]
    assert dst.manifest["packed"]["left_out"] == ["mir_d"]
    for name in dst.names():
        x, x16 = np.asarray(src.values(name)), dst.values(name)
        assert x16.dtype == np.float16 and dst.baseline(name).dtype == np.float16
        np.testing.assert_allclose(x16.astype(np.float32), x, rtol=2.0**-10, atol=0)
        np.testing.assert_array_equal(dst.wavelengths_nm(name), src.wavelengths_nm(name))
        pd.testing.assert_frame_equal(dst.targets(name), src.targets(name))
        assert dst.records[name] == src.records[name]
        recorded = dst.manifest["packed"]["rounding_error"][name]["values"]
        expected = rounding_error(x, np.asarray(x16), x.std(axis=1))
        assert recorded == pytest.approx(expected)
        assert 0 < recorded["max_abs"] <= 2.0**-11 * float(np.abs(x).max())


def test_rounding_error_is_relative_to_the_spectrum_std() -> None:
    x = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    packed = x + np.array([[0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1]])
    err = rounding_error(x, packed, x.std(axis=1))
    assert err["max_abs"] == pytest.approx(0.5)
    assert err["max_rel_std"] == pytest.approx(0.5 / np.std([0.0, 1.0, 2.0, 3.0]))  # flat row left out


def test_batches_from_a_packed_store_match_the_original(store: Path, packed: Path) -> None:
    settings = BatchSettings.from_config(load_config(overrides=TINY))
    a = PretrainData(store, settings=settings, regions=["NIR", "vis-NIR"]).batch(3)
    b = PretrainData(packed, settings=settings, regions=["NIR", "vis-NIR"]).batch(3)
    for key in ("wavelengths", "valid", "mask", "dataset_id"):
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    assert b["values"].dtype == a["values"].dtype
    np.testing.assert_allclose(b["values"].numpy(), a["values"].numpy(), atol=0.05)


def test_pretraining_reads_a_packed_store_without_nirs4all(packed: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["pretrain", "--store", str(packed), "--out", str(run), "--max-steps", "2", "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    code = f"""
import sys
class NoNirs4all:
    def find_spec(self, name, path=None, target=None):
        if name == "nirs4all" or name.startswith("nirs4all."):
            raise ImportError("nirs4all is absent on this machine (test)")
sys.meta_path.insert(0, NoNirs4all())
from vitnirs.cli import main
code = main({args!r})
assert not any(m.split(".")[0] == "nirs4all" for m in sys.modules), "nirs4all was imported"
sys.exit(code)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((run / "pretrain_summary.json").read_text())["steps"] == 2


def test_prepare_refuses_to_write_into_a_packed_store(packed: Path) -> None:
    table = absorbance_table(
        "late", np.random.default_rng(0).uniform(0, 1, (20, 30)), np.linspace(1000, 2000, 30)
    )
    with pytest.raises(VitnirsError, match="packed copy"):
        prepare(table_jobs([table], "real"), packed, progress=False)


def test_values_beyond_float16_are_an_error_naming_the_dataset(tmp_path: Path) -> None:
    big = absorbance_table("huge", np.full((10, 20), 1e5) + np.arange(20), np.linspace(1000, 2000, 20))
    prepare(table_jobs([big], "real"), tmp_path / "s", progress=False)
    with pytest.raises(VitnirsError, match="'huge'.*float32"):
        pack_store(tmp_path / "s", tmp_path / "p")
    assert not (tmp_path / "p").exists() and not list(tmp_path.glob(".p.*"))  # nothing half-written
    pack_store(tmp_path / "s", tmp_path / "p", dtype="float32")
    assert PreparedStore(tmp_path / "p").values("huge").dtype == np.float32


def test_pack_refuses_bad_destinations(store: Path, tmp_path: Path) -> None:
    with pytest.raises(VitnirsError, match="another folder"):
        pack_store(store, store)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(VitnirsError, match="not a store"):
        pack_store(store, tmp_path / "busy")
    with pytest.raises(VitnirsError, match="no dataset in regions"):
        pack_store(store, tmp_path / "x", regions=["UV"])


def test_cli_pack_reports_size_and_rounding(store: Path, tmp_path: Path, capsys) -> None:
    assert main(["pack", str(store), "--out", str(tmp_path / "p"), "--all-regions", "--no-progress"]) == 0
    line = capsys.readouterr().out
    assert "packed 4 datasets (float16)" in line and "MiB" in line and "std" in line
    assert main(["pack", str(store), "--out", str(tmp_path / "p"), "--no-progress"]) == 0  # replaces it
    assert len(PreparedStore(tmp_path / "p").names()) == 3
