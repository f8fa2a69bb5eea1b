"""The headline figures of an evaluation's ``metrics.json`` as a small JSON (the README's demo tables).

    vitnirs demo --out D                      # or vitnirs evaluate ... --out D/evaluation
    python benchmarks/demo_digest.py D/evaluation/metrics.json --out benchmarks/results/demo/rule.json \\
        --command "vitnirs demo --out D"

Writes per target the summary row (best classical, best embedding, the controls and the ratios),
per transfer group the median RMSEP over the ordered pairs of every method at every k (aligned
rows apart), and the robustness ratios at the largest severity. A ``metrics.json`` is ~1 MB (it
keeps every record and the sample ids of every split); this keeps what the tables quote.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def digest(metrics: dict) -> dict:
    out = {
        "metadata": metrics.get("metadata", "store (before the metadata rule)"),
        "readout": metrics.get("readout", "mean"),
        "summary": metrics.get("summary", []),
    }
    medians: dict[tuple, list[float]] = defaultdict(list)
    for r in metrics.get("transfer", []):
        if r["source"] != r["target_instrument"] and r.get("metrics"):
            medians[(r["group"], r["protocol"], r["method"])].append(r["metrics"]["rmsep"])
    out["transfer_median_rmsep"] = [
        {"group": g, "protocol": p, "method": m, "median_rmsep": float(np.median(v)), "n_pairs": len(v)}
        for (g, p, m), v in sorted(medians.items())
    ]
    worst = defaultdict(dict)
    for r in metrics.get("robustness", []):
        k = (r["dataset"], r["perturbation"])
        if r["severity"] >= worst[k].get("severity", -1):
            worst[k] = {"severity": r["severity"]}
    out["robustness_at_largest_severity"] = [
        {
            "dataset": r["dataset"], "perturbation": r["perturbation"], "severity": r["severity"],
            "method": r["method"], "rmsep_vs_clean": r["metrics"].get("rmsep_ratio"),
        }
        for r in metrics.get("robustness", [])
        if r["severity"] == worst[(r["dataset"], r["perturbation"])]["severity"]
    ]  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("metrics", help="an evaluation's metrics.json")
    parser.add_argument("--out", required=True, help="the digest JSON to write")
    parser.add_argument("--command", default="", help="the command that produced metrics.json (recorded)")
    args = parser.parse_args()
    doc = {"source_command": args.command, **digest(json.loads(Path(args.metrics).read_text()))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
