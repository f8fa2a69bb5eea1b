"""``vitnirs report DIR``: one self-contained HTML file from the outputs of a run.

:func:`write_report` finds the files (:func:`vitnirs.report.discover.discover`), draws the
figures into PNG bytes (:mod:`vitnirs.report.figures`), embeds them as base64 data URIs and
writes one HTML file with inline CSS: no script, no external stylesheet, font or image, so
it can be emailed. Sections, in order: run headline, the evaluated checkpoint's model-card
scorecard (a portable checkpoint such as the shipped model: :mod:`vitnirs.report.card`), loss curves, reconstructions, embedding
map, downstream regression table, class targets, LODO, transfer, robustness, synthetic checks,
ablations, and the list of files the report was built from. A section whose data is missing
says "not run in this output" (and, for class targets, strict LODO, ablations and the model
artefacts, how to run them); a section that cannot apply to the output (reconstructions and
embedding map without an evaluated checkpoint, or with no real spectrum to draw) is left out.
All text is escaped; every table scrolls inside its section when wider than the page. Each
table says its checkpoint, bank and split protocol; where the encoder loses to a classical
method beyond the noise, a sentence says so. The headline's per-target table is
:func:`vitnirs.evaluate.summary.summary_rows` of the records, the very rows the console prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitnirs.evaluate.summary import row_outcome, summary_rows
from vitnirs.evaluate.text import by_seed
from vitnirs.pretrain_log import heldout_recon_mse, term_label
from vitnirs.report.card import card_section
from vitnirs.report.checks import ablation_section, synthetic_section
from vitnirs.report.discover import RunFiles, discover
from vitnirs.report.fewshot import fewshot_section
from vitnirs.report.figures import embedding_map_png, loss_curve_png, reconstructions_png
from vitnirs.report.sections import img, lodo_section, robustness_section, transfer_section
from vitnirs.report.tables import (
    LEVEL_RULE,
    Html,
    compare,
    comparison_table,
    esc,
    fmt,
    provenance,
    summary_table,
    table,
)

__all__ = ["SECTION_TITLES", "build_html", "write_report"]

SECTION_TITLES = {
    "run": "Run",
    "model-card": "Model card: the published scorecard of these weights",
    "loss": "Pretraining loss curves",
    "reconstructions": "Reconstructions of masked spectra",
    "embedding-map": "Embedding map",
    "downstream": "Downstream regression",
    "fewshot": "Few-shot calibration (learning curves)",
    "class": "Class targets",
    "lodo": "Leave-one-dataset-out (LODO)",
    "transfer": "Cross-instrument transfer",
    "robustness": "Robustness",
    "synthetic": "Synthetic checks",
    "ablations": "Ablations",
    "files": "Files this report was built from",
}
RUN_SECTIONS = {
    "lodo": "lodo",
    "transfer": "transfer",
    "robustness": "robustness",
    "synthetic": "synthetic_checks",
}
NOT_RUN = Html('<p class="missing">not run in this output</p>')
HOW_TO_RUN = {
    "fewshot": "Few-shot calibration is off by default (evaluation.fewshot: its classical draws, AOM-PLS above "
    "all, take up to minutes per target the first time): <code>vitnirs evaluate --checkpoint RUN --store STORE --out "
    "DIR/evaluation --set evaluation.fewshot=true</code>, then <code>vitnirs report DIR</code>.",
    "class": "No class target was evaluated: a class target is a <code>y_*</code> column with non-numeric "
    "values, or a metadata column named in <code>evaluation.class_columns</code> (default: "
    "<code>class</code>). Add one to the bank, or name an existing column, and evaluate again: "
    "<code>vitnirs evaluate --checkpoint RUN --store STORE --out DIR/evaluation --set "
    "'evaluation.class_columns=[COLUMN]'</code>, then <code>vitnirs report DIR</code>.",
    "artefacts": "<code>vitnirs evaluate</code> writes <code>reconstructions.json</code> and "
    "<code>embedding_map.json</code> beside <code>metrics.json</code> unless <code>evaluation.artefacts</code> "
    "is false: <code>vitnirs evaluate --checkpoint RUN --store STORE --out DIR/evaluation --set "
    "evaluation.artefacts=true</code>, then <code>vitnirs report DIR</code>.",
    "ablations": "No ablation in this output. Run the research tool <code>vitnirs ablate --out DIR/ablate</code> "
    "(the bundled patch_*.yaml recipes; each one pretrains and evaluates an encoder, hours on a CPU) or "
    "<code>vitnirs ablate --out DIR/ablate RECIPE.yaml ...</code>, then <code>vitnirs report DIR</code>: every "
    "folder holding an <code>ablation.json</code> is shown here.",
}
MAX_LOSS_PLOTS = 4
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1300px;
padding:0 1em;color:#222;line-height:1.4}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.82em}caption{text-align:left;color:#555;padding:.3em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f0f0f0}
tr.loses,tbody.loses td{background:#fdecea}tr.wins,tbody.wins td{background:#eaf6ec}li.loses{color:#a00}
.win{font-weight:bold}.sd{white-space:nowrap}tr.verdict td{border-top:none;color:#333;padding-left:1.5em}
table.compare td,table.compare th{padding:.25em .4em}
td.head,th.head{border-left:2px solid #888}
.missing{color:#777;font-style:italic}img{max-width:100%;display:block;margin:.5em 0}
.note{color:#555;font-size:.9em}
code{background:#f4f4f4;padding:0 .2em}nav a{margin-right:1em}
.scroll{overflow-x:auto;max-width:100%}td.control,th.control{background:#f6f3fb}
"""


