"""Every bank entry is accounted for: a folder, a broken link, a FIFO or an unreadable file named
like a data file is skipped with its reason (never dropped silently, never aborting the run),
and `vitnirs prepare` prints each kept file's warnings."""

from __future__ import annotations

import builtins
import errno
import os
import signal
from pathlib import Path

import pytest

from vitnirs.cli import main
from vitnirs.data.bank import bank_jobs, prune_missing_files
from vitnirs.data.prepare import file_hash, prepare, warning_lines


@pytest.fixture(autouse=True)
def no_hang():
    """Fail instead of hanging forever if something opens a FIFO."""

    def hung(signum, frame):
        raise TimeoutError("blocked for 20 s: a FIFO was opened?")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def unreadable(monkeypatch, path: Path) -> None:
    """Make opening ``path`` fail as it would without read permission (tests run as root)."""
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).absolute() == path.absolute():
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)


def make_directory(path: Path, monkeypatch) -> str:
    path.mkdir()
    (path / "inside.csv").write_text("not read: banks are not recursive")
    return "a folder, not a data file"


def make_broken_link(path: Path, monkeypatch) -> str:
    target = path.parent.parent / "gone.csv"
    path.symlink_to(target)
    return f"a broken symbolic link (its target {target} does not exist)"


def make_fifo(path: Path, monkeypatch) -> str:
    os.mkfifo(path)
    return "a named pipe (FIFO), not a data file"


def make_unreadable(path: Path, monkeypatch) -> str:
    path.write_text("sample_id,1100\ns1,0.5\n")
    unreadable(monkeypatch, path)
    return "cannot be read (permission denied)"


ENTRIES = {
    "directory": make_directory,
    "broken_link": make_broken_link,
    "fifo": make_fifo,
    "unreadable": make_unreadable,
}


def run(bank: Path, store: Path, **kwargs):
    jobs, notes = bank_jobs(bank)
    return prepare(jobs, store, prune=prune_missing_files(bank), notes=notes, progress=False, **kwargs)


def kept(report) -> dict[str, dict]:
    return {r["name"]: r for r in report.manifest["datasets"]}


# ----------------------------------------------------------------------------- skipped, with a reason
@pytest.mark.parametrize("kind", ENTRIES)
def test_entry_that_is_not_a_readable_file_is_skipped_with_its_reason(kind, csvs, tmp_path, monkeypatch):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    csvs.good("b.csv", seed=1, folder=bank)
    entry = bank / "x.csv"
    reason = ENTRIES[kind](entry, monkeypatch)
    report = run(bank, tmp_path / "store")
    assert report.manifest["skipped"] == [
        {"file": "x.csv", "source": str(bank.resolve() / "x.csv"), "reason": reason}
    ]
    assert sorted(kept(report)) == ["a", "b"]
    assert sorted(report.recomputed) == ["a", "b"]
    assert not (tmp_path / "store" / "datasets" / "x").exists()


def test_all_kinds_at_once_in_parallel_leave_the_good_files_alone(csvs, tmp_path, monkeypatch):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    csvs.good("b.csv", seed=1, folder=bank)
    reasons = {f"{kind}.csv": make(bank / f"{kind}.csv", monkeypatch) for kind, make in ENTRIES.items()}
    report = run(bank, tmp_path / "store", workers=2)
    assert {s["file"]: s["reason"] for s in report.manifest["skipped"]} == reasons
    assert sorted(kept(report)) == ["a", "b"]
    assert report.summary().startswith(
        "prepared 2 datasets (50 spectra): 2 new or changed, 0 unchanged, 4 skipped"
    )


