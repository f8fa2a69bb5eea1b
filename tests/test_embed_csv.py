"""embed_csv (`vitnirs embed`): columns carried through, input row order, CSV and parquet,
units and signal types declared as in prepare, dropped rows, clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_embedder import D_TINY, tiny_checkpoint

from vitnirs.embedder import SpectralEmbedder
from vitnirs.errors import VitnirsError
from vitnirs.workflows.embed_csv import embed_csv

WAVELENGTHS = np.arange(1100.0, 2300.0, 30.0)  # 40 points, exact in a header
EMB = [f"emb_{i}" for i in range(D_TINY)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return str(tiny_checkpoint(tmp_path_factory.mktemp("tiny_run")))


def absorbance(n: int = 15, seed: int = 0) -> np.ndarray:
    """``(n, 40)`` distinct smooth absorbance spectra on ``WAVELENGTHS``, 6 decimals."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, len(WAVELENGTHS))[None, :]
    peak = rng.uniform(0.1, 0.5, (n, 1)) * np.exp(-(((x - rng.uniform(0.3, 0.7, (n, 1))) / 0.1) ** 2))
    return np.round(0.4 + rng.uniform(0, 0.3, (n, 1)) + rng.uniform(-0.2, 0.2, (n, 1)) * x + peak, 6)


def write_bank_csv(path: Path, values: np.ndarray, axis: np.ndarray, *, sep: str = ",") -> pd.DataFrame:
    """A bank file: ``sample_id``, ``site`` (metadata), ``y_protein`` (target), then the spectrum."""
    n = len(values)
    meta = pd.DataFrame(
        {
            "sample_id": [f"s{i:02d}" for i in range(n)],
            "site": ["north" if i % 3 else "south" for i in range(n)],
            "y_protein": np.round(10 + 0.5 * np.arange(n), 2),
        }
    )
    spectral = pd.DataFrame(values, columns=[f"{a:g}" for a in axis])
    pd.concat([meta, spectral], axis=1).to_csv(path, index=False, sep=sep)
    return meta


def reference(ckpt: str, values: np.ndarray) -> np.ndarray:
    return SpectralEmbedder(ckpt, wavelengths=WAVELENGTHS.tolist()).fit_transform(values)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_columns_carried_through_in_input_order(ckpt, tmp_path, suffix, one_thread):
    A = absorbance()
    order = np.random.default_rng(1).permutation(len(A))  # a file whose rows are not sorted by id
    write_bank_csv(tmp_path / "in.csv", A[order], WAVELENGTHS)
    out = embed_csv(
        tmp_path / "in.csv", tmp_path / f"out{suffix}", checkpoint=ckpt, signal_type="absorbance",
        batch_size=4, progress=False,
    )  # fmt: skip
    assert out == tmp_path / f"out{suffix}" and out.is_file()
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(got.columns) == ["sample_id", "site", "y_protein", *EMB]
    assert got["sample_id"].tolist() == [f"s{i:02d}" for i in range(len(A))]  # rows as in the file
    assert got["site"].tolist() == ["north" if i % 3 else "south" for i in range(len(A))]
    np.testing.assert_allclose(got["y_protein"], 10 + 0.5 * np.arange(len(A)))
    # row i holds the embedding of the spectrum written in row i
    np.testing.assert_allclose(got[EMB].to_numpy(), reference(ckpt, A[order]), atol=1e-5)
    assert np.abs(got[EMB].to_numpy() - reference(ckpt, A)).max() > 1e-3


