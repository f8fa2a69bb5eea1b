"""The research commands (`vitnirs ablate`, `study`, `lodo`): ``cmd_X(args) -> exit code``.

As :mod:`vitnirs.workflows.commands` for the user commands: :mod:`vitnirs.cli` builds the parser,
the heavy imports happen inside the functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vitnirs.errors import VitnirsError
from vitnirs.workflows.commands import args_config, args_progress


def cmd_ablate(args: argparse.Namespace) -> int:
    from vitnirs.research.ablate import default_recipe_files, run_ablation

    files = args.files or default_recipe_files()
    result = run_ablation(
        files, out=args.out, overrides=args.set or [], store=args.store, progress=args_progress(args)
    )
    print(f"ablation table: {result['markdown']}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from vitnirs.research.study import run_study

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
        progress=args_progress(args),
    )  # fmt: skip
    print(f"study table: {result['markdown']}")
    return 0


def cmd_lodo(args: argparse.Namespace) -> int:
    from vitnirs.research.strict_lodo import strict_lodo

    cfg = args_config(args)
    if not Path(args.store).is_dir():
        raise VitnirsError(f"{args.store}: no such store (run `vitnirs prepare` first)")
    records = strict_lodo(
        cfg, store=args.store, datasets=args.datasets, out=args.out, progress=args_progress(args)
    )
    print(f"{len(records)} LODO records: {Path(args.out) / 'lodo.json'}")
    return 0
