"""``model_card.md`` of a portable checkpoint, built from files only.

Every number in the card is read from a file: the checkpoint's ``config.json`` (step,
preset, recipe, the datasets it saw) and ``model.safetensors`` (parameter count, size),
the pretraining run's ``pretrain_summary.json`` and ``metrics.jsonl`` (losses), a prepared
store's ``manifest.json`` (kind, region, spectrum count and wavelengths per dataset), bank
manifests (licence per dataset) and a ``benchmarks/downstream.py`` JSON (downstream and
cross-instrument results), used only when it scored these weights
(:mod:`vitnirs.workflows.card_sources` finds the store and checks the weights hash). What no
file says is written as ``unknown`` or ``not recorded``; the only free text is
:attr:`CardInputs.hardware` and :attr:`CardInputs.notes`.

>>> text = build_model_card("out/portable", CardInputs(run_dir="runs/x"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitnirs.checkpoint import CONFIG_FILE, MODEL_FILE, recommended_readout
from vitnirs.errors import VitnirsError
from vitnirs.pretrain_log import heldout_recon_mse, term_label
from vitnirs.workflows.card_data import dataset_rows
from vitnirs.workflows.card_scorecard import scorecard_lines, scorecard_verdicts
from vitnirs.workflows.card_sources import find_store, matching_downstream, region_lines

__all__ = ["CardInputs", "build_model_card", "verdicts"]


@dataclass(frozen=True)
class CardInputs:
    """The files a model card is built from (all optional: a missing one gives ``unknown``).

    Parameters
    ----------
    run_dir:
        The pretraining run directory (``pretrain_summary.json``, ``metrics.jsonl``).
    downstream:
        A results JSON written by ``benchmarks/downstream.py``; shown only when its
        ``weights_sha256`` is this checkpoint's (or ``source``'s), otherwise ignored with a warning.
    store_dir:
        The prepared store the run read (its ``manifest.json``: kind, region, spectra, wavelengths).
        None: the one the run recorded, else ``RUN_DIR/store`` or ``RUN_DIR/../store`` when present.
    bank_manifests:
        Bank ``manifest.json`` files with a ``licence`` per dataset file (e.g. ../shared/xbank).
    hardware:
        Where and how it was trained, in words (no file records it), e.g. ``"CPU, 2 cores"``.
    notes:
        Further plain statements, one bullet each.
    scorecard, scorecard_entries:
        A representation-study JSON (``study_full.json``) and the names of its entries to show:
        the first is this model, the others (e.g. its recipe's other seed) go beside it, with the
        untrained and classical-features controls (:mod:`vitnirs.workflows.card_scorecard`).
    shipped_name:
        The name it is shipped under in the package (``"default"``, ``"robust"``) for the card's
        usage lines; None: loaded by the path of its directory.
    source:
        The checkpoint this one was exported from (set by :func:`vitnirs.workflows.export.export_checkpoint`):
        a downstream file that scored its float32 weights is shown for a bfloat16 export, saying so.
    """

    run_dir: str | Path | None = None
    downstream: str | Path | None = None
    store_dir: str | Path | None = None
    bank_manifests: tuple[str | Path, ...] = ()
    hardware: str = "unknown"
    notes: tuple[str, ...] = ()
    scorecard: str | Path | None = None
    scorecard_entries: tuple[str, ...] = ()
    shipped_name: str | None = None
    source: str | Path | None = None


def read_json(path: str | Path | None, what: str) -> Any:
    """A JSON file, ``None`` when ``path`` is ``None``; a clear error when it cannot be read."""
    if path is None:
        return None
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise VitnirsError(f"{path}: cannot read the {what} ({exc})") from None


def _weights_summary(checkpoint_dir: Path) -> dict[str, Any]:
    from safetensors import safe_open

    path = checkpoint_dir / MODEL_FILE
    counts: dict[str, int] = {}
    dtypes: set[str] = set()
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            t, part = f.get_slice(key), key.split(".")[0]
            counts[part] = counts.get(part, 0) + math.prod(int(n) for n in t.get_shape())
            dtypes.add(str(t.get_dtype()))
    from vitnirs.checkpoint import weights_sha256

    return {
        "counts": counts,
        "dtypes": sorted(dtypes),
        "bytes": path.stat().st_size,
        "sha256": weights_sha256(checkpoint_dir),
    }


def _checkpoint_arg(shipped_name: str | None) -> str:
    """SpectralEmbedder's checkpoint argument for a shipped model ("" for the default one)."""
    if shipped_name == "default":
        return ""
    return f'checkpoint="{shipped_name}"' if shipped_name else 'checkpoint="path/of/this/directory"'


def _model_lines(meta: dict[str, Any], weights: dict[str, Any], shipped_name: str | None = None) -> list[str]:
    from vitnirs.model.presets import preset_config
    from vitnirs.model.readout import readout_dim

    spec = meta.get("model", {})
    preset = spec.get("preset", "unknown")
    try:
        built = preset_config(preset, **spec.get("kwargs", {}))
    except ValueError:
        built = {}
    width, readout = built.get("d_model", "unknown"), recommended_readout(meta)
    try:
        dim: Any = readout_dim(readout, width)
    except (ValueError, TypeError):
        dim = "unknown"
    trunk = {
        "transformer": "a transformer",
        "perceiver": f"a Perceiver ({built.get('n_latents')} latents cross-attending to them)",
    }.get(built.get("trunk"), "an unknown trunk")
    encoder = (
        f"patches of {built.get('patch_size')} points of one absolute log-λ lattice, channels "
        f"{', '.join(built.get('channels') or [])}, into {trunk}"
        if built
        else "unknown encoder"
    )
    counts = weights["counts"]
    parts = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
    return [
        f"- Architecture: `SpectralMAE` ({encoder}, + MAE decoder), preset `{preset}`, "
        f"model arguments `{json.dumps(spec.get('kwargs', {}), sort_keys=True)}`.",
        f"- Parameters: {sum(counts.values()):,} ({parts}); only the encoder is used to embed.",
        f"- Embedding: readout `{readout}` of width-{width} tokens, {dim} values (`embed_spectra` and "
        f"`SpectralEmbedder({_checkpoint_arg(shipped_name)})` return `(n, {dim})`).",
        f"- Weights: `model.safetensors`, {', '.join(weights['dtypes'])}, {weights['bytes']:,} bytes"
        f"{'' if weights['dtypes'] == ['F32'] else ' (the loader casts them to float32)'}; weights_sha256 "
        f"`{weights['sha256']}` (the hash every results JSON of these weights records). "
        f"`format_version` {meta.get('format_version')}; "
        "a checkpoint of another version is refused with an error naming both versions.",
        f"- Spectra per forward pass are capped at {meta.get('normalization', {}).get('max_points')} "
        "evenly spaced points (as in pretraining).",
    ]


def _recipe_lines(config: dict[str, Any]) -> list[str]:
    strat, mask = config.get("training_strategy", {}), config.get("masking", {})
    train, losses = config.get("training", {}), config.get("losses", {})
    aug = config.get("augmentation", {})
    targets = strat.get("use_targets_in_pretraining")
    used = {True: "used (semi-supervised head)", False: "never used"}.get(targets, "unknown")
    return [
        f"- Targets (`y_*` columns) in pretraining: {used}.",
        f"- Sampling: `{strat.get('sampling', 'unknown')}`, synthetic share p_synth = {strat.get('p_synth')}"
        + (
            f", mixtures of real spectra of one dataset p_mix = {strat['p_mix']} (groups of "
            f"{strat.get('mix_group')} mixtures of the same 2 to {strat.get('mix_max_components')} spectra)."
            if strat.get("p_mix")
            else "."
        ),
        f"- Masking: ratio {mask.get('mask_ratio')}, blocks of {mask.get('min_block_size')}"
        f"–{mask.get('max_block_size')} points.",
        "- Losses (weights): "
        + ", ".join(f"{k} {v}" for k, v in losses.items() if k.endswith("_weight"))
        + ".",
        f"- Optimiser: batch {train.get('batch_size')}, lr {train.get('lr')}, weight decay "
        f"{train.get('weight_decay')}, warm-up {train.get('warmup_epochs')} epochs, precision "
        f"`{train.get('precision')}`, seed {train.get('seed')}.",
        "- Augmentation probabilities: "
        + ", ".join(f"{k} {v}" for k, v in aug.items() if k.startswith("p_"))
        + ".",
    ]


def build_model_card(checkpoint_dir: str | Path, inputs: CardInputs | None = None) -> str:
    """The markdown of ``model_card.md`` for a checkpoint directory.

    Parameters
    ----------
    checkpoint_dir:
        A directory with ``config.json`` and ``model.safetensors`` (portable or not).
    inputs:
        The run, store, bank manifests and downstream results to report (see :class:`CardInputs`).

    Returns
    -------
    str
        The card; sections: model, training, data, pretraining losses, scorecard, downstream results,
        use.
    """
    inputs = inputs or CardInputs()
    ckpt = Path(checkpoint_dir)
    meta = read_json(ckpt / CONFIG_FILE, "checkpoint config")
    weights = _weights_summary(ckpt)
    config = meta.get("config", {})
    info_readout = recommended_readout(meta)
    datasets = list(meta.get("normalization", {}).get("datasets") or [])
    run = Path(inputs.run_dir) if inputs.run_dir else None
    summary = _optional_json(run / "pretrain_summary.json") if run else None
    metrics = _last_metrics(run / "metrics.jsonl") if run else None
    store_dir = find_store(inputs.store_dir, run, summary=summary, config=config)
    store = read_json(store_dir / "manifest.json", "store manifest") if store_dir else None
    banks = [read_json(p, "bank manifest") for p in inputs.bank_manifests]
    p_synth = (config.get("training_strategy") or {}).get("p_synth")
    table, data_summary = dataset_rows(datasets, store, banks, p_synth=p_synth)
    regions = (config.get("data") or {}).get("regions") or meta.get("normalization", {}).get("regions")
    regions_glance, regions_data = region_lines(regions, datasets, store)
    downstream, scored = matching_downstream(
        read_json(inputs.downstream, "downstream results"), inputs.downstream, checkpoint=ckpt,
        source=Path(inputs.source) if inputs.source else None,
    )  # fmt: skip
    study, shown = read_json(inputs.scorecard, "scorecard"), list(inputs.scorecard_entries)

    preset = meta.get("model", {}).get("preset", "unknown")
    lines = [f"# vitnirs encoder: `{preset}` preset, {_num(meta.get('step'), ',')} pretraining steps", ""]
    lines += [
        "A self-supervised encoder for near-infrared spectra: any wavelength grid in, one fixed-size "
        "embedding out, to fit ridge / PLS on. This card was generated: its numbers were read from the "
        "checkpoint, the pretraining run, the prepared store and the benchmark results; only the hardware "
        "line and the notes are free text.",
        "",
        "## At a glance",
        "",
        f"- Trained on: {inputs.hardware}; {_num(meta.get('step'), ',')} steps.",
        f"- Data: {data_summary[0][2:]}",
        f"- {regions_glance}",
        *(f"- {v}" for v in scorecard_verdicts(study, shown)),
        *(f"- {v}" for v in verdicts(downstream)),
        "",
        "## Model",
        "",
        *_model_lines(meta, weights, inputs.shipped_name),
        "",
        "## Training",
        "",
        f"- Hardware: {inputs.hardware}.",
        f"- Steps: {_num(meta.get('step'), ',')}.",
        *_recipe_lines(config),
        *(f"- {note}" for note in inputs.notes),
        "",
        "## Data it saw",
        "",
        *data_summary,
        *regions_data,
        "",
        *table,
        "",
        "## Pretraining losses",
        "",
        *pretraining_lines(summary, metrics),
        "",
        "## Scorecard, with its controls",
        "",
        *scorecard_lines(study, shown),
        "",
        "## Downstream results",
        "",
        *downstream_lines(downstream, scored),
        "",
        "## Use",
        "",
        "```python",
        "from vitnirs.embedding import embed_spectra, load_encoder",
        "",
        f'model, info = load_encoder("{inputs.shipped_name}")  # shipped with vitnirs; or the path of this directory'
        if inputs.shipped_name
        else 'model, info = load_encoder("path/of/this/directory")',
        f"Z = embed_spectra(model, X_absorbance, wavelengths_nm, info=info)  # readout `{info_readout}`",
        f"# or, in scikit-learn: make_pipeline(SpectralEmbedder({_checkpoint_arg(inputs.shipped_name)}), RidgeCV()) "
        "(vitnirs.SpectralEmbedder)",
        "```",
        "",
    ]
    return "\n".join(lines)


def _optional_json(path: Path) -> Any:
    return read_json(path, path.name) if path.is_file() else None


def _last_metrics(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            last = json.loads(line)
    return last


# ----------------------------------------------------------------------------- losses
LOG_FIELDS = ("step", "epoch", "lr", "spectra_per_s", "data_wait_fraction")


def _heldout_line(summary: dict[str, Any]) -> str:
    start, end = heldout_recon_mse(summary, "start"), heldout_recon_mse(summary, "end")
    if start is None and end is None:
        return "- Held-out masked reconstruction MSE: not measured in this run (no masked-prediction term)."
    return f"- Held-out masked reconstruction MSE: {_num(start)} at the start → {_num(end)} at the end."


def pretraining_lines(summary: dict[str, Any] | None, last: dict[str, Any] | None) -> list[str]:
    """Bullets from ``pretrain_summary.json`` and the last record of ``metrics.jsonl``."""
    if summary is None and last is None:
        return ["- unknown (no pretraining run directory was given)."]
    out = []
    if summary:
        final = ", ".join(
            f"{term_label(k)} {v:.4g}"
            for k, v in (summary.get("final") or {}).items()
            if not k.endswith("_groups")
        )
        seconds = summary.get("seconds")
        took = "(duration not recorded)" if seconds is None else f"in {seconds / 60:.1f} min"
        out += [
            f"- {_num(summary.get('steps'), ',')} steps {took}, "
            f"{summary.get('spectra_per_s', 'unknown')} spectra/s (`pretrain_summary.json`).",
            f"- Training losses of the last step: {final or 'unknown'}.",
            _heldout_line(summary),
            f"- Synthetic-vs-real linear probe AUC on the embeddings: {_num(summary.get('probe_auc'), '.3f')} "
            "(1.0: the embedding tells synthetic spectra from real ones perfectly)."
            if summary.get("probe_auc") is not None
            else "- Synthetic-vs-real linear probe AUC: not measured in this run (no synthetic spectra sampled, "
            "or the probe was off).",
        ]
    if last:
        logged = ", ".join(
            f"{term_label(k)} {v:.4g}"
            for k, v in last.items()
            if k not in LOG_FIELDS and not k.endswith("_groups") and isinstance(v, (int, float))
        )
        out.append(
            f"- Mean over the last logged window (`metrics.jsonl`, step {last.get('step')}): {logged}."
        )
    return out


# ----------------------------------------------------------------------------- downstream
def _num(v: Any, spec: str = ".4g") -> str:
    return "unknown" if v is None else format(v, spec)


def _cell(best: dict[str, Any] | None, key: str) -> str:
    return "–" if not best else f"{best.get('method')}: {_num(best.get(key))}"


def _transfer_cells(medians: list[dict[str, Any]]) -> list[tuple[str, int, dict[str, float]]]:
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for m in medians:
        cells.setdefault((m["group"], m["k"]), {})[m["method"]] = m["median_rmsep"]
    return [(g, k, methods) for (g, k), methods in cells.items()]


def _best(methods: dict[str, float], embedding: bool) -> tuple[float, str] | None:
    return min(((v, m) for m, v in methods.items() if m.startswith("embedding") == embedding), default=None)


def verdicts(results: dict[str, Any] | None) -> list[str]:
    """One sentence per bank: targets lost to the best classical calibration, transfer cells won vs PLS."""
    out = []
    for bank, res in ((results or {}).get("banks") or {}).items():
        decided = [r for r in res.get("summary") or [] if isinstance(r.get("embedding_wins"), bool)]
        wins = [f"{r['dataset']} / {r['target']}" for r in decided if r["embedding_wins"]]
        line = (
            f"The embedding loses to the best classical calibration on {len(decided) - len(wins)} of "
            f"{len(decided)} {bank} targets" + (f" (it wins on {', '.join(wins)})" if wins else "")
        )
        cells = _transfer_cells(res.get("transfer_medians") or [])
        if cells:
            pls = [(_best(m, True), m.get("pls_raw")) for _, _, m in cells]
            better = sum(1 for emb, ref in pls if emb and ref and emb[0] < ref)
            line += f"; across instruments it beats PLS (raw) in {better} of {len(cells)} (group, k) cells"
        out.append(line + ".")
    return out


def downstream_lines(results: dict[str, Any] | None, scored: str | None = None) -> list[str]:
    """Per-target table and transfer medians against PLS, per bank, then the verdicts.

    ``scored`` says which weights the results scored, or why a given file is not shown
    (:func:`vitnirs.workflows.card_sources.matching_downstream`).
    """
    if results is None:
        return [f"- unknown ({scored or 'no `benchmarks/downstream.py` results were given'})."]
    name = Path(str(results.get("checkpoint", "unknown"))).name
    out = [
        f"From `benchmarks/downstream.py` on checkpoint `{name}`{f': {scored}' if scored else ''}. "
        "Ratio = best embedding head / best classical calibration (RMSEP: lower is better; balanced "
        "accuracy: higher is better).",
    ]
    for bank, res in (results.get("banks") or {}).items():
        out += [
            "",
            f"### {bank}",
            "",
            "| dataset / target | split | best classical | best embedding | ratio |",
        ]
        out.append("|---|---|---|---|---|")
        for r in res.get("summary") or []:
            key = "balanced_accuracy" if r.get("task") == "classification" else "rmsep"
            out.append(
                f"| {r['dataset']} / {r['target']} | {r.get('protocol')} | {_cell(r.get('best_classical'), key)} | "
                f"{_cell(r.get('best_embedding'), key)} | {_num(r.get('embedding_vs_best_classical'))} |"
            )
        cells = _transfer_cells(res.get("transfer_medians") or [])
        if cells:
            out += [
                "",
                "Cross-instrument transfer, median test RMSEP over instrument pairs (k = transfer samples):",
                "",
                "| group | k | best embedding | PLS (raw) | best classical | embedding / PLS |",
                "|---|---|---|---|---|---|",
            ]
        for group, k, methods in cells:
            emb, cls, pls = _best(methods, True), _best(methods, False), methods.get("pls_raw")
            out.append(
                f"| {group} | {k} | {f'{emb[1]}: {emb[0]:.4g}' if emb else '–'} | {_num(pls)} | "
                f"{f'{cls[1]}: {cls[0]:.4g}' if cls else '–'} | {_num(emb[0] / pls if emb and pls else None)} |"
            )
    return out + ["", *(f"**{v}**" for v in verdicts(results))]
