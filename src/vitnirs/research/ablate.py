"""`vitnirs ablate`: pretrain and evaluate ablation variants, then one comparison table.

A research tool. An ablation file (a recipe) names a variant: ``name``, ``description``, ``base`` (a
bundled name: a user config such as ``demo`` or a research recipe such as ``patch``, the shipped
model's recipe; or a path; default ``patch``) and ``overrides`` (dotted keys as in ``--set``).
Without files, the research wing's ``recipes/patch_*.yaml`` run (:func:`default_recipe_files`). Protocol:

1. Each variant's config is ``base`` + its ``overrides`` + the command line's ``--set``
   (applied last, e.g. ``training.epochs=1`` for a quick run).
2. One prepared store serves every variant (``store``, else the bank of the first variant
   prepared into ``OUT/store``, with ``data.synth_samples`` synthetic spectra).
3. Variants with the same pretraining config (the resolved config minus ``evaluation`` and
   keys that do not change results, such as worker counts) pretrain once, into
   ``OUT/<first>/pretrain``; the others reuse that checkpoint. Each variant is evaluated into
   ``OUT/<name>/evaluation`` (an identical full config copies the metrics instead). The
   classical baselines use one cache, ``OUT/baseline_cache.json``, so they are fitted once.
4. A variant whose ``OUT/<name>/variant.json`` records the same config hash and whose
   ``metrics.json`` exists is not rerun; a failing variant is recorded with its error and
   the others go on.
5. The table (:mod:`vitnirs.research.ablate_table`) compares, per (dataset, target), the
   test RMSEP of each variant's best embedding head with the best classical baseline of its
   own evaluation ("A": the same splits and cache for every variant). Ratio < 1: the
   variant's embedding beats the best classical pipeline.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vitnirs.config import Config, load_config, save_config
from vitnirs.errors import ConfigError, VitnirsError
from vitnirs.pretrain_log import heldout_recon_mse
from vitnirs.research.ablate_table import comparison, variant_row, write_report
from vitnirs.workflows.commands import RESEARCH_RECIPES, bundled_config, bundled_config_text

# Keys that change how fast a run goes, not what it computes: left out of the config hashes.
RUNTIME_KEYS = {
    "data": ("workers",),
    "training": ("num_workers", "log_every", "checkpoint_every", "keep_checkpoints", "tensorboard"),
}


class AblationSpec(BaseModel):
    """One ablation file."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Short id (a folder name).")
    description: str = ""
    base: str = "patch"
    overrides: dict[str, Any] = {}


@dataclass
class Variant:
    """A resolved variant: its config and the hashes that decide what is shared or rerun."""

    name: str
    description: str
    file: str
    cfg: Config
    config_hash: str
    pretrain_hash: str


def default_recipe_files() -> list[Path]:
    """``vitnirs ablate``'s default set: the research wing's ``recipes/patch_*.yaml``, sorted."""
    return sorted(RESEARCH_RECIPES.glob("patch_*.yaml"))


