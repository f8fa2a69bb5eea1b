"""`vitnirs evaluate`: everything that says whether the frozen embedding is worth using.

For every real dataset of the store (``evaluation.datasets`` / ``data.regions``) and each of
its targets — the first ``evaluation.max_targets`` numeric ``y_*`` columns, plus the class
targets (non-numeric ``y_*`` columns and the metadata columns of ``evaluation.class_columns``)
— :func:`vitnirs.evaluate.splits.make_splits` gives the splits (native cal/test, else
Kennard–Stone, plus random repeats for small datasets). On each split the Phase 0 baselines
(:mod:`~vitnirs.evaluate.baselines`, cached by dataset hash / target / split / method) and
the heads on the frozen embedding (:mod:`~vitnirs.evaluate.downstream`) are fitted on the
train part and scored on the test part: the same rows for every method.

``metrics.json`` sections (each a list of records ``{dataset, target, method, protocol,
n_train, n_test, metrics, std, checkpoint, bank, …}``):

- ``baselines``, ``downstream``: one record per split; ``summary``: per dataset and target
  the best classical, best overall and best embedding (mean ± std over repeated splits);
- ``fewshot``: per dataset, target, method and n, the test RMSEP of ``evaluation.fewshot_draws``
  fixed draws of n train rows (every head on every feature source, and pls_raw / snv_sg1_pls /
  aom_pls; :mod:`~vitnirs.evaluate.fewshot`), ``rmsep_draws`` and their ``rmsep_median``;
  ``fewshot_summary``: per n, the median over targets of embedding / best classical and
  embedding / each control; ``fewshot_skipped``: the sizes (and heads) that could not run;
- ``transfer``: cross-instrument pairs (:mod:`~vitnirs.evaluate.transfer`), k = 0/5/10;
- ``lodo``: the *downstream-only* kind (encoder pretrained on every dataset, this one's
  spectra included, never its targets) for ``evaluation.lodo_datasets``; the strict kind is
  ``vitnirs lodo`` (one pretraining per left-out dataset);
- ``robustness``: test spectra perturbed at increasing severity, nothing refitted;
  ``robustness_summary``: one number per curve, the mean over the non-zero severities of
  RMSEP(perturbed) ÷ RMSEP(clean) (:func:`~vitnirs.evaluate.robustness.robustness_summary`);
- ``synthetic_checks``: real-vs-synthetic separability, paired-view invariance;
- ``controls``: the same heads on each untrained network (``untrained+<head>``, its ``seed``)
  and on SNV + SG1 features (``snv_sg1+<head>``), with ``evaluation.minirocket_control`` on
  MiniRocket features (``minirocket+<head>``, :mod:`~vitnirs.evaluate.minirocket`); the transfer
  and robustness sections hold the same controls as their own methods;
- ``nuisance_projection`` (with ``evaluation.nuisance_projection`` = k > 0): every encoder's
  embedding (the pretrained one and the untrained controls; not the SNV + SG1 or MiniRocket
  features) projected off k nuisance directions fitted per dataset (per transfer group on the
  union of its rows), which the heads of every section above read (:mod:`~vitnirs.evaluate.projection`;
  ``collapse``, the synthetic checks and the artefacts keep the raw embedding); the record says
  what each projection removed;
- ``collapse``: per embedding (``embedding``, ``untrained_seed<s>``) and evaluated dataset,
  :func:`vitnirs.embedding.collapse_stats` (effective rank, per-dimension std).

Also written next to it: ``embedding_map.json`` and ``reconstructions.json`` (for the
report), ``baseline_cache.json``. Targets are used here only; they never touch pretraining.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vitnirs.batching.collate import BatchSettings
from vitnirs.checkpoint import CheckpointInfo
from vitnirs.config import Config
from vitnirs.data.store import PreparedStore
from vitnirs.evaluate.baselines import CLASS_METHODS, BaselineCache, cached_baselines, snv_sg1_features
from vitnirs.evaluate.downstream import CLASSIFICATION_HEADS, run_heads
from vitnirs.evaluate.minirocket import MiniRocketControl
from vitnirs.evaluate.robustness import robustness_summary
from vitnirs.evaluate.splits import class_targets, make_splits, regression_targets
from vitnirs.evaluate.summary import summary_rows

SECTIONS = (
    "baselines", "downstream", "controls", "fewshot", "lodo", "transfer", "synthetic_checks", "robustness",
)  # fmt: skip


def evaluation_tasks(store: PreparedStore, cfg: Config) -> list[tuple[str, str, str]]:
    """``(dataset, target, task)`` to evaluate; task is ``regression`` or ``classification``."""
    wanted = set(cfg.evaluation.datasets)
    tasks = []
    for name in store.names(regions=list(cfg.data.regions), kind="real"):
        if wanted and name not in wanted:
            continue
        numeric = list(regression_targets(store.targets(name)))[: cfg.evaluation.max_targets]
        classes = class_targets(store.targets(name), store.metadata(name), cfg.evaluation.class_columns)
        tasks += [(name, t, "regression") for t in numeric]
        tasks += [(name, t, "classification") for t, v in classes.items() if _n_classes(v) >= 2]
    return tasks


def target_values(store: PreparedStore, cfg: Config, dataset: str, target: str, task: str) -> np.ndarray:
    """The ``(n,)`` target of a task: float (NaN = missing) or object labels (None = missing)."""
    if task == "regression":
        return regression_targets(store.targets(dataset))[target]
    return class_targets(store.targets(dataset), store.metadata(dataset), cfg.evaluation.class_columns)[
        target
    ]


def evaluate(
    cfg: Config,
    *,
    checkpoint: str | Path,
    store: str | Path,
    out: str | Path,
    progress: bool = True,
    baseline_cache: str | Path | None = None,
) -> dict:
    """Run the suite; write ``OUT/metrics.json`` (and the report artefacts) and return it.

    ``baseline_cache``: the classical results' cache file (default ``OUT/baseline_cache.json``);
    several evaluations sharing one fit each classical method once.
    """
    from vitnirs.checkpoint import untrained_model
    from vitnirs.embedding import collapse_stats, embed_store, load_encoder, under_metadata_rule, with_readout

    started, out = time.perf_counter(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = PreparedStore(store)
    model, info = load_encoder(checkpoint)
    info = under_metadata_rule(info, cfg.evaluation.metadata)  # unknown ids unless asked otherwise
    info = with_readout(info, cfg.evaluation.readout)
    ev, seed = cfg.evaluation, cfg.training.seed
    cache = BaselineCache(baseline_cache or out / "baseline_cache.json")
    common = {"checkpoint": info.checkpoint, "bank": str(store.path)}
    used_targets = bool(info.config.get("training_strategy", {}).get("use_targets_in_pretraining"))
    embeddings: dict[str, np.ndarray] = {}

    def embedding(name: str) -> np.ndarray:
        if name not in embeddings:
            embeddings[name] = embed_store(model, store, name, info=info)
        return embeddings[name]

    # the same network, never trained, one per seed: the control that says whether pretraining paid
    untrained = {s: untrained_model(info, seed=s) for s in ev.untrained_seeds} if ev.untrained_control else {}
    untrained_embeddings: dict[int, dict[str, np.ndarray]] = {s: {} for s in untrained}

    def untrained_embedding(seed_: int) -> Callable[[str], np.ndarray]:
        def embed(name: str) -> np.ndarray:
            if name not in untrained_embeddings[seed_]:
                untrained_embeddings[seed_][name] = embed_store(untrained[seed_], store, name, info=info)
            return untrained_embeddings[seed_][name]

        return embed

    @functools.cache
    def classical_features(name: str) -> np.ndarray:  # SNV + SG1 of the spectra: the classical control
        return snv_sg1_features(np.asarray(store.values(name), dtype=np.float64))

    # MiniRocket fitted (no target) on each dataset's rows, the untrained time-series control; needs aeon
    minirocket = MiniRocketControl(store, seed=seed, cache=cache) if ev.minirocket_control else None

    result: dict[str, Any] = {**common, "embedding_dim": None, "targets_in_pretraining": used_targets}
    from vitnirs.checkpoint import weights_sha256

    result["weights_sha256"] = weights_sha256(info.checkpoint)  # the weights scored (vitnirs export checks)
    result["metadata"] = cfg.evaluation.metadata  # the metadata rule the embeddings were made under
    result["readout"] = cfg.evaluation.readout
    if used_targets:  # the fairness rule is broken: say so in the file and on the console
        result["warning"] = (
            "this encoder was pretrained WITH targets (semi-supervised head): its downstream numbers "
            "are not a fair comparison with the classical baselines"
        )
        print(f"warning: {result['warning']}", file=sys.stderr)
    result |= {s: [] for s in SECTIONS}
    tasks, skipped = evaluation_tasks(store, cfg), set()
    seconds: dict[str, float] = {}  # where the time goes: metrics.json step_seconds
    result["not_readable"] = unreadable_datasets(
        model, info, store, list(dict.fromkeys(d for d, _, _ in tasks))
    )
    tasks = [t for t in tasks if t[0] not in result["not_readable"]]
    # EPO at the readout: every encoder's embedding projected, per dataset, off its nuisance directions
    epo = _nuisance_projections(store, cfg, info, {"embedding": (model, embedding)} | {
        f"untrained_seed{s}": (net, untrained_embedding(s)) for s, net in untrained.items()
    })  # fmt: skip
    # the feature sources, each into the same heads: (prefix, dataset -> (n, D) features, section, record fields)
    encoders = [("embedding", epo.get("embedding", embedding), "downstream", {})]
    encoders += [
        ("untrained", epo.get(f"untrained_seed{s}", untrained_embedding(s)), "controls", {"seed": s})
        for s in untrained
    ]
    if ev.classical_control:
        encoders.append(("snv_sg1", classical_features, "controls", {}))
    if minirocket is not None:
        encoders.append(("minirocket", minirocket, "controls", {}))
    for dataset, target, task in tqdm(tasks, desc="evaluate", unit="target", disable=not progress):
        X = np.asarray(store.values(dataset), dtype=np.float64)
        y = target_values(store, cfg, dataset, target, task)
        splits = make_splits(store.metadata(dataset), X, y, seed=seed, n_repeats=ev.repeats)
        tag = {"dataset": dataset, "target": target, "task": task, **common, "std": None}
        methods = list(CLASS_METHODS) if task == "classification" else list(ev.baseline_methods)
        t0 = time.perf_counter()
        records = cached_baselines(
            cache, store.records[dataset]["content_hash"], target, X, y, splits,
            methods=methods, seed=seed, aom_bank=ev.aom_bank,
        )  # fmt: skip
        _add_seconds(seconds, "classical baselines", t0)
        per_split = [s for s in splits for _ in methods]  # records come split-major, method-minor
        result["baselines"] += [
            {**r, **tag, "split_note": s.note} for r, s in zip(records, per_split, strict=True)
        ]
        for split in splits:
            for prefix, embed, section, extra in encoders:
                t0 = time.perf_counter()  # the embedding (made once per dataset) and the heads' fits
                # the MiniRocket control's heads are cached: nothing of the checkpoint is in them
                heads = minirocket.run_heads if prefix == "minirocket" else run_heads
                fitted = heads(
                    embed(dataset), y, split.train, split.test, groups=split.groups,
                    methods=_heads(ev.downstream_methods, task), task=task, seed=seed,
                )  # fmt: skip
                _add_seconds(seconds, "embedding heads" if prefix == "embedding" else f"{prefix} control", t0)
                for r in fitted:
                    if r.get("metrics") is None:  # a head that cannot run here (TabPFN without weights)
                        skipped.add(r["skipped"])
                        continue
                    result[section].append(
                        {**r, **tag, **extra, "method": f"{prefix}+{r['method']}", "protocol": split.name}
                    )
    result["skipped_heads"] = sorted(skipped)
    reg_tasks = [(d, t) for d, t, task in tasks if task == "regression"]
    if progress:
        for name, spent in seconds.items():  # the per-target loop, as the steps below print theirs
            print(f"  {name}: {spent:.1f} s", flush=True)
    step = _stepper(progress, seconds)
    controls = {
        "untrained": untrained,
        "untrained_embeddings": untrained_embeddings,
        "classical": classical_features,
        "minirocket": minirocket,
        "projection": epo,
    }
    if ev.fewshot and reg_tasks:  # few-shot calibration on the feature sources of the loop above
        from vitnirs.evaluate.fewshot import fewshot_section, fewshot_summary

        sources = [(prefix, embed, extra) for prefix, embed, _, extra in encoders]
        shots, result["fewshot_skipped"] = step("few-shot", lambda: fewshot_section(
            store, cfg, reg_tasks, sources, cache=cache, heads=_heads(ev.downstream_methods, "regression"),
        ))  # fmt: skip
        stamp = {**common, **{k: result[k] for k in ("weights_sha256",) if result.get(k)}}
        result["fewshot"] = [r | stamp for r in shots]
        result["fewshot_summary"] = fewshot_summary(shots)
    if ev.transfer:
        result["transfer"] = step(
            "transfer", lambda: _transfer(store, (model, info), cfg, common, embeddings, controls, progress)
        )
    if ev.lodo_datasets:
        result["lodo"] = step(
            "lodo (downstream-only)",
            lambda: _lodo(store, (model, info), cfg, common, embeddings, result, epo),
        )
    if ev.robustness and reg_tasks:
        result["robustness"] = step(
            "robustness",
            lambda: _robustness(store, (model, info), cfg, common, encoders[0][1], controls, reg_tasks),
        )
        result["robustness_summary"] = robustness_summary(result["robustness"])  # one number per curve
    if ev.synthetic_checks:
        result["synthetic_checks"] = step(
            "synthetic checks", lambda: _synthetic_checks(store, (model, info), cfg, common, embeddings)
        )
    if ev.artefacts:
        from vitnirs.evaluate.artefacts import write_artefacts

        settings = checkpoint_batch_settings(info)
        step(
            "report artefacts",
            lambda: write_artefacts(
                store, model, out, settings=settings, info=info, seed=seed, embeddings=embeddings
            ),
        )
    if embeddings:
        result["embedding_dim"] = int(next(iter(embeddings.values())).shape[1])
    evaluated = list(dict.fromkeys(d for d, _, _ in tasks))  # the collapse figures of each embedding
    result["collapse"] = {
        "embedding": {n: collapse_stats(embeddings[n]) for n in evaluated if n in embeddings}
    }
    for s, done in untrained_embeddings.items():
        result["collapse"][f"untrained_seed{s}"] = {
            n: collapse_stats(done[n]) for n in evaluated if n in done
        }
    if epo:  # what the projection removed, per encoder and dataset (or transfer group)
        from vitnirs.evaluate.projection import nuisance_record

        result["nuisance_projection"] = nuisance_record(ev.nuisance_projection, epo)
    result["summary"] = summary_rows(result["baselines"], result["downstream"], result["controls"])
    result["step_seconds"] = {name: round(spent, 1) for name, spent in seconds.items()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    _write_json(out / "metrics.json", result)
    return result


def unreadable_datasets(
    model: Any, info: CheckpointInfo, store: PreparedStore, names: list[str]
) -> dict[str, str]:
    """The coverage rule (:mod:`vitnirs.data.coverage`) on each dataset: ``{name: reason}`` of those
    the checkpoint cannot read (left out of the evaluation, said on stderr); partial coverage is
    said on stderr and evaluated."""
    from vitnirs.data.coverage import CoverageError
    from vitnirs.embedding import check_readable

    out = {}
    for name in names:
        try:
            notes = check_readable(model, info, np.asarray(store.wavelengths_nm(name)), source=name)
        except CoverageError as err:
            out[name], notes = str(err), [f"{err} (left out of the evaluation)"]
        for note in notes:
            print(f"warning: {note}", file=sys.stderr)
    return out


def _heads(methods: list[str], task: str) -> list[str]:
    if task == "classification":
        return [m for m in methods if m in CLASSIFICATION_HEADS] or ["logistic"]
    return [m for m in methods if m != "logistic"]


def _n_classes(labels: np.ndarray) -> int:
    return len({v for v in labels if v is not None})


def _stepper(progress: bool, seconds: dict[str, float]) -> Callable[[str, Callable[[], Any]], Any]:
    """``step(name, fn)``: run ``fn``, record its seconds in ``seconds[name]`` (printed with ``progress``)."""

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        _add_seconds(seconds, name, t0)
        if progress:
            print(f"  {name}: {seconds[name]:.1f} s", flush=True)
        return value

    return step


def _add_seconds(seconds: dict[str, float], name: str, t0: float) -> None:
    """Add the seconds since ``t0`` to ``seconds[name]``."""
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0


def step_seconds_line(result: dict) -> str:
    """``evaluation 412.3 s: classical baselines 120.5 s, embedding heads 30.1 s, …, transfer 200.2 s, …``:
    where an evaluation's time went (``metrics.json``'s ``step_seconds``, in the order they ran)."""
    steps = ", ".join(f"{name} {s:.1f} s" for name, s in (result.get("step_seconds") or {}).items())
    return f"evaluation {result.get('seconds', 0.0):.1f} s" + (f": {steps}" if steps else "")


# ----------------------------------------------------------------------------- sections
def checkpoint_batch_settings(info: CheckpointInfo) -> BatchSettings:
    """The batch settings a checkpoint was pretrained with (its stored config; defaults for a
    checkpoint without one)."""
    return BatchSettings.from_config(Config.model_validate(info.config))


def _transfer(
    store, encoder, cfg: Config, common: dict, embeddings: dict, controls: dict, progress: bool
) -> list[dict]:
    """Transfer records of the encoder and the baselines, then the same heads on the controls at
    k = 0 (plain and aligned; the zero-standard question, and a third of the fits of every k):
    each untrained network (``untrained+<head>``, with its ``seed``) and, where a group's grids
    agree, the classical features (``snv_sg1+<head>``)."""
    from vitnirs.evaluate.transfer import INSTRUMENT_GROUPS, transfer_pairs

    ev = cfg.evaluation
    methods = [m for m in ev.baseline_methods if m in ("pls_raw", "snv_sg1_pls", "aom_pls")]
    heads = [m for m in ev.downstream_methods if m in ("ridge", "pls")]
    groups = {g: [n for n in names if n in store.records] for g, names in INSTRUMENT_GROUPS.items()}
    kw = {"heads": heads, "seed": cfg.training.seed, "aom_bank": ev.aom_bank, "k_values": ev.transfer_k}
    control_kw = kw | {"k_values": [0]}
    epo = controls["projection"]  # EPO: one set of directions per group, fitted on the union of its rows
    records = []
    for group, names in tqdm(groups.items(), desc="transfer", unit="group", disable=not progress):
        if len(names) < 2:
            continue
        one = {group: names}
        emb = epo["embedding"].projected(names) if epo else embeddings
        records += transfer_pairs(
            store, encoder[0], groups=one, baselines=methods, embeddings=emb, info=encoder[1], **kw
        )
        if 0 not in ev.transfer_k:
            continue
        for s, net in controls["untrained"].items():
            emb = epo[f"untrained_seed{s}"].projected(names) if epo else controls["untrained_embeddings"][s]
            recs = transfer_pairs(
                store, net, groups=one, baselines=(), embeddings=emb, info=encoder[1], **control_kw,
            )  # fmt: skip
            records += [_renamed(r, "untrained", seed=s) for r in recs]
        grids = [np.asarray(store.wavelengths_nm(n)) for n in names]
        same_grid = all(g.shape == grids[0].shape and np.allclose(g, grids[0]) for g in grids)
        if ev.classical_control and same_grid:
            features = {n: controls["classical"](n) for n in names}
            recs = transfer_pairs(store, None, groups=one, baselines=(), embeddings=features, **control_kw)
            records += [_renamed(r, "snv_sg1") for r in recs]
        if controls["minirocket"] is not None and same_grid:  # one fit on every instrument's rows; cached
            records += [_renamed(r, "minirocket") for r in controls["minirocket"].transfer(one, **control_kw)]
    return [{**r, **common, "std": None} for r in records]


def _renamed(record: dict, prefix: str, **extra: Any) -> dict:
    """A control's record: ``embedding+<head>…`` becomes ``<prefix>+<head>…``."""
    return record | extra | {"method": prefix + record["method"].removeprefix("embedding")}


