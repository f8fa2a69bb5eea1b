"""One input contract for Python (`SpectralEmbedder`) and the command line (`vitnirs embed`), on
the same files: what the model cannot read is refused or warned about, never embedded silently
(the coverage rule, :mod:`vitnirs.data.coverage`); too few points, duplicate wavelength headers,
non-spectral columns and missing values follow one rule in both (issue 22)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vitnirs.cli import main as cli_main
from vitnirs.data.coverage import (
    MIN_INSIDE_REGIONS,
    MIN_VALID_PATCHES,
    CoverageError,
    check_coverage,
    inside_fraction,
    region_spans,
)
from vitnirs.data.validate import LATTICE_RANGE_NM
from vitnirs.embedder import SpectralEmbedder
from vitnirs.errors import VitnirsError
from vitnirs.workflows.embed_csv import embed_csv

CKPT = "default"  # the shipped model: pretrained on NIR and vis-NIR (350-2,500 nm)


def write(
    path: Path, axis: np.ndarray, *, n: int = 6, header: list[str] | None = None, seed: int = 0
) -> Path:
    """A CSV with ``sample_id`` and smooth absorbance spectra on ``axis`` (header as written)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, len(axis))
    X = 0.5 + rng.uniform(0, 0.2, (n, 1)) + 0.3 * np.exp(-(((x - rng.uniform(0.3, 0.7, (n, 1))) / 0.1) ** 2))
    cols = header or [f"{v:g}" for v in axis]
    frame = pd.DataFrame(np.round(X, 6), columns=cols)
    frame.insert(0, "sample_id", [f"cal{i:03d}" for i in range(n)])
    frame.to_csv(path, index=False)
    return path


def python_side(path: Path, unit: str = "nm", **kw):
    """``SpectralEmbedder`` on the file as a user reads it with pandas: (Z, warnings) or the error."""
    frame = pd.read_csv(path).drop(columns="sample_id")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Z = SpectralEmbedder(CKPT, wavelength_unit=unit, **kw).fit_transform(frame)
        except ValueError as err:
            return err, []
    return Z, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def cli_side(path: Path, tmp_path: Path, unit: str = "nm"):
    """``vitnirs embed``'s function on the same file: (embedding frame, warnings) or the error."""
    try:
        out = embed_csv(path, tmp_path / f"{path.stem}_emb.csv", checkpoint=CKPT, unit=unit,
                        signal_type="absorbance", progress=False)  # fmt: skip
    except VitnirsError as err:
        return err, []
    return pd.read_csv(out), []


CANNOT_READ = [
    ("below_lattice", np.linspace(200, 340, 100), "nm", "reads 0 patch"),
    ("uv", np.linspace(200, 400, 200), "nm", "lies in its pretraining regions"),
    ("cm1_declared_nm", np.linspace(4000, 9000, 700), "nm", "is the unit cm-1?"),
]


@pytest.mark.parametrize("name, axis, unit, says", CANNOT_READ, ids=[c[0] for c in CANNOT_READ])
def test_what_the_model_cannot_read_is_refused_in_python_and_cli(tmp_path, name, axis, unit, says):
    path = write(tmp_path / f"{name}.csv", axis)
    err, _ = python_side(path, unit)
    assert isinstance(err, CoverageError) and says in str(err), err
    assert f"{axis.min():,.0f}–{axis.max():,.0f} nm" in str(err)  # the range is named
    err, _ = cli_side(path, tmp_path, unit)
    assert isinstance(err, CoverageError) and says in str(err) and str(path) in str(err), err
    assert not (tmp_path / f"{name}_emb.csv").exists()  # nothing written


def test_the_cli_exits_2_with_the_message(tmp_path, capsys):
    path = write(tmp_path / "uv.csv", np.linspace(200, 400, 200))
    code = cli_main(["embed", str(path), "--out", str(tmp_path / "o.csv"), "--unit", "nm"])
    assert code == 2 and "pretraining regions" in capsys.readouterr().err


