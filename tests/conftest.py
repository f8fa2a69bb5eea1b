"""Shared helpers for the data tests: small synthetic bank CSVs written into tmp_path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

XBANK = Path("/work/shared/xbank")

# 12 spectral points, 1100-1210 nm: just above the 10-point minimum, fast to validate.
WAVELENGTHS = [1100 + 10 * i for i in range(12)]


def smooth_spectra(n: int, n_points: int = len(WAVELENGTHS), seed: int = 0) -> np.ndarray:
    """(n, n_points) distinct, non-constant absorbance-like spectra, rounded to 5 decimals."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n_points)[None, :]
    base = 0.4 + rng.uniform(0.0, 0.3, (n, 1)) + rng.uniform(-0.2, 0.2, (n, 1)) * x
    peak = rng.uniform(0.1, 0.5, (n, 1)) * np.exp(-(((x - 0.5) / 0.2) ** 2))
    return np.round(base + peak + rng.normal(0.0, 0.002, (n, n_points)), 5)


def csv_text(header: Sequence, rows: Sequence[Sequence], sep: str = ",") -> str:
    """One header line plus one line per row; cells written with ``str``."""
    lines = [sep.join(str(h) for h in header)]
    lines += [sep.join(str(c) for c in row) for row in rows]
    return "\n".join(lines) + "\n"


class CsvFactory:
    """Writes small bank files into a folder (``tmp_path`` by default)."""

    wavelengths = WAVELENGTHS

    def __init__(self, root: Path):
        self.root = root

    @staticmethod
    def spectra(n: int, n_points: int = len(WAVELENGTHS), seed: int = 0) -> np.ndarray:
        return smooth_spectra(n, n_points, seed)

    @staticmethod
    def csv_text(header: Sequence, rows: Sequence[Sequence], sep: str = ",") -> str:
        return csv_text(header, rows, sep)

    @staticmethod
    def rows(n: int = 25, seed: int = 0) -> tuple[list, list[list]]:
        return good_rows(n, seed)

    def text(self, name: str, text: str | bytes, folder: Path | None = None) -> Path:
        path = (folder or self.root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def table(self, name: str, header: Sequence, rows: Sequence[Sequence], *, sep: str = ",", folder=None):
        return self.text(name, csv_text(header, rows, sep), folder)

    def good(self, name: str, *, n: int = 25, seed: int = 0, folder: Path | None = None) -> Path:
        """A tidy file: ``sample_id``, ``y_a`` and 12 absorbance columns in nm."""
        header, rows = good_rows(n, seed)
        return self.table(name, header, rows, folder=folder)


def good_rows(n: int = 25, seed: int = 0) -> tuple[list, list[list]]:
    """Header ``[sample_id, y_a, 1100, ..., 1210]`` and ``n`` rows of distinct spectra."""
    X = smooth_spectra(n, seed=seed)
    header = ["sample_id", "y_a", *WAVELENGTHS]
    rows = [[f"s{i:02d}", round(0.5 * i + seed, 3), *X[i].tolist()] for i in range(n)]
    return header, rows


@pytest.fixture
def csvs(tmp_path: Path) -> CsvFactory:
    return CsvFactory(tmp_path)
