"""A compact copy of a prepared store, to carry to another machine.

    vitnirs pack STORE --out PACKED [--regions NIR vis-NIR] [--dtype float16]

The GPU machine of issue 4 takes a working tree of at most 64 MiB and has no nirs4all; a
packed store is what travels there, and pretraining reads it like any other store
(:class:`~vitnirs.data.store.PreparedStore` memory-maps the arrays, the loader casts the rows
it reads to float32).

- Only the datasets of ``regions`` are kept (default: the pretraining regions, NIR + vis-NIR).
- ``values.npy`` and ``baseline.npy`` are written in ``dtype`` (default float16: half the
  bytes); wavelengths stay float64; targets and metadata are copied as they are.
- The manifest gains a ``packed`` entry: the source store, the dtype and the measured
  rounding error of every dataset, as the largest and the RMS ``|x_packed - x|`` over all
  points, and the same divided by each spectrum's standard deviation (the unit the model
  sees after its per-spectrum normalisation, for the values and for the baseline alike).
- A value beyond the dtype's range is an error naming the dataset, never a silent ``inf``.
- ``vitnirs prepare`` refuses to write into a packed store: it is a read-only transport copy.

The copy is built in a sibling folder and swapped in at the end, so an interrupted pack leaves
no half-written store behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vitnirs.data.store import MANIFEST, PreparedStore
from vitnirs.errors import VitnirsError
from vitnirs.files import replace_dir

__all__ = ["PACK_DTYPES", "folder_mib", "pack_store", "rounding_error"]

PACK_DTYPES = {"float16": np.float16, "float32": np.float32}
_ARRAYS = ("values.npy", "baseline.npy")
_COPIED = ("wavelengths_nm.npy", "targets.parquet", "metadata.parquet", "record.json")


def rounding_error(x: np.ndarray, packed: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """Rounding error of ``packed`` against ``x`` (both (n, L)): max and RMS, absolute and relative.

    The relative figures divide each row's error by ``scale`` ((n,), the standard deviation of
    that row's spectrum: the model's unit after its per-spectrum normalisation, for the values
    and for the baseline subtracted from them); rows with zero spread are left out of them.
    """
    err = np.abs(packed.astype(np.float64) - np.asarray(x, dtype=np.float64))  # [n, L]
    spread = np.asarray(scale, dtype=np.float64) > 0  # [n]
    rel = err[spread] / np.asarray(scale, dtype=np.float64)[spread, None]
    return {
        "max_abs": float(err.max(initial=0.0)),
        "rms_abs": float(np.sqrt(np.mean(err**2))) if err.size else 0.0,
        "max_rel_std": float(rel.max(initial=0.0)),
        "rms_rel_std": float(np.sqrt(np.mean(rel**2))) if rel.size else 0.0,
    }


def _pack_array(src: Path, dst: Path, dtype: type, dataset: str, scale: np.ndarray) -> dict[str, float]:
    x = np.load(src, mmap_mode="r")
    largest = float(np.finfo(dtype).max)
    peak = float(np.nanmax(np.abs(x))) if x.size else 0.0
    if peak > largest:
        raise VitnirsError(
            f"{src}: dataset '{dataset}' has values up to {peak:.4g}, beyond {np.dtype(dtype).name} "
            f"(largest {largest:.4g}); pack it with --dtype float32"
        )
    packed = np.ascontiguousarray(x, dtype=dtype)
    np.save(dst, packed)
    return rounding_error(x, packed, scale)


def pack_store(
    source: str | Path,
    out: str | Path,
    *,
    regions: tuple[str, ...] | list[str] | None = ("NIR", "vis-NIR"),
    dtype: str = "float16",
    progress: bool = False,
) -> dict:
    """Write a packed copy of the store ``source`` to ``out``; returns the new manifest.

    ``regions=None`` keeps every dataset. ``out`` is replaced if it is already a store; any
    other non-empty folder is refused.
    """
    if dtype not in PACK_DTYPES:
        raise VitnirsError(f"--dtype {dtype!r}: choose one of {sorted(PACK_DTYPES)}")
    store = PreparedStore(source)
    out = Path(out)
    if out.resolve() == store.path.resolve():
        raise VitnirsError(f"{out}: the packed copy must go to another folder than its source")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise VitnirsError(f"{out}: exists and is not a store; choose an empty or new folder")
    names = store.names(regions=tuple(regions) if regions is not None else None)
    if not names:
        have = sorted({r["region"] for r in store.records.values()})
        raise VitnirsError(f"{store.path}: no dataset in regions {list(regions or [])} (it has {have})")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    errors: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name in tqdm(names, desc="pack", unit="dataset", disable=not progress):
            src_dir, dst_dir = store.path / "datasets" / name, tmp / "datasets" / name
            dst_dir.mkdir(parents=True)
            scale = np.asarray(store.values(name), dtype=np.float64).std(axis=1)  # [n]
            errors[name] = {
                f.removesuffix(".npy"): _pack_array(src_dir / f, dst_dir / f, PACK_DTYPES[dtype], name, scale)
                for f in _ARRAYS
            }
            for f in _COPIED:
                if (src_dir / f).exists():
                    shutil.copy2(src_dir / f, dst_dir / f)
        manifest = {
            **store.manifest,
            "datasets": [store.records[n] for n in names],
            "packed": {
                "source": str(store.path.resolve()),
                "dtype": dtype,
                "regions": list(regions) if regions is not None else None,
                "left_out": sorted(set(store.records) - set(names)),
                "rounding_error": errors,
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def folder_mib(path: str | Path) -> float:
    """Total size of the files under ``path``, in MiB."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20
