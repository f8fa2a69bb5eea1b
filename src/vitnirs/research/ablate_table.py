"""The comparison table of `vitnirs ablate`: A (classical) vs each variant, and the p_synth lift.

Input: the variant records of :func:`vitnirs.research.ablate.run_ablation` (``status`` ``done`` with
the path of the variant's ``metrics.json``, or ``failed`` with its ``error``). For every
(dataset, target) of a variant's evaluation summary, the cell is the test RMSEP of the best
embedding head on the target's main protocol and the ratio is that RMSEP / the best
classical RMSEP of the same ``metrics.json`` (ratio < 1: the embedding wins). Row ``A`` is
the best classical baseline per target and ``A:<method>`` each baseline, from the first
evaluated variant (every variant shares the splits and the baseline cache). Output:
``ablation.json`` (every row and cell record), ``ablation.md`` (the table, a transfer table,
one sentence per variant), ``ablation.png`` (mean ratio per variant, a line at 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitnirs.config import Config
from vitnirs.evaluate.metrics import summarise


def comparison(results: Sequence[dict], configs: Mapping[str, Config]) -> dict:
    """Rows A (best classical, then each baseline) + one per variant, and the p_synth lift.

    Every variant row holds, per (dataset, target), the record of its best embedding head
    (``dataset, target, method, protocol, n_train, n_test, metrics, std, checkpoint, bank``)
    with ``best_classical`` and ``ratio`` = its RMSEP / the best classical RMSEP of the same
    metrics.json; ``mean_ratio``, ``median_ratio``, ``n_beats`` (ratio < 1), ``n_targets``,
    ``heldout_recon_mse_end`` (older: ``heldout_mae_end``), ``probe_auc``, ``transfer_k0``
    ({group/target: median RMSEP over the cross-instrument pairs at k = 0 of the best embedding head}).
    """
    rows = [variant_row(r) for r in results]
    first = next((r for r in results if r["status"] == "done"), None)
    a_rows = _classical_rows(json.loads(Path(first["metrics"]).read_text())) if first else []
    return {"rows": a_rows + rows, "psynth_lift": psynth_lift(configs, rows)}


def variant_row(record: dict) -> dict:
    """The row of one variant record (see :func:`comparison`)."""
    row: dict[str, Any] = {"variant": record["name"], **record}
    if record["status"] != "done":
        return row | {**_ratios([]), "n_beats": 0, "transfer_k0": {}}
    metrics = json.loads(Path(record["metrics"]).read_text())
    down = summarise(metrics.get("downstream", []))
    common = {"checkpoint": metrics.get("checkpoint"), "bank": metrics.get("bank")}
    targets = []
    for s in metrics.get("summary", []):
        bc, be = s.get("best_classical"), s.get("best_embedding")
        if not bc or not be or bc.get("rmsep") is None or be.get("rmsep") is None:
            continue
        key = (s["dataset"], s["target"], be["method"], s["protocol"])
        full = next((d for d in down if (d["dataset"], d["target"], d["method"], d["protocol"]) == key), {})
        targets.append(
            {**full, "dataset": s["dataset"], "target": s["target"], "method": be["method"],
             "protocol": s["protocol"], "rmsep": be["rmsep"], **common,
             "best_classical": bc, "ratio": be["rmsep"] / bc["rmsep"]}
        )  # fmt: skip
    return row | {
        **_ratios(targets),
        "n_beats": int(sum(t["ratio"] < 1 for t in targets)),
        "transfer_k0": _transfer_k0(metrics.get("transfer") or [], embedding=True),
    }


def _classical_rows(metrics: dict) -> list[dict]:
    """A: the best classical per target, then each baseline, on each target's main protocol."""
    base = summarise(metrics.get("baselines", []))
    common = {"checkpoint": None, "bank": metrics.get("bank")}
    best = {
        (s["dataset"], s["target"]): s
        for s in metrics.get("summary", [])
        if (s.get("best_classical") or {}).get("rmsep") is not None  # regression targets
    }
    methods = list(dict.fromkeys(b["method"] for b in base))
    rows = []
    for label in ["best classical", *methods]:
        targets = []
        for (dataset, target), s in best.items():
            bc = s["best_classical"]
            method = bc["method"] if label == "best classical" else label
            key = (dataset, target, method, s["protocol"])
            rec = next(
                (b for b in base if (b["dataset"], b["target"], b["method"], b["protocol"]) == key), None
            )
            if rec is not None:
                rmsep = rec["metrics"]["rmsep"]
                targets.append(
                    {**rec, **common, "rmsep": rmsep, "best_classical": bc, "ratio": rmsep / bc["rmsep"]}
                )
        is_best = label == "best classical"
        if not targets:
            continue  # a method of class targets only
        rows.append(
            {"variant": "A" if is_best else f"A:{label}", "status": "classical",
             "description": f"classical baseline: {label}", **_ratios(targets), "n_beats": 0,
             "transfer_k0": _transfer_k0(metrics.get("transfer") or [], embedding=False) if is_best else {}}
        )  # fmt: skip
    return rows


