"""Strict leave-one-dataset-out (hours on 2 CPU cores): a thin wrapper of vitnirs.research.strict_lodo.

    python benchmarks/lodo.py --store RUN/store --out benchmarks/results/lodo \\
        [--datasets NAME ...] [--checkpoint RUN/pretrain] [--config FILE] [--set section.key=value ...]

For each dataset (default: every real dataset of ``data.regions`` with a numeric target), a fresh encoder is pretrained without it for
``evaluation.lodo_steps`` steps, then the heads are fitted on its train split
(:func:`vitnirs.research.strict_lodo.strict_lodo`). Stop it at any time and run the same command again:
finished datasets are reused from ``OUT/<D>/result.json``, an unfinished pretraining resumes from
its checkpoint. ``--checkpoint`` (an encoder pretrained on everything) adds the downstream-only
LODO records, labelled as such, next to the strict ones. Writes ``OUT/lodo.json`` and ``OUT/lodo.png``
and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vitnirs.config import load_config
from vitnirs.data.store import PreparedStore
from vitnirs.evaluate.lodo_table import lodo_table
from vitnirs.evaluate.splits import regression_targets
from vitnirs.research.strict_lodo import strict_lodo


def default_datasets(store: PreparedStore, regions: list[str]) -> list[str]:
    """Real datasets of ``regions`` with at least one numeric ``y_*`` target."""
    return [n for n in store.names(regions=regions, kind="real") if regression_targets(store.targets(n))]


def _fmt(best: dict | None) -> str:
    return "-" if best is None else f"{best['rmsep']:.4g} ({best['method']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="prepared store")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lodo"))
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="a subset of the datasets")
    parser.add_argument("--checkpoint", type=Path, help="encoder pretrained on everything (downstream-only)")
    parser.add_argument("--config", type=Path, help="YAML config (default: the built-in defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--engine", choices=("nirs4all", "sklearn"), default="nirs4all")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    cfg = load_config(args.config, overrides=args.set)
    store = PreparedStore(args.store)
    datasets = args.datasets or default_datasets(store, list(cfg.data.regions))
    records = strict_lodo(
        cfg, store=args.store, datasets=datasets, out=args.out, progress=not args.no_progress,
        checkpoint=args.checkpoint, engine=args.engine,
    )  # fmt: skip
    print("dataset | target | best classical | strict LODO | downstream-only LODO | strict / classical")
    for row in lodo_table(records):
        if row.get("error"):
            print(f"{row['dataset']} | FAILED ({row['protocol']}): {row['error']}")
            continue
        print(
            f"{row['dataset']} | {row['target']} | {_fmt(row['best_classical'])} | {_fmt(row['best_strict'])}"
            f" | {_fmt(row['best_downstream_only'])} | {row['strict_vs_classical']}"
        )
    print(f"records: {args.out / 'lodo.json'}; plot: {args.out / 'lodo.png'}")


if __name__ == "__main__":
    main()