def _not_run(section: str) -> Html:
    return Html(NOT_RUN + f"<p>{HOW_TO_RUN[section]}</p>")


def _kv(items: list[tuple[str, object]]) -> Html:
    return table(["", ""], [[k, v] for k, v in items if v not in (None, "", [])])


def _headline(files: RunFiles, rows: list[dict]) -> Html:
    """The run's facts, then per target the best embedding head against the best classical
    baseline and the untrained control (``rows``: :func:`headline_rows`)."""
    ev, demo, cfg = files.evaluation, files.demo_summary or {}, files.config or {}
    pre = demo.get("pretrain") or files.pretrain_summary or {}
    check = demo.get("synthetic_check") or {}
    model, training = cfg.get("model") or {}, cfg.get("training") or {}
    held = [heldout_recon_mse(pre, "start"), heldout_recon_mse(pre, "end")]
    facts = [
        ("run directory", str(files.root)),
        ("report generated", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("checkpoint", ev.get("checkpoint") or demo.get("checkpoint") or "unknown"),
        ("bank (prepared store)", ev.get("bank") or demo.get("store") or "unknown"),
        ("model", f"{model.get('preset')} preset, d_model {model.get('d_model')}" if model else None),
        ("training", f"{training.get('epochs')} epochs, batch {training.get('batch_size')}" if training else None),
        ("datasets / spectra in the store", f"{demo['datasets']} / {demo.get('spectra')}" if "datasets" in demo else None),
        ("pretraining steps", pre.get("steps")),
        ("final losses", ", ".join(f"{term_label(k)} {fmt(v)}" for k, v in (pre.get("final") or {}).items()) or None),
        ("held-out masked reconstruction MSE, start → end",
         f"{fmt(held[0])} → {fmt(held[1])}" if held[0] is not None or held[1] is not None else None),
        ("synthetic-vs-real probe AUC on the embedding (0.5 = indistinguishable)", fmt(pre.get("probe_auc"))
         if pre.get("probe_auc") is not None else None),
        ("synthetic-vs-real AUC on raw spectra (raw / SNV)",
         f"{fmt((check.get('raw') or {}).get('auc'))} / {fmt((check.get('snv') or {}).get('auc'))}" if check else None),
        ("embedding dimension", ev.get("embedding_dim")),
        ("evaluation time (s)", ev.get("seconds")),
        ("demo time (s)", demo.get("seconds")),
    ]  # fmt: skip
    outcomes = [row_outcome(r) for r in rows]
    lines = []
    if rows:
        lines.append(f"On the main split protocol of {len(rows)} dataset/target pairs, the encoder beats the best "
                     f"classical baseline on {outcomes.count('better')}, is level with it on "
                     f"{outcomes.count('level')} and loses on {outcomes.count('worse')}.")  # fmt: skip
    missing = [SECTION_TITLES[k] for k, section in RUN_SECTIONS.items() if not files.ran(section)]
    if missing:
        lines.append("Not run in this output: " + ", ".join(missing) + ".")
    lines += [f"Could not read: {p}" for p in files.problems]
    body = "".join(f"<li>{esc(ln)}</li>" for ln in lines)
    verdicts = summary_table(
        rows, "per target, on its main split protocol (the numbers the console printed); "
        + ("RMSEP, lower is better" if any(r.get("task") != "classification" for r in rows) else "")
        + (" / balanced accuracy, higher is better" if any(r.get("task") == "classification" for r in rows) else "")
    ) if rows else ""  # fmt: skip
    rule = f'<p class="note">{esc(LEVEL_RULE)}</p>' if rows else ""
    return Html(_kv(facts) + (f"<ul>{body}</ul>" if body else "") + verdicts + rule)


def headline_rows(files: RunFiles) -> list[dict]:
    """Per dataset and target: :func:`summary_rows` of the records (what the console printed), or
    the ``summary`` of ``metrics.json`` when there are no records or they cannot be read."""
    base = [r for r in files.section("baselines") if r.get("metrics")]
    if base:
        try:
            return summary_rows(base, files.section("downstream"), files.section("controls"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            files.problems.append(f"summary of the records: {type(exc).__name__}: {exc}")
    return files.section("summary")


def _loss(files: RunFiles, extra: list[Path]) -> Html:
    if not files.pretrain_runs:
        return NOT_RUN
    parts = []
    for i, run in enumerate(files.pretrain_runs):
        rel = run.relative_to(files.root).as_posix() or "."
        if i >= MAX_LOSS_PLOTS:
            parts.append(f"<p>also found: <code>{esc(rel)}</code> (not drawn)</p>")
            continue
        png, used = loss_curve_png(run)
        extra += used
        label = "main run" if i == 0 else "other run"
        parts.append(f"<h3>{esc(rel)} ({label})</h3>" + (img(png, f"loss curve {rel}") if png else NOT_RUN))
    return Html("".join(parts))


def _artefact(
    files: RunFiles, data: Any, draw: Callable[[Any], bytes | None], alt: str, note: str
) -> Html | None:
    """The figure of a model artefact; how to get it when the evaluation of a checkpoint did not
    write it; None (the section is left out) when it cannot apply: no evaluated checkpoint, or
    the file holds nothing to draw (no real spectrum)."""
    png = draw(data) if data else None
    if png:
        return Html(f"<p>{esc(note)}</p>" + img(png, alt))
    if data is None and files.evaluation.get("checkpoint"):
        return _not_run("artefacts")
    return None


def _split_tasks(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """Regression records (RMSEP) and class-target records (balanced accuracy)."""
    reg = [r for r in records if "rmsep" in (r.get("metrics") or {})]
    cls = [
        r for r in records if "balanced_accuracy" in (r.get("metrics") or {}) and "rmsep" not in r["metrics"]
    ]
    return reg, cls


def build_html(files: RunFiles) -> str:
    """The whole page for what :func:`discover` found."""
    ev = files.evaluation
    records = files.section("baselines") + files.section("downstream")
    reg, cls = _split_tasks(records)
    controls = files.section("controls")  # the same heads on the untrained network
    reg_rows, cls_rows = compare(reg, controls=controls), compare(cls, classification=True, controls=controls)
    extra: list[Path] = []
    emap = files.embedding_map or {}
    sections = {
        "run": _headline(files, headline_rows(files)),
        "model-card": card_section(ev.get("checkpoint")),  # None (left out) for a checkpoint without a card
        "loss": _loss(files, extra),
        "reconstructions": _artefact(
            files, files.reconstructions, reconstructions_png, "reconstructions",
            "Real spectra, block-masked as in pretraining; the encoder sees the solid parts, the decoder "
            "predicts the shaded ones (per-spectrum normalised units).",
        ),
        "embedding-map": _artefact(
            files, files.embedding_map, embedding_map_png, "embedding map",
            f"{str(emap.get('method', 'pca')).upper()} of the frozen embeddings of {emap.get('n_points', '?')} "
            "spectra (a balanced sample per dataset; synthetic spectra hollow).",
        ),
        "downstream": comparison_table(reg_rows, "RMSEP (lower is better)", provenance(reg, ev))
        or (Html(summary_table(files.section("summary"), "from the summary of metrics.json (no per-method records) · "
                               + provenance(files.section("summary"), ev)) + f'<p class="note">{esc(LEVEL_RULE)}</p>')
            if files.ran("summary") else NOT_RUN),
        "fewshot": fewshot_section(files.section("fewshot"), ev, reg) if files.ran("fewshot") else _not_run("fewshot"),
        "class": comparison_table(cls_rows, "balanced accuracy (higher is better)", provenance(cls, ev))
        or _not_run("class"),
        "lodo": lodo_section(files.section("lodo"), ev, reg_rows + cls_rows) if files.ran("lodo") else NOT_RUN,
        "transfer": transfer_section(by_seed(files.section("transfer")), ev) if files.ran("transfer") else NOT_RUN,
        "robustness": (
            robustness_section(by_seed(files.section("robustness")), ev) if files.ran("robustness") else NOT_RUN
        ),
        "synthetic": synthetic_section(files.section("synthetic_checks"), ev)
        if files.ran("synthetic_checks") else NOT_RUN,
        "ablations": ablation_section(files.ablations, files.root) if files.ablations
        else _not_run("ablations"),
    }  # fmt: skip
    sections = {k: v for k, v in sections.items() if v is not None}  # left out: cannot apply here
    used = list(dict.fromkeys(files.used + extra))
    sections["files"] = table(
        ["file", "bytes"],
        [[p.relative_to(files.root).as_posix() if p.is_relative_to(files.root) else str(p),
          p.stat().st_size if p.exists() else "—"] for p in used],
    ) if used else NOT_RUN  # fmt: skip
    nav = "".join(f'<a href="#{k}">{esc(SECTION_TITLES[k])}</a>' for k in sections)
    body = "".join(
        f'<section id="{k}"><h2>{esc(SECTION_TITLES[k])}</h2>{v}</section>' for k, v in sections.items()
    )
    title = f"vitnirs report: {files.root.resolve().name}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1><nav>{nav}</nav>{body}</body></html>\n"
    )


def write_report(run_dir: str | Path, out_html: str | Path | None = None) -> Path:
    """Write the HTML report of a run directory.

    Parameters
    ----------
    run_dir:
        The directory ``vitnirs demo --out DIR`` (or ``evaluate`` / ``ablate``) wrote; files
        are found by name anywhere below it.
    out_html:
        Where to write (default ``run_dir/report.html``).

    Returns
    -------
    Path
        The HTML file written.
    """
    run_dir = Path(run_dir)
    out = Path(out_html) if out_html is not None else run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_html(discover(run_dir)), encoding="utf-8")
    return out
