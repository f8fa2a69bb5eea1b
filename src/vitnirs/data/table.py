"""`SpectralTable`: one validated dataset, on its way into the prepared store.

Every source (a CSV of the bank, a demo dataset shipped by a pip package, a synthetic
build) becomes a ``SpectralTable`` before it is stored, so validation and storage are
written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class SpectralTable:
    """A dataset ready for the store.

    Attributes
    ----------
    name:
        Dataset name (file stem for CSVs), unique within a store.
    source:
        Where it came from: a file path, ``demo:<package>/<file>`` or ``synthetic:<recipe>``.
    values:
        ``(n, L)`` float32, the stored signal (absorbance unless ``signal_type_stored`` says
        ``unknown``), columns in ascending wavelength; finite everywhere.
    wavelengths_nm:
        ``(L,)`` float64, strictly ascending, in nm.
    native_unit:
        ``nm`` or ``cm-1``: the unit of the source axis.
    native_axis_first, native_axis_last:
        The first and last axis values as written in the source (native order).
    signal_type_original, signal_type_stored:
        Declared (or guessed) signal type of the source, and what the values are now.
    region:
        ``NIR``, ``vis-NIR`` or ``MIR``.
    targets:
        ``y_*`` columns, one row per spectrum (may be empty); numeric or class labels.
    metadata:
        Other non-numeric columns, one row per spectrum (may be empty).
    warnings:
        Plain-language caveats that go into the manifest.
    n_duplicated_spectra:
        Rows whose spectrum repeats an earlier row exactly.
    extra:
        Free JSON-serialisable facts for the manifest (e.g. ``paired_with``).
    """

    name: str
    source: str
    values: np.ndarray
    wavelengths_nm: np.ndarray
    native_unit: str
    native_axis_first: float
    native_axis_last: float
    signal_type_original: str
    signal_type_stored: str
    region: str
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    n_duplicated_spectra: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, length = self.values.shape
        if self.wavelengths_nm.shape != (length,):
            raise ValueError(
                f"{self.name}: {length} values per row but {self.wavelengths_nm.shape} wavelengths"
            )
        for label, frame in (("targets", self.targets), ("metadata", self.metadata)):
            if len(frame.columns) and len(frame) != n:
                raise ValueError(f"{self.name}: {len(frame)} {label} rows for {n} spectra")

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.values.shape[1])

    def to_spectro_dataset(self):
        """The nirs4all ``SpectroDataset`` of this table (headers in nm, ascending)."""
        from nirs4all.data import SpectroDataset

        ds = SpectroDataset(self.name)
        ds.add_samples(
            self.values,
            {"partition": "train"},
            headers=[repr(float(w)) for w in self.wavelengths_nm],  # exact round trip
            header_unit="nm",  # nirs4all's default is cm-1
        )
        numeric = [c for c in self.targets.columns if pd.api.types.is_numeric_dtype(self.targets[c])]
        if numeric:
            ds.add_targets(self.targets[numeric].to_numpy(dtype=np.float64))
        if len(self.metadata.columns):
            ds.add_metadata(self.metadata.reset_index(drop=True))
        if self.signal_type_stored != "unknown":
            ds.set_signal_type(self.signal_type_stored)
        return ds
