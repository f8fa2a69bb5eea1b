"""`vitnirs`: one entry point, one small function per command.

Exit codes: 0 success; 2 bad usage or bad input (the message says what and where, no
traceback); 1 any other failure (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vitnirs import __version__
from vitnirs.config import Config, load_config
from vitnirs.data.sources import asls_settings, prepare_sources, synthetic_check, synthetic_jobs
from vitnirs.errors import VitnirsError
from vitnirs.evaluate.text import evaluation_lines, pretrain_line

BUNDLED_CONFIGS = Path(__file__).parent / "configs"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help text with every option's default, and descriptions kept as written."""


def resolve_config_path(name: str | None) -> Path | None:
    """A config file path; a bare name such as ``demo`` means the bundled ``configs/demo.yaml``."""
    if name is None:
        return None
    path = Path(name)
    if path.exists():
        return path
    bundled = BUNDLED_CONFIGS / f"{path.stem}.yaml"
    if path.parent == Path(".") and bundled.exists():
        return bundled
    raise VitnirsError(f"{name}: no such config file (bundled ones: {', '.join(_bundled_names())})")


def _bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_CONFIGS.glob("*.yaml") if not p.stem.startswith("ablation_"))


def _config(args: argparse.Namespace) -> Config:
    return load_config(resolve_config_path(args.config), args.set or ())


def _add_config_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument(
        "--config",
        default=default,
        help="YAML config file, or the name of a bundled one "
        f"({', '.join(_bundled_names())}); none = built-in defaults",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one config key (repeatable), e.g. --set training.epochs=1",
    )


def _progress(args: argparse.Namespace) -> bool:
    return not args.no_progress


# ----------------------------------------------------------------------------- prepare
def cmd_prepare(args: argparse.Namespace) -> int:
    cfg = _config(args)
    bank = args.bank or cfg.data.real_datasets_dir
    out = Path(args.out or cfg.data.store_dir or "vitnirs_store")
    if bank is None and (args.unit or args.signal_type):
        raise VitnirsError("--unit/--signal-type need --bank (the demo bank declares its own)")
    report = prepare_sources(
        cfg, out, bank=bank, unit=args.unit, signal_type=args.signal_type, synth=args.synth,
        workers=args.workers, progress=_progress(args),
    )  # fmt: skip
    print(report.summary())
    for entry in report.skipped:
        from vitnirs.data.prepare import describe_skipped

        print(f"  skipped {describe_skipped(entry)}", file=sys.stderr)
    if report.skipped and bank is not None and Path(bank).is_file():
        return 2  # a single-file run that could not use its file is a failure
    if not report.manifest["datasets"]:
        raise VitnirsError("no usable dataset: every file was skipped (see the reasons above)")
    return 0


# ----------------------------------------------------------------------------- synth
def cmd_synth(args: argparse.Namespace) -> int:
    from vitnirs.data.prepare import prepare

    cfg = _config(args)
    if args.seed is not None:
        cfg.data.seed = args.seed
    n = args.n if args.n is not None else cfg.data.synth_samples
    if n < 1:
        raise VitnirsError("--n must be at least 1")
    out = Path(args.out)
    jobs = synthetic_jobs(cfg, n, progress=_progress(args))
    names = {j.name for j in jobs}
    report = prepare(
        jobs,
        out,
        asls=asls_settings(cfg),
        workers=args.workers or cfg.data.workers,
        prune=lambda r: r["kind"] == "synthetic" and r["name"] not in names,
        progress=_progress(args),
    )
    print(report.summary())
    if not args.no_check:
        check = synthetic_check([j.table for j in jobs], out)
        print(
            f"synthetic vs demo bank adversarial AUC: {check['raw']['auc']:.3f} raw, "
            f"{check['snv']['auc']:.3f} after SNV (0.5 = indistinguishable) → {out / 'synthetic_check.json'}"
        )
    return 0


# ----------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    """prepare (embedded demo bank + synthetic) → pretrain → evaluate → report, all under OUT/."""
    from vitnirs.demo import run_demo

    run_demo(_config(args), args.out, workers=args.workers, progress=_progress(args))
    return 0


