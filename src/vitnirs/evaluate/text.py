"""Console lines for the results of pretraining and evaluation (what `vitnirs` prints).

Every line says which method won; where the encoder loses, it says so. Methods are named in
words (:func:`vitnirs.evaluate.names.method_label`); the per-target figures are the ``summary``
rows of :func:`vitnirs.evaluate.summary.summary_rows`, the same numbers as the HTML report's.
"""

from __future__ import annotations

import numpy as np

from vitnirs.evaluate.names import method_label
from vitnirs.evaluate.summary import row_outcome
from vitnirs.pretrain_log import heldout_recon_mse


def pretrain_line(summary: dict) -> str:
    """The one-line summary of a pretraining run (a resumed run that had nothing left to do says so)."""
    if summary.get("start_step") is not None and summary.get("start_step") == summary.get("steps"):
        if summary["steps"] < summary["total_steps"]:
            return (
                f"nothing to do: the run is at step {summary['steps']} of {summary['total_steps']}, the --max-steps "
                f"given; resume with a larger --max-steps (or none) to continue. Checkpoint {summary.get('checkpoint')}"
            )
        return (
            f"the run is already complete: step {summary['steps']}/{summary['total_steps']}, nothing to do; "
            f"checkpoint {summary.get('checkpoint')}. To train longer, raise the schedule and resume: "
            "--set training.epochs=N --resume (N above the run's training.epochs)"
        )
    final = summary.get("final") or {}
    loss = f"loss {final['total']:.4f}" if "total" in final else "no step run"
    mae = ""
    start, end = heldout_recon_mse(summary, "start"), heldout_recon_mse(summary, "end")
    if start is not None and end is not None:
        mae = f", held-out masked recon. MSE {start:.4f} → {end:.4f}"
    took = f"in {summary['seconds']} s " if "seconds" in summary else ""
    return (
        f"pretrained to step {summary['steps']}/{summary['total_steps']} {took}"
        f"({loss}{mae}, {summary.get('spectra_per_s', 0):.0f} spectra/s); checkpoint {summary.get('checkpoint')}"
    )


def evaluation_lines(result: dict) -> str:
    """Per (dataset, target): best classical vs best embedding; then transfer, robustness, checks."""
    lines = [_summary_line(r) for r in result.get("summary") or []]
    lines += transfer_lines(by_seed(result.get("transfer") or []))
    lines += robustness_lines(by_seed(result.get("robustness") or []))
    lines += fewshot_lines(result)
    lines += synthetic_lines(result.get("synthetic_checks") or [])
    return "\n".join(lines) or "  nothing to evaluate (no real dataset with targets in data.regions)"