def test_the_right_unit_declaration_is_embedded(tmp_path):
    path = write(tmp_path / "corn.csv", np.linspace(4000, 9000, 700))
    Z, notes = python_side(path, "cm-1")
    assert Z.shape[0] == 6 and np.isfinite(Z).all() and not [n for n in notes if "pretraining" in n]
    frame, _ = cli_side(path, tmp_path, "cm-1")
    assert len(frame) == 6


def test_partial_coverage_warns_with_the_range_used(tmp_path, capsys):
    path = write(tmp_path / "vis.csv", np.linspace(300, 1000, 350))  # 300-350 nm below the lattice
    Z, notes = python_side(path)
    assert np.isfinite(Z).all()
    assert any("reads 350–" in n and "not embedded" in n for n in notes), notes
    cli_side(path, tmp_path)
    assert "reads 350–" in capsys.readouterr().err


def test_too_few_points_are_refused_in_both(tmp_path):
    path = write(tmp_path / "three.csv", np.array([1100.0, 1200.0, 1300.0]))
    err, _ = python_side(path)
    assert isinstance(err, ValueError) and "only 3 spectral points; at least 10" in str(err)
    err, _ = cli_side(path, tmp_path)
    assert isinstance(err, VitnirsError) and "only 3 spectral points; at least 10" in str(err)


def test_duplicate_wavelength_headers_are_refused_in_both(tmp_path):
    axis = np.arange(1100.0, 1500.0, 2.0)
    header = [f"{v:g}" for v in axis]
    header[3] = header[2]  # '1104' twice: pandas renames the second '1104.1'
    path = write(tmp_path / "dup.csv", axis, header=header)
    assert "1104.1" in pd.read_csv(path).columns
    err, _ = python_side(path)
    assert isinstance(err, ValueError) and "duplicate wavelength header '1104'" in str(err)
    err, _ = cli_side(path, tmp_path)
    assert isinstance(err, VitnirsError) and "duplicate wavelength 1104" in str(err)


def test_a_fine_grid_is_not_taken_for_a_duplicate(tmp_path):
    axis = np.round(np.arange(1300.0, 1302.0, 0.1), 1)[:20]  # '1300', '1300.1', ...: a real 0.1 nm grid
    axis = np.concatenate([axis, np.arange(1302.0, 1500.0, 0.1)[:1980]])
    from vitnirs.data.spectra_input import grid_from_columns

    grid = grid_from_columns([f"{v:g}" for v in axis])
    np.testing.assert_allclose(grid, axis, rtol=0, atol=1e-9)


def test_a_dataframe_with_an_id_column_gets_the_package_message(tmp_path):
    path = write(tmp_path / "ids.csv", np.arange(1100.0, 2500.0, 2.0))
    frame = pd.read_csv(path)  # sample_id kept
    with pytest.raises(ValueError, match="select the spectral columns"):
        SpectralEmbedder(CKPT).fit(frame)
    with pytest.raises(ValueError, match="non-numeric column.*'sample_id'.*select the spectral columns"):
        SpectralEmbedder(CKPT, wavelengths=list(range(1100, 1100 + 2 * frame.shape[1], 2))).fit(frame)


def test_missing_values_follow_one_rule(tmp_path, capsys):
    axis = np.arange(1100.0, 2500.0, 4.0)
    path = write(tmp_path / "gaps.csv", axis, n=5)
    frame = pd.read_csv(path)
    frame.iloc[1, 10:14] = np.nan  # a gap: filled along the axis, with a warning
    frame.iloc[3, 1:] = np.nan  # no value at all: a NaN embedding, with a warning
    frame.to_csv(path, index=False)
    Z, notes = python_side(path)
    cli, _ = cli_side(path, tmp_path)
    emb_cols = [c for c in cli.columns if str(c).startswith("emb_")]
    assert np.isnan(Z[3]).all() and np.isnan(cli[emb_cols].to_numpy()[3]).all()
    keep = [0, 1, 2, 4]
    np.testing.assert_allclose(Z[keep], cli[emb_cols].to_numpy(np.float64)[keep], rtol=1e-5, atol=1e-5)
    assert any("4 missing values in 1 spectra filled" in n for n in notes), notes
    assert "4 missing values in 1 spectra filled" in capsys.readouterr().err


