"""The representation study of issue 13: the checkpoints we have, on one scorecard, with controls.

    python benchmarks/representation.py [--scorecard quick|full] [--seeds 0 1]
        [--recipes patch_mae patch_vicreg ...]
        [--readouts mean mean+std ...] [--readout-entries shipped patch_mae]
        [--xbank ../shared/xbank] [--no-shipped] [--tag patch] [--checkpoint NAME=PATH]
        [--score-set evaluation.nuisance_projection=4]

Runs :func:`vitnirs.research.study.run_study` on the research wing's recipes (default: every
``patch_*.yaml`` of ``vitnirs/research/recipes``, the variants of ``patch``, the shipped model's
recipe). Each recipe is pretrained under the budget of ``patch`` (400 steps × 64 spectra) on the
demo bank + 2,000 synthetic spectra, and the shipped model is scored as it is. The study runs once per pretraining seed (``training.seed``), into
``benchmarks/.cache/representation/seed<k>/``; the first seed's baseline cache serves the
others. The readouts of ``--readouts`` are scored on the entries of ``--readout-entries`` in the
seeds of ``--readout-seeds`` (default: the first); the others get the first readout only. Each seed's table is copied to
``benchmarks/results/representation/<scorecard>_seed<k>.{json,md}``. With several seeds,
``<scorecard>_seeds.md`` gives each figure per seed, with their mean and spread. A seed's
finished runs and scores are kept, so a rerun adds only what is new.

Each score carries the four axes (``axes`` of :func:`vitnirs.research.study_table.digest`): within,
few-shot (n = 10 / 25 / 50), robustness (one number per kind: the mean RMSEP perturbed ÷ clean
over the severities) and transfer (k = 0), with the controls in each (untrained network, seeds 0
and 1; SNV+SG1 features; MiniRocket features, which need ``pip install -e ".[eval]"``; the
classical pipelines). The MiniRocket heads do not depend on the checkpoint: the baseline cache
keeps them, so the first checkpoint of a study pays for them.

A study of its own takes ``--tag`` (its cache and its result files carry the tag);
``--recipes`` names recipe files or bundled recipes by bare name (``patch_mae``), and
``--checkpoint NAME=PATH`` adds checkpoints (e.g. the steps of a long run) to the first seed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "representation"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scorecard", choices=["quick", "full"], default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="pretraining seeds (training.seed)")
    parser.add_argument(
        "--recipes", nargs="*", help="recipe files or bundled names; default: every research patch_*.yaml"
    )
    parser.add_argument("--readouts", nargs="+", default=["mean"])
    parser.add_argument("--readout-entries", nargs="*", default=["shipped", "patch_mae"])
    parser.add_argument(
        "--readout-seeds", type=int, nargs="*", help="seeds scored with --readouts (default: the first)"
    )
    parser.add_argument("--xbank", type=Path, default=HERE.parent.parent / "shared" / "xbank")
    parser.add_argument("--no-shipped", action="store_true", help="leave the shipped model out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument(
        "--score-set", action="append", default=[], metavar="KEY=VALUE",
        help="evaluation settings added to the scorecard's (e.g. evaluation.nuisance_projection=4)",
    )  # fmt: skip
    parser.add_argument(
        "--tag",
        default="",
        help="a study of its own: cache .cache/representation/<tag>_seed<k>, results <tag>_*",
    )
    parser.add_argument(
        "--checkpoint", action="append", default=[], metavar="NAME=PATH", help="more checkpoints (first seed)"
    )
    args = parser.parse_args(argv)

    from vitnirs.research.ablate import default_recipe_files
    from vitnirs.research.study import run_study

    RESULTS.mkdir(parents=True, exist_ok=True)
    recipes = default_recipe_files() if args.recipes is None else args.recipes
    prefix = f"{args.tag}_" if args.tag else ""
    readout_seeds = args.seeds[:1] if args.readout_seeds is None else args.readout_seeds
    for seed in args.seeds:
        out, started = HERE / ".cache" / "representation" / f"{prefix}seed{seed}", time.perf_counter()
        overrides = [f"training.seed={seed}", *args.set]
        first_cache = (
            HERE / ".cache" / "representation" / f"{prefix}seed{args.seeds[0]}" / "baseline_cache.json"
        )
        if seed != args.seeds[0] and first_cache.is_file() and not (out / "baseline_cache.json").is_file():
            out.mkdir(parents=True, exist_ok=True)  # the classical fits do not depend on the pretraining seed
            shutil.copyfile(first_cache, out / "baseline_cache.json")
        shipped = {} if args.no_shipped or seed != args.seeds[0] else {"shipped": "default"}
        if seed == args.seeds[0]:
            shipped |= dict(item.split("=", 1) for item in args.checkpoint)
        readouts = args.readouts if seed in readout_seeds else args.readouts[:1]
        run_study(recipes, checkpoints=shipped, card=args.scorecard, bank=args.xbank, out=out, readouts=readouts,
                  readout_entries=args.readout_entries, overrides=overrides, score_overrides=args.score_set,
                  progress=False)  # fmt: skip
        _copy(out / f"study_{args.scorecard}.json", RESULTS / f"{prefix}{args.scorecard}_seed{seed}")
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    if len(args.seeds) > 1:
        path = RESULTS / f"{prefix}{args.scorecard}_seeds.md"
        path.write_text(seed_table(f"{prefix}{args.scorecard}", args.seeds, args.readouts[0]))
        print(f"wrote {path}", flush=True)
    return 0


def _axis(s: dict, *path: str) -> float | None:
    """``s["axes"][path…]``, None where a score (an older one, or one without that section) lacks it."""
    node = s.get("axes", {})
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, (int, float)) else None


# the four axes (within, few-shot, robustness: the embedding's median over the datasets, transfer k = 0)
FIGURES = [
    ("regression ratio", lambda s: s["regression_ratio"]),
    ("pretraining gain", lambda s: s["pretraining_gain"]),
    ("vs SNV+SG1 features", lambda s: s["vs_classical_features"]),
    ("vs MiniRocket features", lambda s: s.get("vs_minirocket")),
    *[(f"few-shot n={n} vs best classical", lambda s, n=n: _axis(s, "fewshot", str(n), "vs_classical"))
      for n in (10, 25, 50)],
    *[(f"few-shot n={n} vs untrained", lambda s, n=n: _axis(s, "fewshot", str(n), "vs_untrained"))
      for n in (10, 25, 50)],
    *[(f"robustness {k}", lambda s, k=k: _axis(s, "robustness", "by_kind", k, "embedding"))
      for k in ("drift", "scatter", "shift", "noise")],
    ("corn k=0", lambda s: s["transfer"].get("corn", {}).get("embedding")),
    ("corn k=0 +align", lambda s: s["transfer"].get("corn", {}).get("embedding+align")),
    ("tablets k=0", lambda s: s["transfer"].get("tablet", {}).get("embedding")),
    ("tablets k=0 +align", lambda s: s["transfer"].get("tablet", {}).get("embedding+align")),
    ("effective rank", lambda s: s["effective_rank"]),
]  # fmt: skip


def seed_table(card: str, seeds: list[int], readout: str = "mean") -> str:
    """Per recipe (``readout``, the one every entry is scored with): each figure per seed, their
    mean and spread (max - min); a figure no score has (e.g. few-shot in older results) is left out."""
    reports = {s: json.loads((RESULTS / f"{card}_seed{s}.json").read_text()) for s in seeds}
    names = [e["name"] for e in reports[seeds[0]]["entries"] if e["kind"] == "recipe"]
    figures = [(f, get) for f, get in FIGURES if any(_value(reports[s], name, readout, get) is not None
                                                     for s in seeds for name in names)]  # fmt: skip
    head = "| recipe | " + " | ".join(
        f"{f} (seeds {', '.join(map(str, seeds))}; mean ± spread)" for f, _ in figures
    )
    lines = [head + " |", "|---" * (1 + len(figures)) + "|"]
    for name in names:
        cells = []
        for _, get in figures:
            vals = [_value(reports[s], name, readout, get) for s in seeds]
            ok = [v for v in vals if v is not None]
            shown = " / ".join("–" if v is None else f"{v:.3g}" for v in vals)
            spread = f"; {statistics.mean(ok):.3g} ± {max(ok) - min(ok):.2g}" if len(ok) > 1 else ""
            cells.append(shown + spread)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _value(report: dict, name: str, readout: str, get) -> float | None:
    entry = next((e for e in report["entries"] if e["name"] == name), None)
    score = (entry or {}).get("scores", {}).get(readout, {})
    return get(score) if score and score.get("status") != "failed" else None


def _copy(json_path: Path, stem: Path) -> None:
    for suffix in (".json", ".md"):
        shutil.copyfile(json_path.with_suffix(suffix), stem.with_suffix(suffix))
    print(f"wrote {stem}.md", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