# ----------------------------------------------------------------------------- pretrain
def cmd_pretrain(args: argparse.Namespace) -> int:
    from vitnirs.train.loop import pretrain

    started = time.perf_counter()
    cfg = _config(args)
    out = Path(args.out)
    if args.max_steps is not None and args.max_steps < 1:
        raise VitnirsError("--max-steps must be at least 1")
    store = args.store or cfg.data.store_dir
    if store is None:
        store = out / "store"
        bank = cfg.data.real_datasets_dir
        print(f"[1/2] prepare: {bank or 'embedded demo bank'} + {cfg.data.synth_samples} synthetic → {store}")
        report = prepare_sources(
            cfg, store, bank=bank, synth=cfg.data.synth_samples, workers=None, progress=_progress(args)
        )
        print(report.summary())
        print(f"[2/2] pretrain → {out}")
    elif not Path(store).is_dir():
        raise VitnirsError(f"{store}: no such store (run `vitnirs prepare` first, or leave out --store)")
    summary = pretrain(
        cfg,
        store=Path(store),
        run_dir=out,
        resume=args.resume,
        max_steps=args.max_steps,
        progress=_progress(args),
    )
    if summary.get("steps") is None:  # not rank 0 of a torchrun job: rank 0 reports
        return 0
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "pretrain_summary.json").write_text(json.dumps(summary, indent=1))
    print(pretrain_line(summary))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vitnirs.evaluate.suite import evaluate

    cfg = _config(args)
    store = args.store or cfg.data.store_dir
    if store is None:
        raise VitnirsError("--store is needed (a prepared store: `vitnirs prepare --out STORE`)")
    result = evaluate(cfg, checkpoint=args.checkpoint, store=store, out=args.out, progress=_progress(args))
    print(evaluation_lines(result))
    print(f"metrics: {Path(args.out) / 'metrics.json'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from vitnirs.report import write_report

    if not Path(args.dir).is_dir():
        raise VitnirsError(
            f"{args.dir}: no such folder (give the --out folder of `vitnirs demo` or `evaluate`)"
        )
    print(f"report: {write_report(args.dir, args.html)}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from vitnirs.ablate import bundled_ablation_files, run_ablation

    files = args.files or bundled_ablation_files()
    result = run_ablation(
        files, out=args.out, overrides=args.set or [], store=args.store, progress=_progress(args)
    )
    print(f"ablation table: {result['markdown']}")
    return 0


def cmd_lodo(args: argparse.Namespace) -> int:
    from vitnirs.evaluate.lodo import strict_lodo

    cfg = _config(args)
    if not Path(args.store).is_dir():
        raise VitnirsError(f"{args.store}: no such store (run `vitnirs prepare` first)")
    records = strict_lodo(
        cfg, store=args.store, datasets=args.datasets, out=args.out, progress=_progress(args)
    )
    print(f"{len(records)} LODO records: {Path(args.out) / 'lodo.json'}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from vitnirs.data.store import PreparedStore
    from vitnirs.finetune import finetune

    out = Path(args.out)
    if args.store:
        store = PreparedStore(args.store)
    else:
        print(f"prepare: {args.bank} → {out / 'store'}")
        report = prepare_sources(
            load_config(None, ()), out / "store", bank=args.bank, synth=0, progress=_progress(args)
        )
        print(report.summary())
        store = PreparedStore(out / "store")
    candidates = [n for n in store.names(kind="real") if set(args.target) <= set(store.records[n]["targets"])]
    dataset = args.dataset or (candidates[0] if len(candidates) == 1 else None)
    if dataset is None:
        raise VitnirsError(f"--dataset is needed: datasets with {args.target}: {candidates or 'none'}")
    res = finetune(
        args.checkpoint, store, dataset, args.target, out=out, epochs=args.epochs, lr=args.lr,
        head_lr=args.head_lr, freeze_encoder=args.freeze_encoder, progress=_progress(args),
    )  # fmt: skip
    for t in res["targets"]:
        verdict = "better" if t["finetuned_vs_frozen_ridge"] < 1 else "worse"
        print(
            f"  {dataset}/{t['target']} [{res['protocol']}]: fine-tuned RMSEP {t['finetuned']['rmsep']:.4g}, "
            f"ridge on the frozen embedding {t['frozen_ridge']['rmsep']:.4g} ({verdict})"
        )
    print(f"results: {out / 'finetune.json'}; weights: {out / 'model.safetensors'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vitnirs.portable import export_from_args

    path = export_from_args(
        args.checkpoint, args.out, dtype=args.dtype, run_dir=args.run_dir, downstream=args.downstream,
        store=args.store, bank_manifests=args.bank_manifest, hardware=args.hardware, notes=args.note,
        overwrite=args.overwrite,
    )  # fmt: skip
    print(f"portable checkpoint: {path}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from vitnirs.embed_csv import embed_csv

    out = embed_csv(
        args.input, args.out, checkpoint=args.checkpoint, batch_size=args.batch_size, device=args.device,
        unit=args.unit, signal_type=args.signal_type, progress=_progress(args),
    )  # fmt: skip
    print(f"embeddings → {out}")
    return 0


# ----------------------------------------------------------------------------- config
def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    cfg = _config(args)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitnirs",
        formatter_class=_Formatter,
        description="vitnirs: a universal encoder for near-infrared spectra.\n"
        "Start with `vitnirs demo --out demo_run`.",
    )
    parser.add_argument("--version", action="version", version=f"vitnirs {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of any error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "prepare",
        formatter_class=_Formatter,
        help="validate a bank of CSVs into a prepared store",
        description="Validate every CSV of a bank, convert to absorbance in nm, cache the AsLS "
        "baselines and write a prepared store (re-runs only redo changed files).",
    )
    p.add_argument(
        "--bank",
        help="folder of CSVs or one CSV; default: data.real_datasets_dir, else the embedded demo bank",
    )
    p.add_argument("--out", help="store folder; default: data.store_dir, else ./vitnirs_store")
    p.add_argument("--unit", help="axis unit of the bank's files (nm, cm-1); wins over every declaration")
    p.add_argument(
        "--signal-type",
        help="signal type of the bank's files (absorbance, reflectance, "
        "reflectance%%, transmittance, transmittance%%, unknown)",
    )
    p.add_argument("--synth", type=int, default=0, metavar="N", help="also add N synthetic spectra")
    p.add_argument("--workers", type=int, help="processes (datasets in parallel); default: data.workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser(
        "synth",
        formatter_class=_Formatter,
        help="generate synthetic spectra into a store",
        description="nirs4all synthetic spectra on many instrument grids (with paired views), "
        "written as a prepared store, plus an adversarial-AUC check against the demo bank.",
    )
    p.add_argument("--n", type=int, help="number of spectra; default: data.synth_samples")
    p.add_argument("--out", required=True, help="store folder (may be the store of a bank)")
    p.add_argument("--seed", type=int, help="random seed; default: data.seed")
    p.add_argument("--workers", type=int, help="processes; default: data.workers")
    p.add_argument("--no-check", action="store_true", help="skip the adversarial AUC check")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="run the whole chain on the embedded demo bank",
        description="Embedded demo bank + synthetic spectra → prepared store → pretraining (configs/demo.yaml) "
        "→ baselines vs embedding heads, cross-instrument transfer, downstream-only LODO, robustness, synthetic "
        "checks → OUT/report.html. A few minutes on a laptop CPU.",
    )
    p.add_argument("--out", default="vitnirs_demo", help="output folder")
    p.add_argument("--workers", type=int, help="processes; default: data.workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(p, default="demo")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "pretrain",
        formatter_class=_Formatter,
        help="pretrain the encoder (masked reconstruction + invariance losses)",
        description="Pretrain the spectral Perceiver on a prepared store (without --store: the "
        "bank of data.real_datasets_dir, else the embedded demo bank, plus data.synth_samples "
        "synthetic spectra, prepared into RUN_DIR/store). Writes metrics.jsonl, checkpoints/, "
        "loss_curve.png. Several GPUs: torchrun --nproc_per_node=N -m vitnirs pretrain ...",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--store", help="prepared store; default: data.store_dir, else prepare into RUN_DIR/store")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in RUN_DIR")
    p.add_argument(
        "--max-steps", type=int, metavar="N", help="stop at step N (the schedule still spans the epochs)"
    )
    p.add_argument("--workers", type=int, help="processes for preparing the store; default: data.workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser(
        "evaluate",
        formatter_class=_Formatter,
        help="baselines vs heads on the frozen embedding, transfer, robustness, checks",
        description="Phase 0 classical baselines and heads on the frozen embedding of CHECKPOINT, on the same "
        "splits of every real dataset with targets; cross-instrument transfer, downstream-only LODO, robustness "
        "and synthetic checks; writes OUT/metrics.json (+ the report's artefacts).",
    )
    p.add_argument(
        "--checkpoint", required=True, help="a checkpoint folder (…/checkpoints/step_N) or a run folder"
    )
    p.add_argument("--store", help="prepared store; default: data.store_dir")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "report",
        formatter_class=_Formatter,
        help="one self-contained HTML report of a run folder",
        description="Find the pretraining run, evaluation and ablation outputs under DIR (the layout "
        "`vitnirs demo --out DIR` leaves) and write one HTML file with every plot embedded.",
    )
    p.add_argument("dir", metavar="DIR", help="folder to report on")
    p.add_argument("--html", help="output file; default DIR/report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "ablate",
        formatter_class=_Formatter,
        help="pretrain and evaluate ablation variants; one comparison table",
        description="Each FILE is a variant (name, base config, overrides): pretrain, evaluate, then compare "
        "against the best classical pipeline (A) in OUT/ablation.{json,md,png}. Without FILE: the bundled "
        "variants (MAE only, + augmentations, + baseline consistency, p_synth 0/0.3/0.6, no metadata). "
        "Resumable: finished variants are not rerun.",
    )
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="ablation_*.yaml files; default: the bundled ones"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--store", help="prepared store; default: the demo bank + synthetic, prepared into OUT/store"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override applied to every variant")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser(
        "lodo",
        formatter_class=_Formatter,
        help="strict leave-one-dataset-out: pretrain without each dataset, evaluate on it",
        description="For each of --datasets: pretrain for evaluation.lodo_steps steps with that dataset left "
        "out, then fit the heads on its train part and score its test part. Hours for a whole bank on a CPU; "
        "resumable, results cached in OUT.",
    )
    p.add_argument("--store", required=True, help="prepared store")
    p.add_argument(
        "--datasets", nargs="+", required=True, metavar="NAME", help="datasets to leave out, one by one"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(p, default="demo")
    p.set_defaults(func=cmd_lodo)

    p = sub.add_parser(
        "finetune",
        formatter_class=_Formatter,
        help="fine-tune an encoder + linear head on your targets",
        description="One or several numeric y_* targets of one dataset; the split of `vitnirs evaluate` "
        "(native cal/test, else Kennard-Stone); early stopping on part of the train rows; the head first, "
        "then the encoder at a small learning rate (or --freeze-encoder). Compared with ridge on the frozen "
        "embedding on the same split.",
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint folder or a pretraining run folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bank", help="a CSV or a folder of CSVs (prepared into OUT/store)")
    src.add_argument("--store", help="a prepared store")
    p.add_argument("--dataset", help="dataset name in the store (default: the only one with the targets)")
    p.add_argument("--target", action="append", required=True, metavar="Y", help="y_* column (repeatable)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-4, help="encoder learning rate")
    p.add_argument("--head-lr", type=float, default=1e-2, help="head learning rate")
    p.add_argument("--freeze-encoder", action="store_true", help="train the head only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser(
        "embed",
        formatter_class=_Formatter,
        help="embed the spectra of one bank CSV (metadata and targets carried through)",
        description="Read INPUT.csv as `vitnirs prepare` does (units, signal types, reflectance → absorbance), "
        "embed every spectrum with the checkpoint (default: the model shipped with vitnirs) and write "
        "OUT.csv or OUT.parquet: the metadata and y_* columns, then emb_0 … emb_{D-1}, in input row order.",
    )
    p.add_argument("input", metavar="INPUT.csv")
    p.add_argument("--out", required=True, help="OUT.csv or OUT.parquet")
    p.add_argument(
        "--checkpoint", default="default", help="'default' (the shipped model), a checkpoint or run folder"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--unit", help="axis unit (nm, cm-1); wins over a manifest.json beside the file")
    p.add_argument(
        "--signal-type", help="absorbance, reflectance, reflectance%%, transmittance, transmittance%%"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser(
        "export",
        formatter_class=_Formatter,
        help="portable checkpoint: weights + config + model card (no trainer state)",
        description="Write model.safetensors (bf16 by default), config.json and model_card.md; every number in "
        "the card is read from the run folder, the store and a benchmarks/downstream.py JSON.",
    )
    p.add_argument("checkpoint", help="a checkpoint folder or a pretraining run folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    p.add_argument("--run-dir", help="the pretraining run (losses); default: found from the checkpoint")
    p.add_argument("--downstream", help="a benchmarks/downstream.py JSON for the card's results")
    p.add_argument("--store", help="the prepared store it was trained on (data and sizes)")
    p.add_argument("--bank-manifest", action="append", help="bank manifest.json with licences (repeatable)")
    p.add_argument("--hardware", default="unknown", help="what it was trained on, for the card")
    p.add_argument("--note", action="append", help="a line for the card (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("config", formatter_class=_Formatter, help="validate a config and print it resolved")
    _add_config_options(p)
    p.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VitnirsError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(
            f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