# --------------------------------------------------------------------------- the rule itself
def test_the_lattice_range_is_the_model_s():
    from vitnirs.model.wavelength import LATTICE_MAX_NM, LATTICE_MIN_NM

    assert LATTICE_RANGE_NM == (LATTICE_MIN_NM, LATTICE_MAX_NM)


def test_readable_span_counts_the_patches_the_tokenizer_reads():
    import torch

    from vitnirs.model.tokenizer import PatchTokenizer

    tok = PatchTokenizer(d_model=8)
    grids = np.stack([np.linspace(1100, 2500, 300), np.linspace(400, 1000, 300)])
    count, lo, hi = tok.readable_span(grids)
    w = torch.tensor(grids, dtype=torch.float32)
    p = tok.patches(torch.rand(2, 300), w, torch.ones(2, 300, dtype=torch.bool))
    assert count.tolist() == p["valid"].sum(1).tolist()
    assert lo[0] >= 1100 and hi[0] <= 2500 and lo[1] >= 400 and hi[1] <= 1000
    assert lo[0] < 1100 * 1.02 and hi[0] > 2500 / 1.02  # within about a patch of the ends


def test_inside_fraction_and_region_spans():
    assert region_spans(["NIR", "vis-NIR"]) == [(350.0, 2500.0)]
    assert region_spans(None) == [(350.0, 25000.0)]
    assert inside_fraction(1000, 2000, [(350, 2500)]) == pytest.approx(1.0)
    assert inside_fraction(2500, 5000, [(350, 2500)]) == pytest.approx(0.0)
    assert inside_fraction(1250, 5000, [(350, 2500)]) == pytest.approx(0.5)  # log λ: half


def test_thresholds_are_the_stated_ones():
    w = np.linspace(1000, 2000, 500)
    ok = check_coverage(w, (np.array([MIN_VALID_PATCHES]), np.array([1000.0]), np.array([2000.0])),
                        regions=["NIR"], source="x")  # fmt: skip
    assert ok == []
    with pytest.raises(CoverageError, match="reads 7 patch"):
        check_coverage(w, (np.array([MIN_VALID_PATCHES - 1]), np.array([1000.0]), np.array([2000.0])),
                       regions=["NIR"], source="x")  # fmt: skip
    # NIR is 700-2,500 nm: 1,000-6,250 nm has log(2.5)/log(6.25) = exactly half inside, kept;
    # 1,000-6,400 nm a little less than half, refused
    for hi, refused in ((6200.0, False), (6400.0, True)):
        readable = (np.array([200]), np.array([1000.0]), np.array([hi]))
        if refused:
            with pytest.raises(CoverageError, match="pretraining regions"):
                check_coverage(np.linspace(1000, hi, 300), readable, regions=["NIR"], source="x")
        else:
            notes = check_coverage(np.linspace(1000, hi, 300), readable, regions=["NIR"], source="x")
            assert any("outside its pretraining regions" in n for n in notes)
    assert MIN_INSIDE_REGIONS == 0.5


def test_per_row_grids_name_the_rows():
    grids = np.stack([np.linspace(1100, 2500, 300)] * 3 + [np.linspace(200, 340, 300)])
    readable = (
        np.array([100, 100, 100, 0]),
        np.array([1100.0] * 3 + [np.nan]),
        np.array([2500.0] * 3 + [np.nan]),
    )
    with pytest.raises(CoverageError, match=r"rows 3 of 4"):
        check_coverage(grids, readable, regions=["NIR", "vis-NIR"], source="X")


def test_evaluate_leaves_out_a_dataset_it_cannot_read(capsys):
    from vitnirs.embedding import load_encoder
    from vitnirs.workflows.evaluation import unreadable_datasets

    class Store:  # the one method the rule reads
        def wavelengths_nm(self, name):
            return {"nir": np.linspace(1100, 2500, 700), "uv": np.linspace(200, 340, 100)}[name]

    model, info = load_encoder(CKPT)
    out = unreadable_datasets(model, info, Store(), ["nir", "uv"])
    assert list(out) == ["uv"] and "reads 0 patch" in out["uv"]
    assert "left out of the evaluation" in capsys.readouterr().err
