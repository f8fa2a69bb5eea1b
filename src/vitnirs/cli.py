"""`vitnirs`: one entry point; the parser here, one small function per command in
:mod:`vitnirs.workflows.commands` (the research tools ``ablate``, ``study``, ``lodo``:
:mod:`vitnirs.research.commands`).

Exit codes: 0 success; 2 bad usage or bad input (the message says what and where, no
traceback); 1 any other failure (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

from vitnirs import __version__
from vitnirs.errors import VitnirsError
from vitnirs.pretrained import SHIPPED
from vitnirs.research.commands import cmd_ablate, cmd_lodo, cmd_study
from vitnirs.workflows.commands import (
    READOUT_CHOICES,
    add_declaration_options,
    bundled_config_text,
    cmd_config,
    cmd_demo,
    cmd_embed,
    cmd_evaluate,
    cmd_export,
    cmd_finetune,
    cmd_pack,
    cmd_prepare,
    cmd_pretrain,
    cmd_report,
    cmd_synth,
    resolve_config_path,
)

__all__ = ["build_parser", "main", "resolve_config_path"]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default where it has one (none for required options, flags and options whose
    default is worked out at run time: their help says how); descriptions wrapped line by line."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS or default == []:
            return action.help
        if isinstance(default, (list, tuple)):  # --regions NIR vis-NIR, as it is typed
            return f"{action.help} (default: {' '.join(map(str, default))})"
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
            for line in text.splitlines()
        )


_READOUTS = ", ".join(READOUT_CHOICES)  # their help lists them; the usage line says READOUT


def _add_set_option(p: argparse.ArgumentParser, applies_to: str = "") -> None:
    """``--set SECTION.KEY=VALUE``: one wording for every command that takes it."""
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help=f"override one config key{applies_to} (repeatable), e.g. --set training.epochs=1",
    )


def _add_config_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument(
        "--config",
        default=default,
        help="YAML config file, or the name of a bundled one "
        f"({bundled_config_text()}); none = built-in defaults",
    )
    _add_set_option(p)


def _add_progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The ``vitnirs`` parser: the user commands, then the research tools."""
    parser = argparse.ArgumentParser(
        prog="vitnirs",
        formatter_class=_Formatter,
        description="vitnirs: a universal encoder for near-infrared spectra.\n"
        "Start with `vitnirs demo --out demo_run`; `vitnirs COMMAND --help` says more.",
    )
    parser.add_argument("--version", action="version", version=f"vitnirs {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of any error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _demo, _embed, _finetune, _prepare, _synth, _pretrain, _evaluate, _report, _export, _pack, _config,
        _ablate, _study, _lodo,
    ):  # fmt: skip
        add(sub)
    for command in sub.choices.values():  # --debug before or after the command
        command.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show the Python traceback of any error",
        )
    return parser