def _ratios(targets: list[dict]) -> dict[str, Any]:
    ratios = [t["ratio"] for t in targets]
    return {
        "targets": targets,
        "n_targets": len(ratios),
        "mean_ratio": float(np.mean(ratios)) if ratios else None,
        "median_ratio": float(np.median(ratios)) if ratios else None,
    }


def _transfer_k0(records: list[dict], *, embedding: bool) -> dict[str, float]:
    """{group/target: the lowest, over the methods of one kind, median cross-pair RMSEP at k = 0}."""
    medians: dict[str, dict[str, list[float]]] = {}
    for r in records:
        cross = r["k"] == 0 and r["source"] != r["target_instrument"]
        if cross and r["method"].startswith("embedding+") == embedding:
            by_method = medians.setdefault(f"{r['group']}/{r['target']}", {})
            by_method.setdefault(r["method"], []).append(r["metrics"]["rmsep"])
    return {key: float(min(np.median(v) for v in by.values())) for key, by in medians.items()}


def psynth_lift(configs: Mapping[str, Config], rows: Sequence[dict]) -> dict | None:
    """Per-target relative RMSEP change of p_synth 0.3 vs 0 (negative: synthetic spectra help).

    The pair is the first two evaluated variants whose configs differ only in
    ``training_strategy.p_synth`` (0 and 0.3); None when no such pair ran. ``per_target``
    compares the best embedding heads, ``per_head`` every head
    (:func:`vitnirs.evaluate.synthetic_checks.psynth_lift`).
    """

    def rest(cfg: Config) -> str:
        d = cfg.to_dict()
        d["training_strategy"].pop("p_synth")
        return json.dumps(d, sort_keys=True)

    ran = {r["variant"]: r for r in rows if r.get("status") == "done" and r["variant"] in configs}
    p_synth = {name: configs[name].training_strategy.p_synth for name in ran}
    pair = next(((a, b) for a in ran for b in ran if p_synth[a] == 0 and math.isclose(p_synth[b], 0.3)
                 and rest(configs[a]) == rest(configs[b])), None)  # fmt: skip
    if pair is None:
        return None
    ref = {(t["dataset"], t["target"]): t["rmsep"] for t in ran[pair[0]]["targets"]}
    per_target = [
        {"dataset": t["dataset"], "target": t["target"], "rmsep_psynth_0": ref[(t["dataset"], t["target"])],
         "rmsep_psynth_03": t["rmsep"], "relative_change": t["rmsep"] / ref[(t["dataset"], t["target"])] - 1}
        for t in ran[pair[1]]["targets"] if (t["dataset"], t["target"]) in ref
    ]  # fmt: skip
    changes = [p["relative_change"] for p in per_target]
    from vitnirs.evaluate.synthetic_checks import psynth_lift as per_head_lift

    without, with_ = (json.loads(Path(ran[name]["metrics"]).read_text()) for name in pair)
    return {
        "reference": pair[0], "variant": pair[1], "per_target": per_target,
        "per_head": per_head_lift(without, with_),
        "mean_relative_change": float(np.mean(changes)) if changes else None,
        "median_relative_change": float(np.median(changes)) if changes else None,
        "n_improved": int(sum(c < 0 for c in changes)),
    }  # fmt: skip


