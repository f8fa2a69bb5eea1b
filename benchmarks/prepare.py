"""Benchmark `vitnirs prepare` on a bank: wall time and peak memory, from scratch and
incrementally, plus AsLS throughput (ours vs nirs4all's ``ASLSBaseline``).

    python benchmarks/prepare.py [--bank ../shared/xbank] [--out benchmarks/results/prepare.json]

Each prepare run is a separate ``vitnirs prepare`` process; its peak memory is the largest
resident set among that process and its workers (``ru_maxrss``: per process, not summed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run_prepare(bank: Path, store: Path, workers: int) -> dict:
    """One `vitnirs prepare` in a fresh child process; wall time, peak RSS, its summary line.

    A small wrapper process runs the command and reports ``ru_maxrss`` of its children, so
    each run's peak is its own (the largest process: the main one or one worker).
    """
    cmd = [
        sys.executable,
        "-m",
        "vitnirs",
        "prepare",
        "--bank",
        str(bank),
        "--out",
        str(store),
        "--workers",
        str(workers),
        "--no-progress",
    ]
    wrapper = (
        "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
        "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    peak_kib = int(next(line for line in lines if line.startswith("PEAK_KIB")).split()[1])
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "summary": next(line for line in lines if line.startswith("prepared")),
    }


def _touch_one(bank: Path, work: Path) -> Path:
    """A copy of the bank (symlinks) with one file's content changed, for the incremental run."""
    copy = work / "bank"
    copy.mkdir()
    files = sorted(bank.glob("*.csv"))
    for f in files:
        (copy / f.name).symlink_to(f.resolve())
    if (bank / "manifest.json").exists():
        (copy / "manifest.json").symlink_to((bank / "manifest.json").resolve())
    changed = copy / files[0].name
    changed.unlink()
    changed.write_text(files[0].read_text() + "\n")  # one blank line more: new hash, same data
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, default=HERE.parent.parent / "shared" / "xbank")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "prepare.json")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.bank.is_dir():
        raise SystemExit(f"{args.bank}: no such bank folder")

    work = Path(tempfile.mkdtemp(prefix="vitnirs-bench-"))
    try:
        bank = _touch_one(args.bank, work)
        store = work / "store"
        result = {
            "bank": str(args.bank),
            "n_files": len(list(args.bank.glob("*.csv"))),
            "bank_mib": round(sum(f.stat().st_size for f in args.bank.glob("*.csv")) / 2**20, 1),
            "workers": args.workers,
            "cpu_count": os.cpu_count(),
            "from_scratch": _run_prepare(bank, store, args.workers),
            "unchanged_rerun": _run_prepare(bank, store, args.workers),
        }
        changed = sorted(bank.glob("*.csv"))[1]
        changed.unlink()
        changed.write_text(Path(sorted(args.bank.glob("*.csv"))[1]).read_text() + "\n")
        result["one_file_changed"] = _run_prepare(bank, store, args.workers)
        result["one_file_changed"]["changed_file"] = changed.name
        result["from_scratch_1_worker"] = _run_prepare(bank, work / "store1", 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    spec = importlib.util.spec_from_file_location("bench_asls", HERE / "asls.py")
    bench_asls = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_asls)
    result["asls_1000x700"] = bench_asls.benchmark_asls(1000, 700)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "asls_1000x700"}, indent=1))
    a = result["asls_1000x700"]
    print(
        f"AsLS 1000x700: ours {a['spectra_per_s_ours']:.0f} spectra/s, nirs4all {a['spectra_per_s_nirs4all']:.0f} "
        f"spectra/s ({a['speedup']:.2f}x) → {args.out}"
    )


if __name__ == "__main__":
    main()
