"""Benchmark `vitnirs prepare` on a bank: wall time and peak memory, from scratch and
incrementally, plus AsLS throughput (ours vs nirs4all's ``ASLSBaseline``).

    python benchmarks/prepare.py [--bank ../shared/xbank] [--out benchmarks/results/prepare.json]

Each prepare run is a separate ``vitnirs prepare`` process; its peak memory is the largest
resident set among that process and its workers (``ru_maxrss``: per process, not summed).

With ``--large``, one generated file the size of the largest user datasets instead
(15,000 × 2,100 by default, ~290 MB; written once into ``--large-dir`` and reused), prepared
by one ``vitnirs prepare`` under ``/usr/bin/time -v`` (its "Maximum resident set size" and
wall time), into ``--keep-store`` when given (to compare stores before/after a change)::

    python benchmarks/prepare.py --large [--rows 15000 --points 2100] [--keep-store /tmp/store]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GNU_TIME = "/usr/bin/time"


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


def write_large_csv(path: Path, n_rows: int, n_points: int, seed: int = 0, chunk: int = 1000) -> Path:
    """A bank CSV of ``n_rows`` absorbance-like spectra on ``n_points`` wavelengths (1 nm steps
    from 400 nm), 6 decimals, with a ``sample_id``, a ``batch`` and a ``y_protein`` column.

    Deterministic for a seed; written in chunks of rows (never the whole table in memory).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    wavelengths = np.arange(400, 400 + n_points)
    x = np.linspace(0.0, 1.0, n_points)[None, :]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        fh.write(",".join(["sample_id", "batch", "y_protein", *map(str, wavelengths)]) + "\n")
        for start in range(0, n_rows, chunk):
            m = min(chunk, n_rows - start)
            level = 0.3 + rng.uniform(0.0, 0.4, (m, 1)) + rng.uniform(-0.2, 0.2, (m, 1)) * x
            centre, width = rng.uniform(0.2, 0.8, (m, 1)), rng.uniform(0.03, 0.15, (m, 1))
            band = rng.uniform(0.05, 0.6, (m, 1)) * np.exp(-(((x - centre) / width) ** 2))
            spectra = level + band + rng.normal(0.0, 0.002, (m, n_points))  # [m, L]
            frame = pd.DataFrame(spectra)
            frame.insert(0, "y_protein", np.round(rng.uniform(5.0, 15.0, m), 3))
            frame.insert(0, "batch", [f"b{b}" for b in rng.integers(0, 12, m)])
            frame.insert(0, "sample_id", [f"s{start + i:06d}" for i in range(m)])
            frame.to_csv(fh, header=False, index=False, float_format="%.6f", lineterminator="\n")
    tmp.replace(path)
    return path


def _time_v(cmd: list[str]) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``: wall seconds, maximum resident set size, its stdout."""
    proc = subprocess.run([GNU_TIME, "-v", *cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024, 1), "stdout": proc.stdout}


def bench_large(args: argparse.Namespace) -> dict:
    """`vitnirs prepare` of one generated ``rows × points`` file under ``/usr/bin/time -v``."""
    args.large_dir.mkdir(parents=True, exist_ok=True)
    path = args.large_dir / f"large_{args.rows}x{args.points}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_large_csv(path, args.rows, args.points)
        print(
            f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.0f} s"
        )
    work = Path(tempfile.mkdtemp(prefix="vitnirs-bench-large-"))
    store = args.keep_store or work / "store"
    try:
        if store.exists():
            shutil.rmtree(store)
        cmd = [sys.executable, "-m", "vitnirs", "prepare", "--bank", str(path), "--out", str(store)]
        run = _time_v([*cmd, "--workers", "1", "--no-progress"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "file": str(path),
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "rows": args.rows,
        "points": args.points,
        "cpu_count": os.cpu_count(),
        "benchmark": f"python benchmarks/prepare.py --large --rows {args.rows} --points {args.points}",
        "command": f"{GNU_TIME} -v {' '.join(cmd)} --workers 1 --no-progress",
        "seconds": run["seconds"],
        "peak_rss_mib": run["peak_rss_mib"],
        "summary": next(line for line in run["stdout"].splitlines() if line.startswith("prepared")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, default=HERE.parent.parent / "shared" / "xbank")
    parser.add_argument("--out", type=Path, help="result JSON; default results/prepare[_large].json")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--large", action="store_true", help="one generated large file instead of a bank")
    parser.add_argument("--rows", type=int, default=15_000, help="--large: spectra in the file")
    parser.add_argument("--points", type=int, default=2_100, help="--large: wavelengths in the file")
    parser.add_argument(
        "--large-dir", type=Path, default=Path(tempfile.gettempdir()) / "vitnirs-bench-data",
        help="--large: where the generated file is written once and reused",
    )  # fmt: skip
    parser.add_argument("--keep-store", type=Path, help="--large: prepare into this folder and keep it")
    args = parser.parse_args()
    if args.large:
        result = bench_large(args)
        out = args.out or HERE / "results" / "prepare_large.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return
    args.out = args.out or HERE / "results" / "prepare.json"
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
