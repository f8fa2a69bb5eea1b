"""`vitnirs prepare`: sources (bank CSVs, demo datasets, synthetic builds) → prepared store.

Each source is a :class:`Job`. A job whose content hash and settings are unchanged since
the last run is not recomputed; the others are read, validated, converted, given their
AsLS baseline and written, in parallel across datasets (one process per dataset, the
batched AsLS inside). A bad file never stops the run: it goes into the manifest's
``skipped`` list with a plain-language reason, and every good file is kept.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from vitnirs import __version__
from vitnirs.data.asls import asls_baseline
from vitnirs.data.csv import read_csv
from vitnirs.data.declarations import Declaration
from vitnirs.data.store import (
    FORMAT_VERSION,
    dataset_record,
    read_manifest,
    remove_dataset,
    write_dataset,
    write_manifest,
)
from vitnirs.data.table import SpectralTable
from vitnirs.data.validate import build_table
from vitnirs.errors import BadFileError, VitnirsError


@dataclass(frozen=True)
class AslsSettings:
    """nirs4all ``ASLSBaseline`` parameters used for the cached baselines."""

    lam: float = 1e6
    p: float = 0.01
    max_iter: int = 50
    tol: float = 1e-3


@dataclass
class Job:
    """One dataset to prepare: a CSV file (``path``) or an in-memory table (``table``)."""

    name: str
    kind: str  # "real" or "synthetic"
    origin: str  # the file path, or "demo:…" / "synthetic:…"
    content_hash: str
    path: Path | None = None
    table: SpectralTable | None = None
    declared: Declaration = field(default_factory=Declaration)
    unreadable: str | None = None  # why ``path`` cannot be read at all (a folder, a broken link…): skipped


@dataclass
class PrepareReport:
    """What a prepare run did; ``summary()`` is the one-line summary printed at the end."""

    store: Path
    manifest: dict
    recomputed: list[str]
    unchanged: list[str]
    skipped: list[dict]
    removed: list[str]
    seconds: float

    def summary(self) -> str:
        kept = self.manifest["datasets"]
        n_spectra = sum(r["n_rows"] for r in kept)
        n_warn = sum(1 for r in kept if r["warnings"])
        return (
            f"prepared {len(kept)} datasets ({n_spectra:,} spectra): {len(self.recomputed)} new or changed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped, {n_warn} with warnings"
            + (f", {len(self.removed)} removed" if self.removed else "")
            + f" → {self.store / 'manifest.json'} in {self.seconds:.1f} s"
        )


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def table_hash(table: SpectralTable) -> str:
    """Content hash of an in-memory table (values, axis, columns, declared types)."""
    digest = hashlib.sha256()
    digest.update(table.values.tobytes())
    digest.update(table.wavelengths_nm.tobytes())
    for frame in (table.targets, table.metadata):
        digest.update(frame.to_csv(index=False).encode())
    digest.update(f"{table.signal_type_original}|{table.native_unit}".encode())
    return digest.hexdigest()


def settings_hash(job: Job, asls: AslsSettings) -> str:
    settings = {
        "format_version": FORMAT_VERSION,
        "asls": vars(asls),
        "unit": job.declared.unit,
        "signal_type": job.declared.signal_type,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _run_job(job: Job, store: Path, asls: AslsSettings, settings: str) -> tuple[str, dict]:
    """Worker: read + validate + AsLS + write. Returns ("ok", record) or ("skipped", reason)."""
    if job.unreadable:
        return "skipped", {"reason": job.unreadable, **_where(job)}
    try:
        if job.table is not None:
            table = job.table
        else:
            table = build_table(read_csv(job.path), name=job.name, declared=job.declared)
        baseline = asls_baseline(table.values, lam=asls.lam, p=asls.p, max_iter=asls.max_iter, tol=asls.tol)
        record = dataset_record(table, kind=job.kind, content_hash=job.content_hash, settings_hash=settings)
        record.update(_where(job))
        write_dataset(store, table, baseline, record)
        return "ok", record
    except BadFileError as err:
        return "skipped", {**err.to_dict(), **_where(job)}
    except MemoryError:
        return "skipped", {"reason": "not enough memory to load this file", **_where(job)}
    except Exception as err:  # a bank run never crashes on one file; the reason is kept
        return "skipped", {"reason": f"unexpected error ({type(err).__name__}: {err})", **_where(job)}


def _where(job: Job) -> dict:
    """``file`` (the file name, as in a bank manifest) and ``source`` (absolute path of the bank
    entry itself: a symbolic link is not followed, so its record belongs to the bank folder)."""
    if job.path is None:
        return {"file": job.origin, "source": job.origin}
    return {"file": job.path.name, "source": str(Path(job.path).parent.resolve() / job.path.name)}


def _executor(workers: int):
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def prepare(
    jobs: Iterable[Job],
    store: str | Path,
    *,
    asls: AslsSettings = AslsSettings(),
    workers: int = 1,
    prune: Callable[[dict], bool] | None = None,
    notes: Iterable[str] = (),
    progress: bool = True,
) -> PrepareReport:
    """Bring ``store`` up to date with ``jobs``.

    Parameters
    ----------
    jobs:
        The datasets of this run. Names must be unique.
    prune:
        Called on each record already in the store that is not a job of this run; True
        removes it (e.g. a file that has left the bank folder).
    notes:
        Run-level warnings recorded in the manifest's ``notes``.
    """
    started = time.perf_counter()
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    jobs = list(jobs)
    old = read_manifest(store) or {"datasets": []}
    if "packed" in old:
        raise VitnirsError(f"{store}: a packed copy (`vitnirs pack`), read-only; prepare into another folder")
    old_records = {r["name"]: r for r in old["datasets"]}
    job_names = {j.name for j in jobs}

    todo, unchanged, records = [], [], {}
    for job in jobs:
        settings = settings_hash(job, asls)
        prev = old_records.get(job.name)
        if (
            prev
            and prev["content_hash"] == job.content_hash
            and prev["settings_hash"] == settings
            and (store / "datasets" / job.name / "values.npy").exists()
        ):
            unchanged.append(job.name)
            records[job.name] = prev
        else:
            todo.append((job, settings))

    removed = [n for n, r in old_records.items() if n not in job_names and prune is not None and prune(r)]
    kept_old = {n: r for n, r in old_records.items() if n not in job_names and n not in removed}

    skipped: list[dict] = []
    bar = tqdm(total=len(todo), desc="prepare", unit="dataset", disable=not progress or not todo)
    if workers > 1 and len(todo) > 1:
        with _executor(min(workers, len(todo))) as pool:
            futures = {pool.submit(_run_job, job, store, asls, s): job for job, s in todo}
            for fut in as_completed(futures):
                _collect(futures[fut], fut.result(), records, skipped, bar)
    else:
        for job, s in todo:
            _collect(job, _run_job(job, store, asls, s), records, skipped, bar)
    bar.close()

    for name in removed + [j.name for j, _ in todo if j.name not in records]:
        remove_dataset(store, name)  # gone from the bank, or now unreadable: stale data would mislead
    datasets = sorted([*records.values(), *kept_old.values()], key=lambda r: r["name"])
    manifest = {
        "format_version": FORMAT_VERSION,
        "vitnirs_version": __version__,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "asls": vars(asls),
        "datasets": datasets,
        "skipped": sorted(skipped, key=lambda s: s["file"]),
        "notes": list(notes),
    }
    write_manifest(store, manifest)
    return PrepareReport(
        store=store,
        manifest=manifest,
        recomputed=[j.name for j, _ in todo if j.name in records],
        unchanged=unchanged,
        skipped=manifest["skipped"],
        removed=removed,
        seconds=time.perf_counter() - started,
    )


def describe_skipped(entry: dict) -> str:
    """``file: reason (row r, column 'c')`` for a ``skipped`` record."""
    where = [f"row {entry['row']}"] if "row" in entry else []
    where += [f"column '{entry['column']}'"] if "column" in entry else []
    return f"{entry.get('source', entry['file'])}: {entry['reason']}" + (
        f" ({', '.join(where)})" if where else ""
    )


def warning_lines(manifest: dict | PrepareReport, per_file: int = 3) -> list[str]:
    """``file: warning`` lines for each kept dataset, at most ``per_file`` per dataset, then
    ``file: (+N more in manifest.json)``; ``manifest`` is a store manifest or a :class:`PrepareReport`."""
    if isinstance(manifest, PrepareReport):
        manifest = manifest.manifest
    lines = []
    for record in manifest["datasets"]:
        where, warnings = record.get("source", record["file"]), record["warnings"]
        lines += [f"{where}: {text}" for text in warnings[:per_file]]
        if len(warnings) > per_file:
            lines.append(f"{where}: (+{len(warnings) - per_file} more in manifest.json)")
    return lines


def _collect(job: Job, result: tuple[str, dict], records: dict, skipped: list, bar) -> None:
    status, payload = result
    if status == "ok":
        records[job.name] = payload
    else:
        skipped.append(payload)  # listed by the caller at the end, not mixed into the bar
    bar.update(1)


def table_jobs(tables: Iterable[SpectralTable], kind: str) -> list[Job]:
    """Jobs for in-memory tables (demo datasets, synthetic builds)."""
    return [Job(name=t.name, kind=kind, origin=t.source, content_hash=table_hash(t), table=t) for t in tables]