def test_reflectance_declared_in_the_bank_manifest(ckpt, tmp_path, one_thread):
    A = absorbance()
    write_bank_csv(tmp_path / "refl.csv", 100 * 10.0 ** (-A), WAVELENGTHS)
    manifest = {"datasets": [{"file": "refl.csv", "unit": "nm", "signal_type": "reflectance%"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    got = pd.read_csv(embed_csv(tmp_path / "refl.csv", tmp_path / "a.csv", checkpoint=ckpt, progress=False))
    np.testing.assert_allclose(got[EMB].to_numpy(), reference(ckpt, A), atol=1e-4)
    # --signal-type wins over the manifest: declaring the % values absorbance changes everything
    wrong = embed_csv(
        tmp_path / "refl.csv", tmp_path / "b.csv", checkpoint=ckpt, signal_type="absorbance", progress=False
    )
    assert np.abs(pd.read_csv(wrong)[EMB].to_numpy() - reference(ckpt, A)).max() > 1e-3


def test_wavenumber_file_with_decimal_comma(ckpt, tmp_path, one_thread):
    A = absorbance()
    nu = 1e7 / WAVELENGTHS  # descending cm-1
    path = tmp_path / "ft.csv"
    write_bank_csv(path, A[:, ::-1], nu[::-1], sep=";")  # ascending cm-1, as FT instruments write
    path.write_text(path.read_text().replace(".", ","), encoding="utf-8")  # decimal comma
    got = pd.read_csv(
        embed_csv(path, tmp_path / "o.csv", checkpoint=ckpt, unit="cm-1", signal_type="A", progress=False)
    )
    np.testing.assert_allclose(got[EMB].to_numpy(), reference(ckpt, A), atol=1e-4)
    np.testing.assert_allclose(got["y_protein"], 10 + 0.5 * np.arange(len(A)))


def test_rows_without_a_usable_spectrum_keep_their_place(ckpt, tmp_path, capsys, one_thread):
    A = absorbance()
    A[3] = 0.7  # constant: prepare drops it
    path = tmp_path / "in.csv"
    write_bank_csv(path, A, WAVELENGTHS)
    lines = path.read_text().splitlines()
    cells = lines[6].split(",")  # data row 6 (1-based): every spectral value missing
    lines[6] = ",".join(cells[:3] + [""] * (len(cells) - 3))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = pd.read_csv(embed_csv(path, tmp_path / "o.csv", checkpoint=ckpt, signal_type="A", progress=False))
    assert len(got) == len(A) and got["sample_id"].tolist() == [f"s{i:02d}" for i in range(len(A))]
    dropped = got[EMB].isna().all(axis=1).to_numpy()
    assert np.flatnonzero(dropped).tolist() == [3, 5]
    keep = [i for i in range(len(A)) if i not in (3, 5)]
    np.testing.assert_allclose(got[EMB].to_numpy()[keep], reference(ckpt, A[keep]), atol=1e-5)
    assert "data rows 4, 6" in capsys.readouterr().err


def test_bad_input_names_the_file(ckpt, tmp_path):
    good = tmp_path / "good.csv"
    write_bank_csv(good, absorbance(), WAVELENGTHS)
    with pytest.raises(VitnirsError, match=r"out\.txt: the output must end in \.csv or \.parquet"):
        embed_csv(good, tmp_path / "out.txt", checkpoint=ckpt)
    with pytest.raises(VitnirsError, match=r"good\.csv: unknown axis unit 'furlong'"):
        embed_csv(good, tmp_path / "o.csv", checkpoint=ckpt, unit="furlong")
    text = tmp_path / "text.csv"
    write_bank_csv(text, absorbance(), WAVELENGTHS)
    lines = text.read_text().splitlines()
    lines[2] = lines[2][: lines[2].rindex(",") + 1] + "abc"  # data row 2, last spectral value
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(VitnirsError, match=r"text\.csv: text inside the spectrum"):
        embed_csv(text, tmp_path / "o.csv", checkpoint=ckpt, signal_type="A")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(VitnirsError, match=r"binary\.csv: binary file"):
        embed_csv(binary, tmp_path / "o.csv", checkpoint=ckpt)
    with pytest.raises(VitnirsError, match=r"missing\.csv: cannot read"):
        embed_csv(tmp_path / "missing.csv", tmp_path / "o.csv", checkpoint=ckpt)
    with pytest.raises(VitnirsError, match="no such checkpoint"):
        embed_csv(good, tmp_path / "o.csv", checkpoint=tmp_path / "nope", signal_type="A")
    with pytest.raises(VitnirsError, match="batch_size"):
        embed_csv(good, tmp_path / "o.csv", checkpoint=ckpt, signal_type="A", batch_size=0)
    assert not (tmp_path / "o.csv").exists()


def test_parquet_input_gives_the_embeddings_of_the_csv(ckpt, tmp_path, one_thread):
    A = absorbance()
    meta = write_bank_csv(tmp_path / "in.csv", A, WAVELENGTHS)
    pd.read_csv(tmp_path / "in.csv").to_parquet(tmp_path / "in.parquet", index=False)
    kw = {"checkpoint": ckpt, "signal_type": "absorbance", "batch_size": 4, "progress": False}
    from_csv = pd.read_parquet(embed_csv(tmp_path / "in.csv", tmp_path / "a.parquet", **kw))
    from_parquet = pd.read_parquet(embed_csv(tmp_path / "in.parquet", tmp_path / "b.parquet", **kw))
    assert list(from_parquet.columns) == ["sample_id", "site", "y_protein", *EMB]
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    assert from_parquet["sample_id"].tolist() == meta["sample_id"].tolist()
    assert all(from_parquet[c].dtype == np.float32 for c in EMB)  # parquet keeps float32


@pytest.mark.parametrize("name", ["in.xlsx", "in.zip", "spectra"])
def test_other_input_files_are_refused_saying_what_is_read(ckpt, tmp_path, name):
    (tmp_path / name).write_bytes(b"PK\x03\x04" + bytes(200))  # what a zip (and an .xlsx) starts with
    expected = r"the input must be a text table \(\.csv, \.tsv, \.txt\) or a \.parquet file"
    with pytest.raises(VitnirsError, match=rf"{name}: cannot read .*; {expected}"):
        embed_csv(tmp_path / name, tmp_path / "o.csv", checkpoint=ckpt)
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text("sample_id,1100\n", encoding="utf-8")
    with pytest.raises(VitnirsError, match=r"fake\.parquet: not a readable parquet file"):
        embed_csv(not_parquet, tmp_path / "o.csv", checkpoint=ckpt)


def _significant_digits(cell: str) -> int:
    mantissa = cell.lower().split("e")[0].lstrip("+-").replace(".", "")
    return len(mantissa.lstrip("0").rstrip("0")) if mantissa.strip("0") else 1


def test_csv_output_has_float32_precision(ckpt, tmp_path, one_thread):
    A = absorbance()
    write_bank_csv(tmp_path / "in.csv", A, WAVELENGTHS)
    out = embed_csv(tmp_path / "in.csv", tmp_path / "o.csv", checkpoint=ckpt, signal_type="A", progress=False)
    lines = out.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = [row.split(",")[header.index(c)] for row in lines[1:] for c in EMB]
    assert len(cells) == len(A) * len(EMB) and max(map(_significant_digits, cells)) <= 9
    assert max(map(_significant_digits, cells)) >= 6  # not rounded beyond float32 either
    got = pd.read_csv(out)[EMB].to_numpy()
    exact = pd.read_parquet(
        embed_csv(
            tmp_path / "in.csv", tmp_path / "o.parquet", checkpoint=ckpt, signal_type="A", progress=False
        )
    )[EMB].to_numpy()
    np.testing.assert_array_equal(got.astype(np.float32), exact)  # no digit of the float32 lost
    np.testing.assert_allclose(got, reference(ckpt, A), atol=1e-5)


def test_every_embed_option_says_what_it_does():
    import argparse

    from vitnirs.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    embed = subparsers.choices["embed"]
    assert [a.dest for a in embed._actions if not a.help] == []
    assert {"--batch-size", "--device"} <= {s for a in embed._actions for s in a.option_strings}
    assert ".parquet" in embed.format_help()


def test_reference_centres_the_embeddings_on_unlabelled_spectra(ckpt, tmp_path, capsys, one_thread):
    A = absorbance()
    write_bank_csv(tmp_path / "in.csv", A, WAVELENGTHS)
    ref = absorbance(n=6, seed=5) + 0.2  # the instrument's unlabelled spectra: its own offset
    pd.DataFrame(ref, columns=[f"{a:g}" for a in WAVELENGTHS]).to_csv(tmp_path / "ref.csv", index=False)
    out = embed_csv(
        tmp_path / "in.csv", tmp_path / "out.csv", checkpoint=ckpt, signal_type="absorbance",
        reference=tmp_path / "ref.csv", progress=False,
    )  # fmt: skip
    got = pd.read_csv(out)[EMB].to_numpy()
    expected = reference(ckpt, A) - reference(ckpt, ref).mean(axis=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert "centred on the mean embedding" in capsys.readouterr().err
    # centred on itself, a file's embeddings have mean zero
    embed_csv(tmp_path / "in.csv", tmp_path / "self.csv", checkpoint=ckpt, signal_type="absorbance",
              reference=tmp_path / "in.csv", progress=False)  # fmt: skip
    np.testing.assert_allclose(pd.read_csv(tmp_path / "self.csv")[EMB].to_numpy().mean(axis=0), 0, atol=1e-5)