def _command(
    sub: argparse._SubParsersAction, name: str, summary: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand: ``summary`` in ``vitnirs --help``, ``description`` (default: the summary) in its own."""
    return sub.add_parser(name, formatter_class=_Formatter, help=summary, description=description or summary)


# ----------------------------------------------------------------------------- user commands
def _demo(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "demo",
        "run the whole chain on the embedded demo bank",
        "Embedded demo bank + synthetic spectra → prepared store → pretraining (configs/demo.yaml) "
        "→ baselines vs embedding heads, cross-instrument transfer, downstream-only LODO, robustness, synthetic "
        "checks → OUT/report.html. A few minutes on a laptop CPU; the console says where the time went.",
    )
    p.add_argument("--out", default="vitnirs_demo", help="output folder")
    p.add_argument("--workers", type=int, metavar="N", help="processes for preparing; default: data.workers")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        metavar="N",
        help="torch and BLAS threads, pinned so that the numbers repeat on this machine "
        "(another count changes the last digits, and a short pretraining amplifies them)",
    )
    _add_progress_option(p)
    _add_config_options(p, default="demo")
    p.set_defaults(func=cmd_demo)


def _embed(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "embed",
        "embed the spectra of one bank table, CSV or parquet (metadata and targets carried through)",
        "Read INPUT (a .csv, .tsv or .txt text file, or a .parquet file; numeric column names are "
        "wavelengths, y_* targets, the rest metadata) as `vitnirs prepare` does (units, signal types, "
        "reflectance → absorbance), embed every spectrum with the checkpoint (default: the model shipped "
        "with vitnirs) and write OUT.csv or OUT.parquet: the metadata and y_* columns, then the embedding "
        "(float32), in input row order.\n"
        "The embedding's columns depend on --readout (D = the encoder's width, 64 for the shipped model): "
        "groups8 (the shipped model's) emb_g0_0 … emb_g7_{D-1}, group by group (8D columns); groups4 the "
        "same with 4 groups (4D); mean emb_<i>, i < D (D); mean+std and mean+max those, then emb_std_<i> "
        "or emb_max_<i> (2D); mean+level those, then level_mean, level_log_std (D + 2).",
    )
    p.add_argument("input", metavar="INPUT", help="a .csv/.tsv/.txt text file or a .parquet file")
    p.add_argument("--out", required=True, help="OUT.csv or OUT.parquet")
    p.add_argument(
        "--checkpoint",
        default="default",
        help="'default' or 'robust' (the shipped models: see their model cards), a checkpoint or run folder",
    )
    p.add_argument(
        "--readout",
        choices=READOUT_CHOICES,
        metavar="READOUT",
        help=f"how the encoder's output tokens become the embedding (SpectralEmbedder's pooling): "
        f"{_READOUTS}; default: the checkpoint's (groups8 for the shipped model)",
    )
    add_declaration_options(p, "INPUT (and REF)")
    p.add_argument(
        "--reference",
        metavar="REF",
        help="unlabelled spectra of the same instrument (.csv/.parquet; y_* never read): centre the embeddings "
        "on their mean embedding (standard-free alignment between instruments)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        metavar="N",
        help="spectra per forward pass (more: faster, more memory)",
    )
    p.add_argument("--device", default="cpu", help="torch device of the encoder: cpu, cuda, cuda:1, mps, ...")
    _add_progress_option(p)
    p.set_defaults(func=cmd_embed)


def _finetune(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "finetune",
        "fine-tune an encoder + linear head on your targets",
        "One or several numeric y_* targets of one dataset; the split of `vitnirs evaluate` "
        "(native cal/test, else Kennard-Stone); early stopping on part of the train rows; the head first, "
        "then the encoder at a small learning rate (or --freeze-encoder). Compared with ridge on the frozen "
        "embedding on the same split. Writes OUT/finetune.json and the fine-tuned checkpoint OUT/model.",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="'default' or 'robust' (the shipped models), a checkpoint or run folder",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bank", help="a CSV or a folder of CSVs (prepared into OUT/store)")
    src.add_argument("--store", help="a prepared store (vitnirs prepare)")
    add_declaration_options(p, "the --bank files")
    p.add_argument("--dataset", help="dataset name in the store; default: the only one with the targets")
    p.add_argument("--target", action="append", required=True, metavar="Y", help="y_* column (repeatable)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--epochs",
        type=int,
        default=200,
        metavar="N",
        help="most passes over the train rows (the first quarter trains the head alone); early stopping "
        "on held-out train rows may end sooner",
    )
    p.add_argument("--lr", type=float, default=1e-4, help="encoder learning rate")
    p.add_argument("--head-lr", type=float, default=1e-2, help="head learning rate")
    p.add_argument("--freeze-encoder", action="store_true", help="train the head only")
    _add_progress_option(p)
    p.set_defaults(func=cmd_finetune)


def _prepare(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "prepare",
        "validate a bank of CSVs into a prepared store",
        "Validate every CSV of a bank, convert to absorbance in nm, cache the AsLS "
        "baselines and write a prepared store (re-runs only redo changed files).",
    )
    p.add_argument(
        "--bank",
        help="folder of CSVs or one CSV; default: data.real_datasets_dir, else the embedded demo bank",
    )
    p.add_argument("--out", help="store folder; default: data.store_dir, else ./vitnirs_store")
    add_declaration_options(p, "the bank's files")
    p.add_argument("--synth", type=int, default=0, metavar="N", help="also add N synthetic spectra")
    p.add_argument(
        "--workers", type=int, metavar="N", help="processes (datasets in parallel); default: data.workers"
    )
    _add_progress_option(p)
    _add_config_options(p)
    p.set_defaults(func=cmd_prepare)


def _synth(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "synth",
        "generate synthetic spectra into a store",
        "nirs4all synthetic spectra on many instrument grids (with paired views), written as a prepared "
        "store, plus an adversarial-AUC check against the demo bank.",
    )
    p.add_argument("--n", type=int, metavar="N", help="number of spectra; default: data.synth_samples")
    p.add_argument("--out", required=True, help="store folder (may be the store of a bank)")
    p.add_argument("--seed", type=int, help="random seed; default: data.seed")
    p.add_argument("--workers", type=int, metavar="N", help="processes; default: data.workers")
    p.add_argument("--no-check", action="store_true", help="skip the adversarial AUC check")
    _add_progress_option(p)
    _add_config_options(p)
    p.set_defaults(func=cmd_synth)


def _pretrain(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "pretrain",
        "pretrain the encoder on spectra without targets (masked patch prediction)",
        "Pretrain the encoder (a transformer over patch tokens of the spectra; model.* in the config) on a "
        "prepared store (without --store: the bank of data.real_datasets_dir, else the embedded demo bank, "
        "plus data.synth_samples synthetic spectra, prepared into RUN_DIR/store). Writes metrics.jsonl, "
        "checkpoints/, loss_curve.png.\n"
        "Several GPUs: torchrun --nproc_per_node=N -m vitnirs pretrain ...",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--store", help="prepared store; default: data.store_dir, else prepare into RUN_DIR/store"
    )
    where.add_argument(
        "--bank",
        help="folder of CSVs or one CSV to prepare into RUN_DIR/store (as `vitnirs prepare --bank`); "
        "default: data.real_datasets_dir, else the embedded demo bank",
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in RUN_DIR")
    p.add_argument(
        "--max-steps", type=int, metavar="N", help="stop at step N (the schedule still spans the epochs)"
    )
    p.add_argument(
        "--workers", type=int, metavar="N", help="processes for preparing the store; default: data.workers"
    )
    _add_progress_option(p)
    _add_config_options(p)
    p.set_defaults(func=cmd_pretrain)


def _evaluate(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "evaluate",
        "baselines vs heads on the frozen embedding, transfer, robustness, checks",
        "The classical baselines and heads on the frozen embedding of CHECKPOINT, on the same splits of every "
        "real dataset with targets; cross-instrument transfer, downstream-only LODO, robustness and "
        "synthetic checks; writes OUT/metrics.json (+ the report's artefacts).",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a checkpoint folder (…/checkpoints/step_N), a run folder, or a shipped model ('default', 'robust')",
    )
    p.add_argument("--store", help="prepared store; default: data.store_dir")
    p.add_argument("--out", required=True, help="output folder")
    _add_progress_option(p)
    _add_config_options(p)
    p.set_defaults(func=cmd_evaluate)


def _report(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "report",
        "one self-contained HTML report of a run folder",
        "Find the pretraining run, evaluation and ablation outputs under DIR (the layout "
        "`vitnirs demo --out DIR` leaves) and write one HTML file with every plot embedded.",
    )
    p.add_argument("dir", metavar="DIR", help="folder to report on")
    p.add_argument("--html", help="output file; default: DIR/report.html")
    p.set_defaults(func=cmd_report)


def _export(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "export",
        "portable checkpoint: weights + config + model card (no trainer state)",
        "Write model.safetensors (float32 by default), config.json and model_card.md; every number in the "
        "card is read from the checkpoint, its run folder, its prepared store and a benchmarks/downstream.py "
        "JSON of the same weights (its weights_sha256; a file of other weights is ignored with a warning).",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint folder or a pretraining run folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="precision of the saved weights: float32 keeps them bit-identical (results measured on them "
        "hold); bfloat16 halves the file but moved the shipped model's embeddings by a median 17%% of "
        "their spread on corn m5 (benchmarks/results/export_dtype.json)",
    )
    p.add_argument("--run-dir", help="the pretraining run (losses); default: found from the checkpoint")
    p.add_argument(
        "--downstream",
        help="a benchmarks/downstream.py JSON of this checkpoint for the card's results (used only when "
        "its weights_sha256 is this checkpoint's)",
    )
    p.add_argument(
        "--store",
        help="the prepared store it was trained on (regions, sizes); default: the one the run used, if found",
    )
    p.add_argument("--bank-manifest", action="append", help="bank manifest.json with licences (repeatable)")
    p.add_argument("--hardware", default="unknown", help="what it was trained on, for the card")
    p.add_argument("--note", action="append", help="a line for the card (repeatable)")
    p.add_argument(
        "--readout",
        choices=READOUT_CHOICES,
        metavar="READOUT",
        help=f"the readout to use the model with (evaluation.readout; SpectralEmbedder's pooling='auto'): "
        f"{_READOUTS}; default: the run's",
    )
    p.add_argument(
        "--scorecard", help="a representation-study JSON (study_full.json) for the card's scorecard"
    )
    p.add_argument(
        "--scorecard-entry",
        action="append",
        help="its entry for this model; repeat for other seeds shown beside it (repeatable)",
    )
    p.add_argument(
        "--shipped-name",
        choices=SHIPPED,
        help="the name it ships under in the package (src/vitnirs/pretrained/NAME), for the card's usage lines",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_export)


def _pack(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "pack",
        "compact copy of a store (float16, pretraining regions) to carry to a GPU machine",
        "Copy the datasets of some regions of a prepared store with values and baselines in "
        "float16; the manifest records the rounding error of each. Pretraining reads it like any store, "
        "without nirs4all.",
    )
    p.add_argument("store", metavar="STORE", help="a prepared store (vitnirs prepare)")
    p.add_argument("--out", required=True, help="the packed store's folder (replaced if it is a store)")
    p.add_argument("--regions", nargs="+", default=["NIR", "vis-NIR"], help="regions kept")
    p.add_argument("--all-regions", action="store_true", help="keep every region")
    p.add_argument(
        "--dtype",
        choices=["float16", "float32"],
        default="float16",
        help="precision of the copied values and baselines",
    )
    _add_progress_option(p)
    p.set_defaults(func=cmd_pack)


def _config(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "config", "validate a config and print it resolved")
    _add_config_options(p)
    p.set_defaults(func=cmd_config)


# ----------------------------------------------------------------------------- research tools
def _ablate(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "ablate",
        "research tool: pretrain and evaluate recipe variants; one comparison table",
        "A research tool (vitnirs.research). Each FILE is a variant recipe (name, base config, "
        "overrides): pretrain, evaluate, then compare against the best classical pipeline (A) in "
        "OUT/ablation.{json,md,png}. Without FILE: the research wing's patch_*.yaml recipes (variants of "
        "patch, the shipped model's recipe). Resumable: finished variants are not rerun.",
    )
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="recipe files, or bundled recipe names (patch_mae); default: every research patch_*.yaml",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--store", help="prepared store; default: the demo bank + synthetic, prepared into OUT/store"
    )
    _add_set_option(p, " in every variant")
    _add_progress_option(p)
    p.set_defaults(func=cmd_ablate)


def _study(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "study",
        "research tool: pretrain recipes under one budget; score them and checkpoints on one scorecard",
        "A research tool (vitnirs.research). Each RECIPE is a variant recipe (name, base config, "
        "overrides), pretrained under one equal "
        "budget; each --checkpoint NAME=PATH (e.g. shipped=default) is scored as it is. Every checkpoint is "
        "scored on the scorecard (quick: 8 regression targets, transfer k = 0 on corn and tablets, drift on "
        "corn m5; full: every NIR / vis-NIR target, three perturbations on two datasets) against the untrained "
        "network (seeds 0, 1) and SNV + SG1 features in the same heads. Writes OUT/study_<card>.{json,md}. "
        "Resumable: finished runs and scores are kept.",
    )
    p.add_argument("recipes", nargs="*", metavar="RECIPE", help="recipe files (or bundled names: patch_mae)")
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an existing checkpoint to score (repeatable)",
    )
    p.add_argument(
        "--scorecard", choices=["quick", "full"], default="quick", help="what every checkpoint is scored on"
    )
    p.add_argument(
        "--bank",
        required=True,
        help="a folder of CSV datasets holding the scorecard's datasets (prepared into OUT/score_store)",
    )
    p.add_argument(
        "--readout",
        nargs="+",
        choices=READOUT_CHOICES,
        default=["mean"],
        metavar="READOUT",
        help=f"readouts scored on every checkpoint ({_READOUTS})",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--pretrain-store",
        metavar="STORE",
        help="prepared store for the recipes; default: the first recipe's bank",
    )
    _add_set_option(p, " in every recipe")
    _add_progress_option(p)
    p.set_defaults(func=cmd_study)


def _lodo(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "lodo",
        "research tool: strict leave-one-dataset-out (pretrain without each dataset, evaluate on it)",
        "A research tool (vitnirs.research; the downstream-only kind is a section of `vitnirs "
        "evaluate`). For each of --datasets: pretrain for evaluation.lodo_steps steps with that dataset left "
        "out, then fit the heads on its train part and score its test part. Hours for a whole bank on a CPU; "
        "resumable, results cached in OUT.",
    )
    p.add_argument("--store", required=True, help="prepared store")
    p.add_argument(
        "--datasets", nargs="+", required=True, metavar="NAME", help="datasets to leave out, one by one"
    )
    p.add_argument("--out", required=True, help="output folder")
    _add_progress_option(p)
    _add_config_options(p, default="demo")
    p.set_defaults(func=cmd_lodo)


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


@contextlib.contextmanager
def _own_warnings_as_lines() -> Iterator[None]:
    """Warnings raised from vitnirs code print as ``warning: message`` lines, like the commands' other
    warnings, not as ``/path/file.py:N: UserWarning: message`` plus a source line; warnings of other
    libraries keep Python's format (nothing is filtered)."""
    python_format = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None) -> str:
        if str(filename).startswith(_PACKAGE_DIR):
            return f"warning: {message}\n"
        return python_format(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning
    try:
        yield
    finally:
        warnings.formatwarning = python_format


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _own_warnings_as_lines():
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
