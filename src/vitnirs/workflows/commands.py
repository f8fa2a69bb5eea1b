"""The `vitnirs` commands: one small function per command, ``cmd_X(args) -> exit code``.

:mod:`vitnirs.cli` builds the parser and maps each command to its function here (the research
tools ``ablate``, ``study`` and ``lodo``: :mod:`vitnirs.research.commands`); heavy imports (torch,
nirs4all) happen inside the functions, so ``vitnirs --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vitnirs.config import Config, load_config
from vitnirs.data.prepare import PrepareReport
from vitnirs.data.signal import SIGNAL_TYPES, UNITS
from vitnirs.errors import VitnirsError
from vitnirs.evaluate.text import evaluation_lines, pretrain_line
from vitnirs.workflows.sources import (
    asls_settings,
    prepare_run_store,
    prepare_sources,
    synthetic_check,
    synthetic_jobs,
)

PACKAGE = Path(__file__).resolve().parent.parent
USER_CONFIGS = PACKAGE / "configs"  # default, demo
# The research wing's recipes: read here as files, never imported (vitnirs.research sits above workflows).
RESEARCH_RECIPES = PACKAGE / "research" / "recipes"
BUNDLED_CONFIG_DIRS = (USER_CONFIGS, RESEARCH_RECIPES)  # a bare name is looked up in this order


def bundled_config(name: str | Path) -> Path | None:
    """The bundled YAML a bare name such as ``demo`` or ``patch_mae`` means: a user config first,
    then a research recipe; None for a path (``a/b.yaml``) or a name that is neither."""
    path = Path(name)
    if path.parent != Path("."):
        return None
    found = [d / f"{path.stem}.yaml" for d in BUNDLED_CONFIG_DIRS]
    return next((f for f in found if f.is_file()), None)


def resolve_config_path(name: str | None) -> Path | None:
    """A config file path; a bare name such as ``demo`` means the bundled ``configs/demo.yaml``
    (then ``research/recipes/<name>.yaml``: ``patch``, the shipped model's recipe)."""
    if name is None:
        return None
    path = Path(name)
    if path.exists():
        return path
    bundled = bundled_config(path)
    if bundled is not None and is_variant(bundled):
        raise VitnirsError(
            f"{name}: a variant recipe (a base config + overrides), not a config: run it with `vitnirs "
            f"ablate {name}` or `vitnirs study {name}`, or pass its base config"
        )
    if bundled is not None:
        return bundled
    raise VitnirsError(f"{name}: no such config file (bundled ones: {bundled_config_text()})")


def is_variant(path: Path) -> bool:
    """Whether a YAML is a variant recipe (``base:`` + ``overrides:``, read by ablate and study)
    rather than a config: a top-level ``base:`` line (a config has no such section)."""
    return any(line.startswith("base:") for line in path.read_text(encoding="utf-8").splitlines())


def bundled_config_names() -> list[str]:
    """Bare names of the bundled YAMLs: the user configs, then the research recipes (each sorted)."""
    return [p.stem for d in BUNDLED_CONFIG_DIRS for p in sorted(d.glob("*.yaml"))]


def bundled_config_text() -> str:
    """``default, demo; research recipes: patch; variants (ablate, study): patch_mae, ...`` (help, messages)."""
    user, research = ([p for p in sorted(d.glob("*.yaml"))] for d in BUNDLED_CONFIG_DIRS)
    configs = [p.stem for p in research if not is_variant(p)]
    variants = [p.stem for p in research if is_variant(p)]
    return ", ".join(p.stem for p in user) + "".join(
        f"; {label}: {', '.join(names)}"
        for label, names in (("research recipes", configs), ("variants (ablate, study)", variants))
        if names
    )


def args_config(args: argparse.Namespace) -> Config:
    """The config of a command's ``--config`` and ``--set``."""
    return load_config(resolve_config_path(args.config), args.set or ())


def args_progress(args: argparse.Namespace) -> bool:
    """Progress bars unless ``--no-progress``."""
    return not args.no_progress


# vitnirs.model.readout.READOUTS, spelt out here so that `vitnirs --help` does not import torch;
# tests/test_cli_newcomer.py checks that the two agree.
READOUT_CHOICES = ("mean", "mean+std", "mean+level", "mean+max", "groups4", "groups8")


def add_declaration_options(p: argparse.ArgumentParser, files: str) -> None:
    """``--unit`` and ``--signal-type``, one wording for every command that reads spectra files
    (``prepare``, ``embed``, ``finetune``); ``files`` says which (``"the bank's files"``). The
    values are checked where the files are read (:func:`vitnirs.data.declarations.declaration`),
    which also takes the usual aliases (``A``, ``%R``, ``wavenumber``)."""
    p.add_argument(
        "--unit",
        metavar="UNIT",
        help=f"axis unit of {files}: {' or '.join(UNITS)}; wins over any other declaration "
        "(data.declarations, a manifest.json beside the files); undeclared: guessed, with a warning",
    )
    signal_help = (
        f"signal type of {files}: {', '.join(SIGNAL_TYPES)} (reflectance and transmittance become "
        "absorbance, log10(1/R)); wins over any other declaration; undeclared: guessed, with a warning"
    )
    p.add_argument("--signal-type", metavar="TYPE", help=signal_help.replace("%", "%%"))  # argparse %-formats


def print_prepare_notes(report: PrepareReport) -> None:
    """The warnings of the prepared files (at most 3 per file) and the skipped files, on stderr."""
    from vitnirs.data.prepare import describe_skipped, warning_lines

    for line in warning_lines(report):
        print(f"  warning {line}", file=sys.stderr)
    for entry in report.skipped:
        print(f"  skipped {describe_skipped(entry)}", file=sys.stderr)


# ----------------------------------------------------------------------------- prepare
def cmd_prepare(args: argparse.Namespace) -> int:
    cfg = args_config(args)
    bank = args.bank or cfg.data.real_datasets_dir
    out = Path(args.out or cfg.data.store_dir or "vitnirs_store")
    if bank is None and (args.unit or args.signal_type):
        raise VitnirsError("--unit/--signal-type need --bank (the demo bank declares its own)")
    report = prepare_sources(
        cfg, out, bank=bank, unit=args.unit, signal_type=args.signal_type, synth=args.synth,
        workers=args.workers, progress=args_progress(args),
    )  # fmt: skip
    print(report.summary())
    print_prepare_notes(report)
    if report.skipped and bank is not None and Path(bank).is_file():
        return 2  # a single-file run that could not use its file is a failure
    if not report.manifest["datasets"]:
        raise VitnirsError("no usable dataset: every file was skipped (see the reasons above)")
    return 0


# ----------------------------------------------------------------------------- pack
def cmd_pack(args: argparse.Namespace) -> int:
    from vitnirs.data.pack import folder_mib, pack_store

    regions = None if args.all_regions else args.regions
    manifest = pack_store(
        args.store, args.out, regions=regions, dtype=args.dtype, progress=args_progress(args)
    )
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

    cfg = args_config(args)
    if args.seed is not None:
        cfg.data.seed = args.seed
    n = args.n if args.n is not None else cfg.data.synth_samples
    if n < 1:
        raise VitnirsError("--n must be at least 1")
    out = Path(args.out)
    jobs = synthetic_jobs(cfg, n, progress=args_progress(args))
    names = {j.name for j in jobs}
    report = prepare(
        jobs,
        out,
        asls=asls_settings(cfg),
        workers=args.workers or cfg.data.workers,
        prune=lambda r: r["kind"] == "synthetic" and r["name"] not in names,
        progress=args_progress(args),
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

    run_demo(
        args_config(args), args.out, workers=args.workers, threads=args.threads, progress=args_progress(args)
    )
    return 0


# ----------------------------------------------------------------------------- pretrain
def cmd_pretrain(args: argparse.Namespace) -> int:
    from vitnirs.train.loop import pretrain

    started = time.perf_counter()
    cfg = args_config(args)
    out = Path(args.out)
    if args.max_steps is not None and args.max_steps < 1:
        raise VitnirsError("--max-steps must be at least 1")
    store = args.store or (None if args.bank else cfg.data.store_dir)
    if store is None:
        store = out / "store"
        bank = args.bank or cfg.data.real_datasets_dir
        if bank is not None and not Path(bank).exists():
            raise VitnirsError(f"--bank {bank}: no such folder or file")
        prepare_run_store(
            cfg, store, bank=bank, step="[1/2]", workers=args.workers, progress=args_progress(args)
        )
        print(f"[2/2] pretrain → {out}")
    elif not Path(store).is_dir():
        raise VitnirsError(f"{store}: no such store (run `vitnirs prepare` first, or leave out --store)")
    summary = pretrain(
        cfg,
        store=Path(store),
        run_dir=out,
        resume=args.resume,
        max_steps=args.max_steps,
        progress=args_progress(args),
    )
    if summary.get("steps") is None:  # not rank 0 of a torchrun job: rank 0 reports
        return 0
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "pretrain_summary.json").write_text(json.dumps(summary, indent=1))
    print(pretrain_line(summary))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vitnirs.workflows.evaluation import evaluate, step_seconds_line

    cfg = args_config(args)
    store = args.store or cfg.data.store_dir
    if store is None:
        raise VitnirsError("--store is needed (a prepared store: `vitnirs prepare --out STORE`)")
    result = evaluate(
        cfg, checkpoint=args.checkpoint, store=store, out=args.out, progress=args_progress(args)
    )
    print(evaluation_lines(result))
    print(step_seconds_line(result))
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


def cmd_finetune(args: argparse.Namespace) -> int:
    from vitnirs.data.store import PreparedStore
    from vitnirs.workflows.finetune import finetune

    out = Path(args.out)
    if args.store:
        if args.unit or args.signal_type:
            raise VitnirsError(
                "--unit/--signal-type declare the files of --bank; a --store is already prepared"
            )
        store = PreparedStore(args.store)
    else:
        print(f"prepare: {args.bank} → {out / 'store'}")
        report = prepare_sources(
            load_config(None, ()), out / "store", bank=args.bank, unit=args.unit,
            signal_type=args.signal_type, synth=0, progress=args_progress(args),
        )  # fmt: skip
        print(report.summary())
        print_prepare_notes(report)
        store = PreparedStore(out / "store")
    candidates = [n for n in store.names(kind="real") if set(args.target) <= set(store.records[n]["targets"])]
    dataset = args.dataset or (candidates[0] if len(candidates) == 1 else None)
    if dataset is None:
        raise VitnirsError(f"--dataset is needed: datasets with {args.target}: {candidates or 'none'}")
    res = finetune(
        args.checkpoint, store, dataset, args.target, out=out, epochs=args.epochs, lr=args.lr,
        head_lr=args.head_lr, freeze_encoder=args.freeze_encoder, progress=args_progress(args),
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
        shipped_name=args.shipped_name, overwrite=args.overwrite,
    )  # fmt: skip
    print(f"portable checkpoint: {path}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from vitnirs.workflows.embed_csv import embed_csv

    out = embed_csv(
        args.input, args.out, checkpoint=args.checkpoint, batch_size=args.batch_size, device=args.device,
        unit=args.unit, signal_type=args.signal_type, readout=args.readout, reference=args.reference,
        progress=args_progress(args),
    )  # fmt: skip
    print(f"embeddings → {out}")
    return 0


# ----------------------------------------------------------------------------- config
def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    cfg = args_config(args)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