def _summary_line(r: dict) -> str:
    bc, be, ratio = r["best_classical"], r["best_embedding"], r["embedding_vs_best_classical"]
    key = "balanced_accuracy" if r.get("task") == "classification" else "rmsep"
    label = "balanced accuracy" if key == "balanced_accuracy" else "RMSEP"
    head = f"  {r['dataset']}/{r['target']} [{r['protocol']}]: "
    if bc is None:
        return head + "no classical result"
    text = head + f"best classical: {method_label(bc['method'])}, {label} {bc[key]:.4g}; "
    if be is None:
        return text + "no embedding head"
    text += f"best embedding head: {method_label(be['method'])}, {be[key]:.4g}, ratio {_ratio(ratio)} "
    if r.get("best_untrained"):  # the control: the same network, untrained
        text += f"[untrained control {untrained_words(r['best_untrained'])} {r['best_untrained'][key]:.4g}, "
        text += f"pretrained/untrained {_ratio(r.get('pretrained_vs_untrained'))}] "
    if r.get("best_snv_sg1_features"):  # the classical-features control: SNV + SG1 into the same heads
        bf = r["best_snv_sg1_features"]
        text += f"[{method_label(bf['method'])} {bf[key]:.4g}] "
    return (
        text
        + {
            "level": "(level: within the tolerance)",
            "worse": "(embedding worse)",
            "better": "(embedding better)",
        }[row_outcome(r)]
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def untrained_words(best: dict) -> str:
    """What the untrained control's number is: ``"(each seed's best head, mean of 2 seeds)"`` or, with
    one seed, its best head (``"(ridge)"``)."""
    seeds = best.get("seeds") or {}
    if len(seeds) > 1:
        return f"(each seed's best head, mean of {len(seeds)} seeds)"
    return f"({method_label(best['method']).removeprefix('untrained network + ')})"


def by_seed(records: list[dict]) -> list[dict]:
    """Records with the untrained control's seed in the method name (``untrained(seed 1)+ridge``),
    so that tables keyed by method keep the seeds apart."""
    return [
        r | {"method": r["method"].replace("untrained+", f"untrained(seed {r['seed']})+", 1)}
        if r.get("seed") is not None and str(r.get("method", "")).startswith("untrained+")
        else r
        for r in records
    ]


def transfer_lines(records: list[dict]) -> list[str]:
    """Per instrument group and k: median test RMSEP over the cross-instrument pairs, per method."""
    lines = []
    for group in dict.fromkeys(r["group"] for r in records):
        for k in sorted({r["k"] for r in records if r["group"] == group}):
            by_method: dict[str, list[float]] = {}
            for r in records:
                if r["group"] == group and r["k"] == k and r["source"] != r["target_instrument"]:
                    by_method.setdefault(r["method"], []).append(r["metrics"]["rmsep"])
            shown = ", ".join(f"{method_label(m)} {np.median(v):.3g}" for m, v in by_method.items())
            lines.append(
                f"  transfer {group}, k={k} transfer samples (median RMSEP over instrument pairs): {shown}"
            )
    return lines


def robustness_lines(records: list[dict]) -> list[str]:
    """Per dataset and perturbation: RMSEP at the highest severity relative to the clean one."""
    lines = []
    keys = dict.fromkeys((r["dataset"], r["perturbation"]) for r in records)
    for dataset, kind in keys:
        mine = [r for r in records if (r["dataset"], r["perturbation"]) == (dataset, kind)]
        top = max(r["severity"] for r in mine)
        worst = {r["method"]: r["metrics"]["rmsep_ratio"] for r in mine if r["severity"] == top}
        unit = mine[0].get("severity_unit", "")
        shown = ", ".join(f"{method_label(m)} ×{v:.2f}" for m, v in worst.items())
        lines.append(f"  robustness {dataset}, {kind} {top:g} {unit}: RMSEP vs clean {shown}")
    return lines


def synthetic_lines(records: list[dict]) -> list[str]:
    """One line per synthetic check (its headline number, or why it was skipped)."""
    lines = []
    for r in records:
        if r.get("skipped"):
            lines.append(f"  synthetic check {r['method']}: skipped ({r['skipped']})")
            continue
        metrics = {k: v for k, v in (r.get("metrics") or {}).items() if isinstance(v, float)}
        headline = [k for k in HEADLINE if k in metrics] or list(metrics)[:2]  # the rest is in metrics.json
        shown = ", ".join(f"{k} {metrics[k]:.3g}" for k in headline)
        lines.append(f"  synthetic check {r['method']} [{r.get('dataset')}]: {shown}")
    return lines


HEADLINE = ("auc", "euclidean_ratio", "cosine_ratio", "top1", "top1_chance")
FEWSHOT_WORDS = {
    "best_classical": "best classical",
    "untrained": "untrained network",
    "snv_sg1": "SNV + SG1 features",
}


def fewshot_lines(result: dict) -> list[str]:
    """One line per few-shot size n: the median over targets of the embedding's best median RMSEP
    divided by the best classical one and by each control's (below 1: the embedding is better)."""
    draws = next((r.get("draws") for r in result.get("fewshot") or []), None)
    lines = []
    for row in result.get("fewshot_summary") or []:
        names = [k.removeprefix("embedding_vs_") for k in row if k.startswith("embedding_vs_")]
        names.sort(key=lambda m: (m != "best_classical", m != "untrained"))  # then the other controls
        shown = ", ".join(
            f"/ {FEWSHOT_WORDS.get(m, m)} {row[f'embedding_vs_{m}']:.3f} ({row.get(f'targets_{m}')} targets)"
            for m in names
        )
        head = f"  few-shot n={row['n']} ({draws} draws, median RMSEP; ratio < 1: embedding better)"
        lines.append(f"{head}: embedding {shown}")
    skipped = [s for s in result.get("fewshot_skipped") or [] if "n" in s]
    if skipped:
        what = ", ".join(f"{s['dataset']}/{s['target']} n={s['n']}" for s in skipped)
        lines.append(f"  few-shot skipped (n not below the train rows): {what}")
    return lines
