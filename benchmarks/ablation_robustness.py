"""Robustness of each ablation variant: RMSEP at the largest perturbation ÷ clean RMSEP.

    python benchmarks/ablation_robustness.py ABL [ABL ...] [--out FILE.json] [--markdown]

Reads every finished variant of the ``vitnirs ablate`` output folders ``ABL`` (their
``evaluation/metrics.json``, run with ``evaluation.robustness`` on) and writes, per variant,
dataset and perturbation, the ratio at the largest severity for the embedding head and for the
classical pipelines of the same evaluation. The classical ratios do not depend on the variant
but do on the folder: its ``training.seed`` also draws the perturbations. Several folders (e.g.
the same variants with another seed) are reported side by side, keyed by folder.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def largest_severity(records: list[dict]) -> dict[tuple[str, str, str], dict]:
    """(dataset, perturbation, method) -> the record at the largest severity."""
    top: dict[str, float] = defaultdict(float)
    for r in records:
        top[r["perturbation"]] = max(top[r["perturbation"]], r["severity"])
    return {
        (r["dataset"], r["perturbation"], r["method"]): r
        for r in records
        if r["severity"] == top[r["perturbation"]] and r["severity"] > 0
    }


def collect(folder: Path) -> list[dict]:
    rows = []
    for variant_file in sorted(folder.glob("*/variant.json")):
        variant = json.loads(variant_file.read_text())
        if variant.get("status") != "done":
            continue
        metrics = json.loads(Path(variant["metrics"]).read_text())
        records = metrics.get("robustness") or []
        if not records:
            raise SystemExit(
                f"{variant['metrics']}: no robustness records (run with evaluation.robustness on)"
            )
        for (dataset, perturbation, method), r in sorted(largest_severity(records).items()):
            rows.append(
                {
                    "folder": str(folder),
                    "variant": variant["name"],
                    "dataset": dataset,
                    "perturbation": perturbation,
                    "severity": r["severity"],
                    "severity_unit": r.get("severity_unit"),
                    "method": method,
                    "rmsep": r["metrics"]["rmsep"],
                    "rmsep_ratio": r["metrics"]["rmsep_ratio"],
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    """One line per (dataset, perturbation): per folder, each variant's embedding ratio, then the
    classical ones (per folder too: the folder's seed draws the perturbations)."""
    cells: dict[tuple, dict] = {}
    for r in rows:
        kind = r["variant"] if r["method"].startswith("embedding") else r["method"]
        cells[(r["folder"], kind, r["dataset"], r["perturbation"])] = r
    embedding = sorted({(r["folder"], r["variant"]) for r in rows if r["method"].startswith("embedding")})
    classical = sorted({(r["folder"], r["method"]) for r in rows if not r["method"].startswith("embedding")})
    cols = embedding + classical
    head = [f"{Path(folder).name}/{kind}" for folder, kind in cols]
    lines = ["| dataset | perturbation | " + " | ".join(head) + " |", "|---" * (2 + len(head)) + "|"]
    keys = sorted({(r["dataset"], r["perturbation"], r["severity"], r["severity_unit"]) for r in rows})
    for dataset, pert, sev, unit in keys:
        found = [cells.get((folder, kind, dataset, pert)) for folder, kind in cols]
        vals = [f"×{r['rmsep_ratio']:.2f}" if r else "—" for r in found]
        lines.append(f"| {dataset} | {pert} {sev:g} {unit or ''} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    rows = [row for folder in args.folders for row in collect(folder)]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"folders": [str(f) for f in args.folders], "rows": rows}, indent=1))
    print(markdown(rows) if args.markdown else json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