def _lodo(store, encoder, cfg: Config, common: dict, embeddings: dict, result: dict, epo: dict) -> list[dict]:
    from vitnirs.workflows.lodo import downstream_only_lodo

    names = [n for n in cfg.evaluation.lodo_datasets if n in store.records]
    if "embedding" in epo:  # the heads read the projected embedding, as in the downstream section
        embeddings = {n: epo["embedding"](n) for n in names}
    return downstream_only_lodo(
        store, encoder[0], names, cfg=cfg, checkpoint=common["checkpoint"], bank=common["bank"],
        embeddings=embeddings, baseline_records=result["baselines"], info=encoder[1],
    )  # fmt: skip


def _robustness(
    store, encoder, cfg: Config, common: dict, embedding, controls: dict, tasks: list[tuple[str, str]]
) -> list[dict]:
    """Robustness curves of the encoder's first head and the baselines, then of the same head on
    each untrained network (``untrained+<head>``; the classical-features control here is
    ``snv_sg1_pls``, whose features are recomputed on every perturbed spectrum)."""
    from vitnirs.evaluate.robustness import SEVERITIES, robustness_curves

    ev = cfg.evaluation
    wanted = ev.robustness_datasets or list(dict.fromkeys(d for d, _ in tasks))[:2]
    heads = [m for m in ev.downstream_methods if m in ("ridge", "pls")][:1] or ["ridge"]
    baselines = [m for m in ("pls_raw", "snv_sg1_pls") if m in ev.baseline_methods] or ["pls_raw"]
    severities = {k: SEVERITIES[k] for k in ev.robustness_kinds}
    kw = {"heads": heads, "seed": cfg.training.seed, "severities": severities, "info": encoder[1]}
    epo = controls["projection"]  # perturbed test rows projected with the clean rows' directions
    records = []
    for dataset, target in tasks:
        if dataset not in wanted or any(r["dataset"] == dataset for r in records):
            continue  # the first target of each chosen dataset
        X = np.asarray(store.values(dataset), dtype=np.float64)
        y = regression_targets(store.targets(dataset))[target]
        split = make_splits(store.metadata(dataset), X, y, seed=cfg.training.seed, n_repeats=0)[0]
        records += robustness_curves(
            store, encoder[0], dataset, target, split, baselines=baselines,
            embeddings={dataset: embedding(dataset)}, **kw, **_projected(epo, "embedding", dataset, split),
        )  # fmt: skip
        for s, net in controls["untrained"].items():
            key = f"untrained_seed{s}"
            Z = epo[key](dataset) if epo else controls["untrained_embeddings"][s].get(dataset)
            recs = robustness_curves(
                store, net, dataset, target, split, baselines=(), embeddings=None if Z is None else {dataset: Z},
                **kw, **_projected(epo, key, dataset, split),
            )  # fmt: skip
            records += [_renamed(r, "untrained", seed=s) for r in recs]
        if controls["minirocket"] is not None:  # the transform fitted on the clean rows maps perturbed ones
            recs = controls["minirocket"].robustness(dataset, target, split, **kw)  # cached
            records += [_renamed(r, "minirocket") for r in recs]
    return [{**r, **common} for r in records]


