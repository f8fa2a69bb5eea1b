"""`vitnirs demo`: the whole chain on the embedded demo bank, under one output folder.

prepare (the pip-shipped demo bank + synthetic spectra) → pretrain (``configs/demo.yaml``)
→ evaluate (baselines vs heads on the frozen embedding, transfer, downstream-only LODO,
robustness, synthetic checks) → one self-contained HTML report. Layout::

    OUT/config.yaml            the resolved config
    OUT/store/                 prepared store (manifest.json, datasets/)
    OUT/pretrain/              metrics.jsonl, loss_curve.png, checkpoints/step_N/
    OUT/evaluation/            metrics.json, embedding_map.json, reconstructions.json
    OUT/report.html            the report (`vitnirs report OUT` rebuilds it)
    OUT/summary.json           headline numbers and where everything is

A second run in the same folder reuses the prepared store and resumes pretraining.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from vitnirs.config import Config, save_config
from vitnirs.evaluate.text import evaluation_lines, pretrain_line
from vitnirs.workflows.sources import prepare_run_store
from vitnirs.workflows.threads import pinned_threads


def run_demo(
    cfg: Config,
    out: str | Path,
    *,
    workers: int | None = None,
    threads: int | None = 2,
    progress: bool = True,
) -> dict:
    """Run the chain with ``threads`` torch / BLAS threads (``None``: as the process has them);
    write ``OUT/summary.json`` and return it."""
    if threads is None:
        return _run(cfg, out, workers=workers, progress=progress, threads=None)
    with pinned_threads(threads):
        return _run(cfg, out, workers=workers, progress=progress, threads=threads)


def _run(cfg: Config, out: str | Path, *, workers: int | None, progress: bool, threads: int | None) -> dict:
    from vitnirs.checkpoint import latest_checkpoint
    from vitnirs.report import write_report
    from vitnirs.train.loop import pretrain
    from vitnirs.workflows.evaluation import evaluate, step_seconds_line

    started, out = time.perf_counter(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    prepared = prepare_run_store(
        cfg, out / "store", bank=None, step="[1/4]", workers=workers, progress=progress
    )

    run_dir = out / "pretrain"
    resume = latest_checkpoint(run_dir) is not None  # a second demo run continues the first
    print(
        f"[2/4] pretrain: {cfg.model.preset} encoder, {cfg.training.epochs} epochs → {run_dir}"
        + (" (resuming)" if resume else "")
    )
    run = pretrain(cfg, store=out / "store", run_dir=run_dir, resume=resume, progress=progress)
    (run_dir / "pretrain_summary.json").write_text(json.dumps(run, indent=1))
    print(pretrain_line(run))

    print(
        f"[3/4] evaluate: baselines vs heads on the frozen embedding, transfer, checks → {out / 'evaluation'}"
    )
    evaluation = evaluate(cfg, checkpoint=run["checkpoint"], store=out / "store", out=out / "evaluation",
                          progress=progress)  # fmt: skip
    print(evaluation_lines(evaluation))
    print(f"  {step_seconds_line(evaluation)}")  # where the evaluation's time went

    print(f"[4/4] report → {out / 'report.html'}")
    report_started = time.perf_counter()
    report = write_report(out)
    print(f"  report: {time.perf_counter() - report_started:.1f} s")
    summary = {
        "store": str(out / "store"),
        "pretrain_run": str(run_dir),
        "checkpoint": run.get("checkpoint"),
        "report": str(report),
        "datasets": len(prepared.manifest["datasets"]),
        "spectra": sum(r["n_rows"] for r in prepared.manifest["datasets"]),
        "skipped": prepared.skipped,
        "pretrain": {
            k: run.get(k)
            for k in (
                "steps",
                "final",
                "heldout_recon_mse_start",
                "heldout_recon_mse_end",
                "probe_auc",
                "spectra_per_s",
            )
        },
        "evaluation": {"metrics": str(out / "evaluation" / "metrics.json"), "summary": evaluation["summary"]},
        "encoder_wins": _wins(evaluation["summary"]),
        "threads": threads,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    wins = summary["encoder_wins"]
    print(
        f"demo done in {summary['seconds']} s. The embedding beats the best classical calibration on "
        f"{wins['wins']} of {wins['targets']} targets. Report: {report}"
    )
    return summary


def _wins(rows: list[dict]) -> dict:
    judged = [r for r in rows if r.get("embedding_wins") is not None]
    return {"targets": len(judged), "wins": sum(bool(r["embedding_wins"]) for r in judged)}
