"""The `vitnirs` commands: one small function per command, ``cmd_X(args) -> exit code``.

:mod:`vitnirs.cli` builds the parser and maps each command to its function here; heavy
imports (torch, nirs4all) happen inside the functions, so ``vitnirs --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vitnirs.config import Config, load_config
from vitnirs.errors import VitnirsError
from vitnirs.evaluate.text import evaluation_lines, pretrain_line
from vitnirs.workflows.sources import (
    asls_settings,
    prepare_run_store,
    prepare_sources,
    synthetic_check,
    synthetic_jobs,
)

BUNDLED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


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
    raise VitnirsError(f"{name}: no such config file (bundled ones: {', '.join(bundled_config_names())})")


def bundled_config_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_CONFIGS.glob("*.yaml") if not p.stem.startswith("ablation_"))


def _config(args: argparse.Namespace) -> Config:
    return load_config(resolve_config_path(args.config), args.set or ())


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
    from vitnirs.data.prepare import describe_skipped, warning_lines

    for line in warning_lines(report):
        print(f"  warning {line}", file=sys.stderr)
    for entry in report.skipped:
        print(f"  skipped {describe_skipped(entry)}", file=sys.stderr)
    if report.skipped and bank is not None and Path(bank).is_file():
        return 2  # a single-file run that could not use its file is a failure
    if not report.manifest["datasets"]:
        raise VitnirsError("no usable dataset: every file was skipped (see the reasons above)")
    return 0


# ----------------------------------------------------------------------------- pack
def cmd_pack(args: argparse.Namespace) -> int:
    from vitnirs.data.pack import folder_mib, pack_store

    regions = None if args.all_regions else args.regions
    manifest = pack_store(args.store, args.out, regions=regions, dtype=args.dtype, progress=_progress(args))
    packed = manifest["packed"]
    worst = max(
        (e["max_rel_std"], name, part)
        for name, parts in packed["rounding_error"].items()
        for part, e in parts.items()
    )
    print(
        f"packed {len(manifest['datasets'])} datasets ({packed['dtype']}) into {args.out}: "
        f"{folder_mib(args.out):.1f} MiB (source {folder_mib(args.store):.1f} MiB); "
        f"left out {len(packed['left_out'])}; largest rounding error {worst[0]:.2g} x the spectrum's std "
        f"({worst[1]}, {worst[2]})"
    )
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
    from vitnirs.workflows.demo import run_demo

    run_demo(_config(args), args.out, workers=args.workers, threads=args.threads, progress=_progress(args))
    return 0


# ----------------------------------------------------------------------------- pretrain
def cmd_pretrain(args: argparse.Namespace) -> int:
    from vitnirs.train.loop import pretrain

    started = time.perf_counter()
    cfg = _config(args)
    out = Path(args.out)
    if args.max_steps is not None and args.max_steps < 1:
        raise VitnirsError("--max-steps must be at least 1")
    store = args.store or (None if args.bank else cfg.data.store_dir)
    if store is None:
        store = out / "store"
        bank = args.bank or cfg.data.real_datasets_dir
        if bank is not None and not Path(bank).exists():
            raise VitnirsError(f"--bank {bank}: no such folder or file")
        prepare_run_store(cfg, store, bank=bank, step="[1/2]", workers=args.workers, progress=_progress(args))
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
    from vitnirs.workflows.evaluation import evaluate

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
    from vitnirs.workflows.ablate import bundled_ablation_files, run_ablation

    files = args.files or bundled_ablation_files()
    result = run_ablation(
        files, out=args.out, overrides=args.set or [], store=args.store, progress=_progress(args)
    )
    print(f"ablation table: {result['markdown']}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from vitnirs.workflows.study import run_study

    checkpoints = {}
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise VitnirsError(f"--checkpoint {item!r}: expected NAME=PATH (e.g. shipped=default)")
        checkpoints[name] = path
    if not args.recipes and not checkpoints:
        raise VitnirsError("nothing to score: give recipe files and/or --checkpoint NAME=PATH")
    result = run_study(
        args.recipes, checkpoints=checkpoints, card=args.scorecard, bank=args.bank, out=args.out,
        readouts=args.readout, overrides=args.set or [], pretrain_store=args.pretrain_store,
        progress=_progress(args),
    )  # fmt: skip
    print(f"study table: {result['markdown']}")
    return 0


def cmd_lodo(args: argparse.Namespace) -> int:
    from vitnirs.workflows.lodo import strict_lodo

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
    from vitnirs.workflows.finetune import finetune

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
    print(
        f"results: {out / 'finetune.json'}; fine-tuned checkpoint: {res['finetuned_checkpoint']} "
        "(load_encoder, SpectralEmbedder(checkpoint=...), vitnirs embed --checkpoint)"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vitnirs.workflows.export import export_from_args

    path = export_from_args(
        args.checkpoint, args.out, dtype=args.dtype, run_dir=args.run_dir, downstream=args.downstream,
        store=args.store, bank_manifests=args.bank_manifest, hardware=args.hardware, notes=args.note,
        readout=args.readout, scorecard=args.scorecard, scorecard_entries=args.scorecard_entry,
        overwrite=args.overwrite,
    )  # fmt: skip
    print(f"portable checkpoint: {path}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from vitnirs.workflows.embed_csv import embed_csv

    out = embed_csv(
        args.input, args.out, checkpoint=args.checkpoint, batch_size=args.batch_size, device=args.device,
        unit=args.unit, signal_type=args.signal_type, reference=args.reference, progress=_progress(args),
    )  # fmt: skip
    print(f"embeddings → {out}")
    return 0


# ----------------------------------------------------------------------------- config
def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    cfg = _config(args)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
