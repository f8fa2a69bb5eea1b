"""Shared test helpers: small synthetic bank CSVs written into tmp_path, in-memory absorbance
tables for a store, and a one-thread torch fixture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vitnirs.data.table import SpectralTable

# the development bank, ../shared/xbank beside the checkout (tests that need it skip without it)
XBANK = Path(__file__).resolve().parents[2] / "shared" / "xbank"

# 12 spectral points, 1100-1210 nm: just above the 10-point minimum, fast to validate.
WAVELENGTHS = [1100 + 10 * i for i in range(12)]


def smooth_spectra(n: int, n_points: int = len(WAVELENGTHS), seed: int = 0) -> np.ndarray:
    """(n, n_points) distinct, non-constant absorbance-like spectra, rounded to 5 decimals."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n_points)[None, :]
    base = 0.4 + rng.uniform(0.0, 0.3, (n, 1)) + rng.uniform(-0.2, 0.2, (n, 1)) * x
    peak = rng.uniform(0.1, 0.5, (n, 1)) * np.exp(-(((x - 0.5) / 0.2) ** 2))
    return np.round(base + peak + rng.normal(0.0, 0.002, (n, n_points)), 5)


def peak_spectra(
    n: int, n_points: int, seed: int = 0, lo: float = 1000.0, hi: float = 2500.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, L)`` float64 smooth absorbance-like spectra (level, slope, one band) and their ``(L,)`` nm grid."""
    rng = np.random.default_rng(seed)
    w = np.linspace(lo, hi, n_points)
    x = (w - lo) / (hi - lo)
    X = 0.5 + rng.uniform(0, 0.3, (n, 1)) + rng.uniform(-0.2, 0.2, (n, 1)) * x
    X = X + rng.uniform(0.1, 0.5, (n, 1)) * np.exp(-(((x - rng.uniform(0.3, 0.7, (n, 1))) / 0.1) ** 2))
    return X, w


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


def _frame(columns: dict | pd.DataFrame | None) -> pd.DataFrame:
    if columns is None:
        return pd.DataFrame()
    return columns if isinstance(columns, pd.DataFrame) else pd.DataFrame(columns)


def absorbance_table(
    name: str,
    X: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    targets: dict | pd.DataFrame | None = None,
    metadata: dict | pd.DataFrame | None = None,
    region: str = "NIR",
    extra: dict | None = None,
) -> SpectralTable:
    """An in-memory absorbance table in nm, source ``test:<name>``, values stored as float32."""
    grid = np.asarray(wavelengths_nm, dtype=np.float64)
    return SpectralTable(
        name=name,
        source=f"test:{name}",
        values=np.asarray(X).astype(np.float32),
        wavelengths_nm=grid,
        native_unit="nm",
        native_axis_first=float(grid[0]),
        native_axis_last=float(grid[-1]),
        signal_type_original="absorbance",
        signal_type_stored="absorbance",
        region=region,
        targets=_frame(targets),
        metadata=_frame(metadata),
        extra=dict(extra or {}),
    )


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and OpenMP spin-waits are ruinous on a busy 2-core box."""
    import torch  # here, not at the top: the data tests never need it

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_checkpoint(run_dir: Path, *, max_points: int = 256, seed: int = 0) -> Path:
    """An untrained ``tiny`` model saved as a checkpoint of ``run_dir`` (step 1); its folder."""
    import torch

    from vitnirs.model.presets import build_mae
    from vitnirs.train.checkpoint import capture_rng_state, save_checkpoint

    torch.manual_seed(seed)
    model = build_mae("tiny")
    spec = {"builder": "vitnirs.model.build_mae", "preset": "tiny", "kwargs": {"trunk": "transformer"}}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    norm = {"max_points": max_points}
    return save_checkpoint(run_dir, 1, model, opt, None, {}, norm, capture_rng_state(), model_spec=spec)


def batch_settings(**overrides):
    """The default config's :class:`BatchSettings` with two views and no crop (what the batching
    tests were written for), then ``overrides``."""
    from vitnirs.batching.collate import BatchSettings
    from vitnirs.config import load_config

    return BatchSettings.from_config(load_config(), **{"two_views": True, "p_crop": 0.0, **overrides})