def config_hashes(cfg: Config) -> tuple[str, str]:
    """(full config hash, pretraining hash: without ``evaluation``), runtime keys left out."""
    d = cfg.to_dict()
    for section, keys in RUNTIME_KEYS.items():
        for key in keys:
            d[section].pop(key, None)
    full = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    d.pop("evaluation")
    return full, hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def load_variant(path: str | Path, overrides: Sequence[str] = ()) -> Variant:
    """Read and resolve one ablation file; a :class:`ConfigError` names the file and the key."""
    path = _find_file(path, "ablation")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the ablation file ({exc})") from None
    try:
        spec = AblationSpec.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        allowed = ", ".join(AblationSpec.model_fields)
        lines = [
            f"key '{'.'.join(map(str, e['loc'])) or '(file)'}': "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            + f" (allowed keys: {allowed})"
            for e in exc.errors()
        ]
        raise ConfigError(f"{path}: invalid ablation file:\n  " + "\n  ".join(lines)) from None
    try:
        base = _find_file(spec.base, "config", relative_to=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: key 'base': {exc}") from None
    own = [f"{key}={json.dumps(value)}" for key, value in spec.overrides.items()]  # JSON is YAML
    try:
        load_config(base, own)
    except ConfigError as exc:
        raise ConfigError(f"{path}: overrides: {exc}") from None
    cfg = load_config(base, [*own, *overrides])
    return Variant(spec.name, spec.description, str(path), cfg, *config_hashes(cfg))


def _find_file(name: str | Path, what: str, relative_to: Path | None = None) -> Path:
    """A path as given, next to ``relative_to``, or a bundled YAML by bare name (``demo``, ``patch``)."""
    path = Path(name)
    candidates = [path, *([relative_to / path] if relative_to and not path.is_absolute() else [])]
    for candidate in [*candidates, bundled_config(path)]:
        if candidate is not None and candidate.is_file():
            return candidate
    raise ConfigError(f"{name}: no such {what} file (bundled: {bundled_config_text()})")


def run_ablation(
    files: Sequence[str | Path],
    *,
    out: str | Path,
    overrides: Sequence[str] = (),
    store: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Pretrain and evaluate every variant, then write OUT/ablation.{json,md,png}.

    Parameters
    ----------
    files : sequence of str or Path
        Ablation files, or bare names of bundled ones; empty: :func:`default_recipe_files`.
    out : str or Path
        Output folder: ``OUT/<name>/{config.yaml,variant.json,pretrain,evaluation}`` per variant.
    overrides : sequence of str
        ``section.key=value`` (the CLI's ``--set``), applied to every variant, last.
    store : str or Path, optional
        A prepared store; None prepares the first variant's bank (null: the embedded demo
        bank) and ``data.synth_samples`` synthetic spectra into ``OUT/store``.
    progress : bool
        Progress bars of preparation, pretraining and evaluation (one line per variant is
        always printed).

    Returns
    -------
    dict
        What ``OUT/ablation.json`` holds (``rows``, ``psynth_lift``, ``store``, ``overrides``;
        see :func:`vitnirs.research.ablate_table.comparison`) plus the paths ``json``, ``markdown``, ``png``.

    Raises
    ------
    ConfigError
        A bad ablation file (naming the file and the key), two files with one name, or
        variants that would prepare the shared store differently.
    """
    out = Path(out)
    variants = [load_variant(f, overrides) for f in (files or default_recipe_files())]
    names = [v.name for v in variants]
    if len(set(names)) < len(names):
        raise ConfigError(
            f"two ablation files share a name: {sorted(n for n in names if names.count(n) > 1)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    done = {v.name: _finished(out / v.name, v) for v in variants}
    store_path = shared_store(variants, out, store, needed=not all(done.values()), progress=progress)
    trained: dict[str, dict] = {}  # pretrain hash -> the run that serves it
    evaluated: dict[str, Path] = {}  # config hash -> metrics.json
    for v in variants:  # runs finished earlier serve later variants too
        run_dir = out / v.name / "pretrain"
        if (run_dir / "pretrain_summary.json").is_file() and _run_hash(run_dir) == v.pretrain_hash:
            summary = json.loads((run_dir / "pretrain_summary.json").read_text())
            trained.setdefault(v.pretrain_hash, {"summary": summary, "run_dir": str(run_dir), "by": v.name})
        if done[v.name]:
            evaluated.setdefault(v.config_hash, out / v.name / "evaluation" / "metrics.json")
    results = []
    for i, v in enumerate(variants, 1):
        vdir, started = out / v.name, time.perf_counter()
        if done[v.name]:
            results.append(done[v.name])
            print(f"[{i}/{len(variants)}] {v.name}: done earlier with this config ({v.config_hash}); kept")
            continue
        try:
            record = _run_variant(v, out, store_path, trained, evaluated, progress=progress)
        except Exception as err:  # one failing variant does not stop the others
            error = f"{type(err).__name__}: {err}"
            record = {"name": v.name, "description": v.description, "status": "failed", "error": error}
            record["config_hash"] = v.config_hash
        record["seconds"] = round(time.perf_counter() - started, 1)
        vdir.mkdir(parents=True, exist_ok=True)
        (vdir / "variant.json").write_text(json.dumps(record, indent=1))
        results.append(record)
        print(f"[{i}/{len(variants)}] {v.name}: {_verdict(record)} ({record['seconds']} s)")
    report = comparison(results, {v.name: v.cfg for v in variants})
    report.update(store=str(store_path), overrides=list(overrides))
    paths = {k: str(p) for k, p in write_report(report, out).items()}
    return report | {"json": paths["json"], "markdown": paths["md"], "png": paths["png"]}


def _run_variant(
    v: Variant, out: Path, store: Path, trained: dict, evaluated: dict, *, progress: bool
) -> dict:
    """Pretrain (unless a run of the same pretraining config exists) and evaluate one variant."""
    from vitnirs.workflows.evaluation import evaluate

    vdir = out / v.name
    run = pretrained_run(v, out, store, trained, progress=progress)
    ev_dir = vdir / "evaluation"
    ev_dir.mkdir(parents=True, exist_ok=True)
    if v.config_hash in evaluated:  # same config, same checkpoint: the same numbers
        shutil.copyfile(evaluated[v.config_hash], ev_dir / "metrics.json")
    else:
        # one baseline cache for every variant: the classical methods are fitted once
        evaluate(v.cfg, checkpoint=run["summary"]["checkpoint"], store=store, out=ev_dir, progress=progress,
                 baseline_cache=out / "baseline_cache.json")  # fmt: skip
        evaluated[v.config_hash] = ev_dir / "metrics.json"
    pre = run["summary"]
    return {
        "name": v.name, "description": v.description, "status": "done", "config_hash": v.config_hash,
        "pretrain_hash": v.pretrain_hash, "pretrain_run": run["run_dir"], "pretrained_by": run["by"],
        "checkpoint": pre.get("checkpoint"), "heldout_recon_mse_end": heldout_recon_mse(pre, "end"),
        "probe_auc": pre.get("probe_auc") if pre.get("probe_auc") is not None else _last_auc(run),
        "metrics": str(ev_dir / "metrics.json"),
    }  # fmt: skip


def pretrained_run(v: Variant, out: Path, store: Path, trained: dict, *, progress: bool) -> dict:
    """The pretraining run that serves ``v``: one of ``trained`` (pretraining hash -> run) with
    the same pretraining config, a finished ``OUT/<name>/pretrain`` of it, else a new (or an
    interrupted, resumed) run there. Returns ``{"summary", "run_dir", "by"}`` and records it
    in ``trained``. Writes ``OUT/<name>/config.yaml``."""
    from vitnirs.checkpoint import latest_checkpoint
    from vitnirs.train.loop import pretrain

    save_config(v.cfg, out / v.name / "config.yaml")
    run_dir = out / v.name / "pretrain"
    finished = (run_dir / "pretrain_summary.json").is_file() and _run_hash(run_dir) == v.pretrain_hash
    if v.pretrain_hash not in trained and finished:  # finished earlier with this config
        summary = json.loads((run_dir / "pretrain_summary.json").read_text())
        trained[v.pretrain_hash] = {"summary": summary, "run_dir": str(run_dir), "by": v.name}
    run = trained.get(v.pretrain_hash)
    if run is None:
        if run_dir.exists() and _run_hash(run_dir) != v.pretrain_hash:
            shutil.rmtree(run_dir)  # a run of an older config of this variant
        resume = latest_checkpoint(run_dir) is not None  # an interrupted run continues
        summary = pretrain(v.cfg, store=store, run_dir=run_dir, resume=resume, progress=progress)
        (run_dir / "pretrain_summary.json").write_text(json.dumps(summary, indent=1))
        run = trained[v.pretrain_hash] = {"summary": summary, "run_dir": str(run_dir), "by": v.name}
    return run


def _finished(vdir: Path, v: Variant) -> dict | None:
    """The record of a variant already evaluated with this config, else None."""
    try:
        record = json.loads((vdir / "variant.json").read_text())
    except (OSError, ValueError):
        return None
    ok = record.get("status") == "done" and record.get("config_hash") == v.config_hash
    return record if ok and (vdir / "evaluation" / "metrics.json").is_file() else None


def shared_store(variants: list[Variant], out: Path, store, *, needed: bool, progress: bool) -> Path:
    """The store every variant uses: ``store``, else the first variant's bank prepared into OUT/store."""
    if store is not None:
        if not Path(store).is_dir():
            raise VitnirsError(f"{store}: no such store (run `vitnirs prepare` first, or leave out --store)")
        return Path(store)
    first = variants[0].cfg.data
    keep = ("real_datasets_dir", "synth_samples", "synth_complexity", "synth_paired_fraction", "seed",
            "declarations", "asls_lam", "asls_p", "asls_max_iter", "asls_tol")  # fmt: skip
    for v in variants[1:]:
        differ = [k for k in keep if getattr(v.cfg.data, k) != getattr(first, k)]
        if differ:
            raise ConfigError(
                f"{v.file}: data.{differ[0]} differs from {variants[0].file}'s; the variants share one "
                "store: pass --store, or keep the data.* keys of preparation the same"
            )
    if needed:
        from vitnirs.workflows.sources import prepare_sources

        report = prepare_sources(
            variants[0].cfg, out / "store", bank=first.real_datasets_dir, synth=first.synth_samples,
            progress=progress,
        )  # fmt: skip
        print(report.summary())
    return out / "store"


def _run_hash(run_dir: Path) -> str | None:
    """Pretraining hash of the config a run folder was started with (None: none readable)."""
    try:
        return config_hashes(load_config(run_dir / "config.yaml"))[1]
    except (VitnirsError, OSError):
        return None


def _last_auc(run: dict) -> float | None:
    """The last probe AUC logged in the run's metrics.jsonl."""
    path, auc = Path(run["run_dir"]) / "metrics.jsonl", None
    if path.is_file():
        for line in path.read_text().splitlines():
            auc = json.loads(line).get("probe_auc", auc) if line.strip() else auc
    return auc


def _verdict(record: dict) -> str:
    if record["status"] != "done":
        return f"FAILED — {record['error']}"
    row = variant_row(record)
    if not row["n_targets"]:
        return "evaluated (no target with both a classical and an embedding RMSEP)"
    return (
        f"mean RMSEP ratio to the best classical {row['mean_ratio']:.3f} (median {row['median_ratio']:.3f}), "
        f"better on {row['n_beats']}/{row['n_targets']} targets"
    )
