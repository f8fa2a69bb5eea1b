"""Robustness of each ablation variant: RMSEP at the largest perturbation ÷ clean RMSEP.

    python benchmarks/ablation_robustness.py ABL [ABL ...] [--out FILE.json] [--markdown]

Reads every finished variant of the ``vitnirs ablate`` output folders ``ABL`` (their
``evaluation/metrics.json``, run with ``evaluation.robustness`` on) and writes, per variant,
dataset and perturbation, the ratio at the largest severity for the embedding head and for the
classical pipelines of the same evaluation (which do not depend on the variant: the same
numbers in every row, a check that the variants were scored alike). Several folders (e.g. the
same variants with another ``training.seed``) are reported side by side, keyed by folder.
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
    """One line per (dataset, perturbation): each variant's embedding ratio, then the classical ones."""
    cols = sorted({(r["folder"], r["variant"]) for r in rows if r["method"].startswith("embedding")})
    classical = sorted({r["method"] for r in rows if not r["method"].startswith("embedding")})
    cell = {(r["folder"], r["variant"], r["dataset"], r["perturbation"], r["method"]): r for r in rows}
    keys = sorted({(r["dataset"], r["perturbation"], r["severity"], r["severity_unit"]) for r in rows})
    head = [f"{Path(f).name}/{v}" for f, v in cols] + classical
    lines = ["| dataset | perturbation | " + " | ".join(head) + " |", "|---" * (2 + len(head)) + "|"]
    first = cols[0] if cols else ("", "")
    for dataset, pert, sev, unit in keys:
        vals = []
        for f, v in cols:
            emb = [r for (ff, vv, d, p, _), r in cell.items() if (ff, vv, d, p) == (f, v, dataset, pert)]
            emb = [r for r in emb if r["method"].startswith("embedding")]
            vals.append(f"×{emb[0]['rmsep_ratio']:.2f}" if emb else "—")
        for m in classical:
            r = cell.get((first[0], first[1], dataset, pert, m))
            vals.append(f"×{r['rmsep_ratio']:.2f}" if r else "—")
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
