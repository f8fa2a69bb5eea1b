"""Downstream, transfer and robustness of one checkpoint on the demo bank and ../shared/xbank.

    python benchmarks/downstream.py --checkpoint RUN_OR_CKPT [--banks demo xbank]
        [--xbank ../shared/xbank] [--out benchmarks/results/downstream.json] [--set k=v ...]

For each bank: prepare it (incremental, cached under ``benchmarks/.cache/``; no synthetic
spectra, no targets used anywhere but here), run :func:`vitnirs.workflows.evaluation.evaluate`
with the benchmark's settings (every real NIR / vis-NIR dataset, the first numeric target
and the class targets, the native / Kennard–Stone split + 5 random repeats under 200
samples, the Phase 0 baselines with the compact AOM bank, ridge / PLS / kernel-ridge heads,
transfer on corn and tablets where present, robustness on two datasets, synthetic checks
off — the store has no synthetic spectra), and write one JSON with the per-target summary
(best classical, best overall, best embedding, ratio), the transfer medians, the robustness
curves and the full metrics file of each bank, with the sha256 of the weights scored
(``weights_sha256``: ``vitnirs export --downstream`` uses the file only for those weights).
``--markdown`` prints the README table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SETTINGS = [
    "evaluation.datasets=[]",
    "evaluation.max_targets=1",
    "evaluation.repeats=5",
    "evaluation.aom_bank=compact",
    "evaluation.downstream_methods=[ridge, pls, kernel_ridge, logistic]",
    "evaluation.baseline_methods=[pls_raw, asls_snv_pls, snv_sg1_pls, pca_ridge, aom_pls, aom_ridge, krr_snv_sg1]",
    "evaluation.synthetic_checks=false",
    "evaluation.lodo_datasets=[]",
]


def prepare_bank(bank: str, xbank: Path) -> Path:
    """Prepare ``demo`` (the embedded demo bank) or the xbank into the benchmark cache."""
    from vitnirs.config import load_config
    from vitnirs.workflows.sources import prepare_sources

    store = CACHE / f"store_{bank}"
    cfg = load_config(None, [])
    report = prepare_sources(cfg, store, bank=None if bank == "demo" else str(xbank), synth=0, progress=False)
    print(f"[{bank}] {report.summary()}", flush=True)
    return store


def transfer_medians(records: list[dict]) -> list[dict]:
    """Median test RMSEP over the cross-instrument pairs, per group, k and method."""
    out: dict[tuple, list[float]] = {}
    for r in records:
        if r["source"] != r["target_instrument"]:
            out.setdefault((r["group"], r["k"], r["method"]), []).append(r["metrics"]["rmsep"])
    return [
        {"group": g, "k": k, "method": m, "median_rmsep": float(np.median(v)), "n_pairs": len(v)}
        for (g, k, m), v in out.items()
    ]


def markdown(results: dict) -> str:
    """The README table: per bank and target, best classical vs best embedding."""
    lines = [
        "| bank | dataset / target | split | best classical | best overall | best embedding | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for bank, res in results["banks"].items():
        for r in res["summary"]:
            key = "balanced_accuracy" if r.get("task") == "classification" else "rmsep"
            ratio = r["embedding_vs_best_classical"]
            lines.append(
                f"| {bank} | {r['dataset']} / {r['target']} | {r['protocol']} | {_cell(r['best_classical'], key)} | "
                f"{_cell(r['best_overall'], key)} | {_cell(r['best_embedding'], key)} | "
                f"{'–' if ratio is None else f'{ratio:.2f}'} |"
            )
    return "\n".join(lines)


def _cell(best: dict | None, key: str) -> str:
    return f"{best['method']} {best[key]:.4g}" if best else "–"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder or pretraining run folder")
    parser.add_argument("--banks", nargs="+", default=["demo", "xbank"], choices=["demo", "xbank"])
    parser.add_argument("--xbank", type=Path, default=HERE.parent.parent / "shared" / "xbank")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "downstream.json")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra config overrides"
    )
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args(argv)

    from vitnirs.checkpoint import find_checkpoint, weights_sha256
    from vitnirs.config import load_config
    from vitnirs.workflows.evaluation import evaluate

    cfg = load_config(None, SETTINGS + args.set)
    ckpt = find_checkpoint(args.checkpoint)  # a run folder: its newest checkpoint, scored and hashed
    results: dict = {
        "checkpoint": str(ckpt),
        "weights_sha256": weights_sha256(ckpt),  # vitnirs export --downstream uses it only for these weights
        "settings": SETTINGS + args.set,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "banks": {},
    }
    for bank in args.banks:
        if bank == "xbank" and not args.xbank.is_dir():
            print(f"[xbank] {args.xbank}: not found, skipped", flush=True)
            continue
        store = prepare_bank(bank, args.xbank)
        started = time.perf_counter()
        res = evaluate(cfg, checkpoint=ckpt, store=store, out=CACHE / f"eval_{bank}", progress=True)
        results["banks"][bank] = {
            "seconds": round(time.perf_counter() - started, 1),
            "summary": res["summary"],
            "transfer_medians": transfer_medians(res["transfer"]),
            "robustness": res["robustness"],
            "metrics_file": str(CACHE / f"eval_{bank}" / "metrics.json"),
        }
        print(f"[{bank}] evaluated in {results['banks'][bank]['seconds']} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    if args.markdown:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
