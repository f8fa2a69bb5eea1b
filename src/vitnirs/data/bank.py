"""A bank folder (or one file) → prepare jobs, with each file's declared unit and signal type."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from vitnirs.data.declarations import Declaration, declaration, from_config, read_bank_manifest
from vitnirs.data.prepare import Job, file_hash
from vitnirs.errors import VitnirsError

BANK_SUFFIXES = (".csv", ".tsv", ".txt")


def bank_files(bank: Path) -> list[Path]:
    """The entries of a bank folder named like data files (not recursive), sorted; a single file as is.

    Folders, broken links and other entries that are not files are listed too, so that
    :func:`entry_problem` can say why each is skipped instead of dropping it silently.
    """
    bank = Path(bank)
    if bank.is_dir():
        return sorted(p for p in bank.iterdir() if p.suffix.lower() in BANK_SUFFIXES)
    if bank.exists() or bank.is_symlink():
        return [bank]
    raise VitnirsError(f"{bank}: no such file or folder")


def entry_problem(path: Path) -> str | None:
    """Why ``path`` is not a data file that can be read (plain words), or None for a regular file.

    Only ``stat``: nothing is opened (opening a FIFO would block).
    """
    try:
        mode = os.stat(path).st_mode  # follows symbolic links
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a broken symbolic link (its target {os.readlink(path)} does not exist)"
        return "no such file (removed while the bank was read)"
    except OSError as err:
        return f"cannot be read ({_os_reason(err)})"
    if stat.S_ISDIR(mode):
        return "a folder, not a data file"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a data file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a device or socket), not a data file"
    return None


def _os_reason(err: OSError) -> str:
    reason = err.strerror or str(err) or type(err).__name__
    return reason[:1].lower() + reason[1:]


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
    single = not bank.is_dir()
    manifest, notes = read_bank_manifest(bank.parent if single else bank)
    try:
        cli = declaration(unit, signal_type, "command line")
    except ValueError as err:
        raise VitnirsError(str(err)) from err
    jobs, used = [], set()
    for path in files:
        content_hash, unreadable = _content_hash(path)
        if unreadable and single:
            raise VitnirsError(f"{path}: {unreadable}")
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
                content_hash=content_hash,
                path=path,
                declared=declared,
                unreadable=unreadable,
            )
        )
    return jobs, notes


def _content_hash(path: Path) -> tuple[str, str | None]:
    """``(hash, None)`` for a readable file, ``("", reason)`` for an entry that cannot be read."""
    problem = entry_problem(path)
    if problem is not None:
        return "", problem
    try:
        return file_hash(path), None
    except OSError as err:
        return "", f"cannot be read ({_os_reason(err)})"


def prune_missing_files(bank: str | Path):
    """A ``prune`` rule: drop records of files of this bank folder that no longer exist."""
    folder = Path(bank).resolve()
    if not folder.is_dir():
        return None

    def prune(record: dict) -> bool:
        path = Path(record.get("source", ""))
        return record.get("kind") == "real" and path.parent == folder and not path.exists()

    return prune
