"""Console lines for the results of pretraining and evaluation (what `vitnirs` prints).

Every line says which method won; where the encoder loses, it says so.
"""

from __future__ import annotations

import numpy as np

from vitnirs.evaluate.summary import outcome
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
    lines += synthetic_lines(result.get("synthetic_checks") or [])
    return "\n".join(lines) or "  nothing to evaluate (no real dataset with targets in data.regions)"


def _summary_line(r: dict) -> str:
    bc, be, ratio = r["best_classical"], r["best_embedding"], r["embedding_vs_best_classical"]
    key = "balanced_accuracy" if r.get("task") == "classification" else "rmsep"
    label = "balanced accuracy" if key == "balanced_accuracy" else "RMSEP"
    head = f"  {r['dataset']}/{r['target']} [{r['protocol']}]: "
    if bc is None:
        return head + "no classical result"
    text = head + f"best classical {bc['method']} {label} {bc[key]:.4g}; "
    if be is None:
        return text + "no embedding head"
    verdict = outcome(
        be[key], bc[key], higher=key == "balanced_accuracy", noise=max(bc.get("std") or 0, be.get("std") or 0)
    )
    text += f"best embedding {be['method']} {be[key]:.4g}, ratio {ratio:.2f} "
    if r.get("best_untrained"):  # the control: the same network, untrained
        bu = r["best_untrained"]
        text += f"[untrained {bu['method'].split('+', 1)[-1]} {bu[key]:.4g}, pretrained/untrained {r['pretrained_vs_untrained']}] "
    if r.get("best_snv_sg1_features"):  # the classical-features control: SNV + SG1 into the same heads
        bf = r["best_snv_sg1_features"]
        text += f"[SNV+SG1 features {bf['method'].split('+', 1)[-1]} {bf[key]:.4g}] "
    return (
        text
        + {
            "level": "(level: within the tolerance)",
            "worse": "(embedding worse)",
            "better": "(embedding better)",
        }[verdict[0]]
    )


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
            shown = ", ".join(f"{m} {np.median(v):.3g}" for m, v in by_method.items())
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
        shown = ", ".join(f"{m} ×{v:.2f}" for m, v in worst.items())
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