def test_file_that_becomes_unreadable_leaves_the_store(csvs, tmp_path, monkeypatch):
    bank, store = tmp_path / "bank", tmp_path / "store"
    csvs.good("a.csv", folder=bank)
    path = csvs.good("b.csv", seed=1, folder=bank)
    assert sorted(kept(run(bank, store))) == ["a", "b"]
    unreadable(monkeypatch, path)
    report = run(bank, store)
    assert sorted(kept(report)) == ["a"] and report.unchanged == ["a"]
    assert [s["file"] for s in report.manifest["skipped"]] == ["b.csv"]
    assert not (store / "datasets" / "b").exists()


# ----------------------------------------------------------------------------- valid symbolic links
def test_valid_symlink_to_a_good_csv_is_read_and_pruned_when_removed(csvs, tmp_path):
    bank, store = tmp_path / "bank", tmp_path / "store"
    csvs.good("a.csv", folder=bank)
    target = csvs.good("elsewhere.csv", n=7, seed=2, folder=tmp_path / "outside")
    (bank / "linked.csv").symlink_to(target)
    report = run(bank, store)
    assert report.manifest["skipped"] == []
    record = kept(report)["linked"]
    assert record["n_rows"] == 7 and record["content_hash"] == file_hash(target)
    assert record["source"] == str(bank.resolve() / "linked.csv")  # the bank's entry, not its target

    (bank / "linked.csv").unlink()
    report = run(bank, store)
    assert sorted(kept(report)) == ["a"] and report.removed == ["linked"]
    assert not (store / "datasets" / "linked").exists()


# ----------------------------------------------------------------------------- one entry as the bank
@pytest.mark.parametrize("kind", ["broken_link", "fifo", "unreadable"])  # a folder is a bank folder
def test_prepare_single_unreadable_entry_is_a_clear_error(kind, tmp_path, monkeypatch, capsys):
    (tmp_path / "bank").mkdir()
    entry = tmp_path / "bank" / "x.csv"
    reason = ENTRIES[kind](entry, monkeypatch)
    code = main(["prepare", "--bank", str(entry), "--out", str(tmp_path / "X"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip() == f"error: {entry}: {reason}"
    assert "Traceback" not in captured.err + captured.out


# ----------------------------------------------------------------------------- kept files' warnings
def record(name: str, n_warnings: int) -> dict:
    return {"name": name, "file": f"{name}.csv", "source": f"/bank/{name}.csv",
            "warnings": [f"warning {i}" for i in range(n_warnings)]}  # fmt: skip


def test_warning_lines_first_three_per_file_then_a_count():
    manifest = {"datasets": [record("a", 5), record("b", 0), record("c", 3), record("d", 1)]}
    assert warning_lines(manifest) == [
        "/bank/a.csv: warning 0",
        "/bank/a.csv: warning 1",
        "/bank/a.csv: warning 2",
        "/bank/a.csv: (+2 more in manifest.json)",
        "/bank/c.csv: warning 0",
        "/bank/c.csv: warning 1",
        "/bank/c.csv: warning 2",
        "/bank/d.csv: warning 0",
    ]
    assert warning_lines(manifest, per_file=1)[:2] == [
        "/bank/a.csv: warning 0",
        "/bank/a.csv: (+4 more in manifest.json)",
    ]


def test_prepare_prints_each_kept_files_warnings(csvs, tmp_path, capsys):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    csvs.good("few.csv", n=5, seed=1, folder=bank)  # also "only 5 spectra": 4 warnings
    assert main(["prepare", "--bank", str(bank), "--out", str(tmp_path / "X"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 1  # stdout: the summary only
    lines = captured.err.splitlines()
    a, few = bank.resolve() / "a.csv", bank.resolve() / "few.csv"
    assert f"  warning {a}: signal type 'unknown': stored as given, not converted to absorbance" in lines
    assert any(line.startswith(f"  warning {a}: axis unit not declared: guessed 'nm'") for line in lines)
    assert sum(line.startswith(f"  warning {a}: ") for line in lines) == 3
    assert sum(line.startswith(f"  warning {few}: ") for line in lines) == 4
    assert f"  warning {few}: (+1 more in manifest.json)" in lines