def write_report(report: dict, out: str | Path) -> dict[str, Path]:
    """OUT/ablation.json, ablation.md (table + one sentence per variant), ablation.png (mean ratios)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"ablation.{k}" for k in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(report, indent=1, default=str))
    paths["md"].write_text(markdown(report))
    shown = [r for r in report["rows"] if r["mean_ratio"] is not None and r["status"] != "classical"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.8 * len(shown)), 3.5))
    bars = ax.bar([r["variant"] for r in shown], [r["mean_ratio"] for r in shown], color="tab:blue")
    ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.axhline(1.0, color="black", linestyle="--")
    ax.set_ylabel("mean RMSEP ratio to best classical")
    ax.set_title("dashed: best classical (A) = 1; below: the encoder wins", fontsize=9)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=120)
    plt.close(fig)
    return paths


def markdown(report: dict) -> str:
    """The comparison as a Markdown table, a transfer table when present, one sentence per variant."""
    rows = report["rows"]
    keys = list(dict.fromkeys((t["dataset"], t["target"]) for r in rows for t in r["targets"]))
    head = ["variant", *(f"{d}/{t}" for d, t in keys), "mean ratio", "median ratio", "beats A",
            "held-out recon. MSE", "probe AUC"]  # fmt: skip
    lines = ["# Ablation: each variant's encoder vs the best classical pipeline (A)", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cell = {(t["dataset"], t["target"]): f"{t['rmsep']:.4g}" for t in r["targets"]}
        beats = {"classical": "—", "failed": "failed"}.get(r["status"], f"{r['n_beats']}/{r['n_targets']}")
        held = r.get("heldout_recon_mse_end", r.get("heldout_mae_end"))  # older results: the old key
        scores = [r["mean_ratio"], r["median_ratio"], beats, held, r.get("probe_auc")]
        values = [r["variant"], *(cell.get(k, "—") for k in keys), *map(_fmt, scores)]
        lines.append("| " + " | ".join(values) + " |")
    lines += ["", "Cells: test RMSEP of the best embedding head (A: of the classical baseline); ratio = that "
              "RMSEP / the best classical RMSEP of the same evaluation, averaged over targets."]  # fmt: skip
    tkeys = list(dict.fromkeys(k for r in rows for k in (r.get("transfer_k0") or {})))
    if tkeys:
        lines += ["", "Transfer, k = 0 (median test RMSEP over the cross-instrument pairs, best method):", "",
                  "| variant | " + " | ".join(tkeys) + " |", "|" + "---|" * (len(tkeys) + 1)]  # fmt: skip
        lines += [
            f"| {r['variant']} | " + " | ".join(_fmt(r["transfer_k0"].get(k)) for k in tkeys) + " |"
            for r in rows
            if r.get("transfer_k0")
        ]
    lines.append("")
    for r in rows:
        if r["status"] == "failed":
            lines.append(f"- {r['variant']} failed: {r['error']}")
        elif r["status"] == "done" and r["n_targets"]:
            better = "better" if r["mean_ratio"] < 1 else "not better"
            lines.append(
                f"- {r['variant']} beats A (the best classical baseline) on {r['n_beats']} of "
                f"{r['n_targets']} targets; its mean RMSEP ratio is {r['mean_ratio']:.3f}, so it is "
                f"{better} than A on average."
            )
    lift = report.get("psynth_lift")
    if lift and lift["mean_relative_change"] is not None:
        lines.append(
            f"- p_synth 0.3 ({lift['variant']}) vs 0 ({lift['reference']}): mean relative RMSEP change "
            f"{100 * lift['mean_relative_change']:+.1f}% (negative = synthetic spectra help), "
            f"lower RMSEP on {lift['n_improved']} of {len(lift['per_target'])} targets."
        )
    return "\n".join(lines) + "\n"


def _fmt(x: float | str | None) -> str:
    if isinstance(x, str):
        return x
    return "—" if x is None or not math.isfinite(x) else f"{x:.4g}"