def _projected(epo: dict, key: str, dataset: str, split: Any) -> dict:
    """``robustness_curves``' ``features``: the perturbed test rows embedded and projected (EPO on)."""
    return {"features": epo[key].features(dataset, split.test)} if key in epo else {}


def _nuisance_projections(
    store: PreparedStore, cfg: Config, info: CheckpointInfo, nets: dict[str, tuple[Any, Callable]]
) -> dict[str, Any]:
    """``{key: NuisanceProjection}`` of each ``key: (network, dataset -> clean (n, D))``; ``{}`` when off."""
    k = cfg.evaluation.nuisance_projection
    if not k:
        return {}
    from vitnirs.evaluate.projection import NuisanceProjection

    return {
        key: NuisanceProjection(net, info, store, clean, k=k, seed=cfg.training.seed)
        for key, (net, clean) in nets.items()
    }


def _synthetic_checks(store, encoder, cfg: Config, common: dict, embeddings: dict) -> list[dict]:
    from vitnirs.evaluate.synthetic_checks import synthetic_checks

    return synthetic_checks(
        store, encoder[0], checkpoint=common["checkpoint"], bank=common["bank"], seed=cfg.training.seed,
        embeddings=embeddings, info=encoder[1],
    )  # fmt: skip


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_plain))
    os.replace(tmp, path)


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
