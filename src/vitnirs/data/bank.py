"""A bank folder (or one file) → prepare jobs, with each file's declared unit and signal type."""

from __future__ import annotations

import re
from pathlib import Path

from vitnirs.data.declarations import Declaration, declaration, from_config, read_bank_manifest
from vitnirs.data.prepare import Job, file_hash
from vitnirs.errors import VitnirsError

BANK_SUFFIXES = (".csv", ".tsv", ".txt")


def bank_files(bank: Path) -> list[Path]:
    """The data files of a bank folder (not recursive), sorted; a single file as is."""
    bank = Path(bank)
    if bank.is_file():
        return [bank]
    if not bank.is_dir():
        raise VitnirsError(f"{bank}: no such file or folder")
    return sorted(p for p in bank.iterdir() if p.is_file() and p.suffix.lower() in BANK_SUFFIXES)


def dataset_name(path: Path) -> str:
    """A store-safe dataset name from a file name (``My Data (2).csv`` → ``My_Data_2``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("_.") or "dataset"


def bank_jobs(
    bank: str | Path,
    *,
    rules: list[dict] = (),
    unit: str | None = None,
    signal_type: str | None = None,
) -> tuple[list[Job], list[str]]:
    """Jobs for every file of ``bank`` plus run-level notes.

    ``unit`` / ``signal_type`` (the ``--unit`` / ``--signal-type`` options) apply to every
    file and win over ``rules`` (``data.declarations``), which win over the bank's
    ``manifest.json``.
    """
    bank = Path(bank)
    files = bank_files(bank)
    if not files:
        raise VitnirsError(f"{bank}: no data files ({', '.join(BANK_SUFFIXES)}) in this folder")
    manifest, notes = read_bank_manifest(bank.parent if bank.is_file() else bank)
    try:
        cli = declaration(unit, signal_type, "command line")
    except ValueError as err:
        raise VitnirsError(str(err)) from err
    jobs, used = [], set()
    for path in files:
        declared = cli.merged_under(from_config(path.name, list(rules))).merged_under(
            manifest.get(path.name, Declaration())
        )
        name = dataset_name(path)
        while name in used:
            name += "_"
        used.add(name)
        jobs.append(
            Job(
                name=name,
                kind="real",
                origin=str(path),
                content_hash=file_hash(path),
                path=path,
                declared=declared,
            )
        )
    return jobs, notes


def prune_missing_files(bank: str | Path):
    """A ``prune`` rule: drop records of files of this bank folder that no longer exist."""
    folder = Path(bank).resolve()
    if not folder.is_dir():
        return None

    def prune(record: dict) -> bool:
        path = Path(record.get("source", ""))
        return record.get("kind") == "real" and path.parent == folder and not path.exists()

    return prune
