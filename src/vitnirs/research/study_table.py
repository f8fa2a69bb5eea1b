"""The representation study's figures and tables (:mod:`vitnirs.research.study`).

Definitions (also in the README, "Representation study"):

- **regression ratio**: per regression target, the best embedding head's test RMSEP ÷ the best
  classical pipeline's; the figure is the median over the regression targets (< 1: the
  embedding wins). Class targets are reported apart, as balanced accuracy.
- **pretraining gain**: median over the regression targets of RMSEP(pretrained) ÷ RMSEP(the
  same architecture untrained, the mean of seeds 0 and 1, each seed's best head); < 1: the
  pretraining paid.
- **controls**: the untrained network's own ratio to the best classical, and the classical
  features (SNV + SG1 of the spectra into the same heads) likewise; ``vs SNV+SG1`` is the
  embedding's RMSEP ÷ the classical features' (median).
- **transfer k = 0**: median over the ordered cross-instrument pairs of test RMSEP, each
  method family at its best head; ``+align`` is the same model on B's rows shifted by
  mean(A cal) − mean(B cal), B's calibration spectra used without labels.
- **robustness**: RMSEP averaged over the non-zero severities of a perturbation.
- **effective rank** of a dataset's embedding: exp of the Shannon entropy of the normalised
  singular values of the centred (n, D) matrix; **dim std**: the median per-dimension std;
  both the median over the scorecard's datasets.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["digest", "markdown", "write_study"]

FAMILIES = ("embedding", "untrained", "snv_sg1", "pls_raw", "snv_sg1_pls", "aom_pls")


def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 4) if vals else None


def _get(d: dict | None, key: str) -> float | None:
    return None if not d else d.get(key)


def digest(metrics: dict) -> dict:
    """The study's figures of one evaluation (``metrics.json`` of the suite)."""
    targets, classes = [], []
    for r in metrics["summary"]:
        if r["task"] == "classification":
            key = "balanced_accuracy"
            classes.append({"dataset": r["dataset"], "target": r["target"], "classical": _get(r["best_classical"], key),
                            "embedding": _get(r["best_embedding"], key),
                            "untrained": _get(r.get("best_untrained"), key),
                            "classical_features": _get(r.get("best_snv_sg1_features"), key)})  # fmt: skip
            continue
        c, e = _get(r["best_classical"], "rmsep"), _get(r["best_embedding"], "rmsep")
        if c is None or e is None:
            continue
        u, f = _get(r.get("best_untrained"), "rmsep"), _get(r.get("best_snv_sg1_features"), "rmsep")
        targets.append({"dataset": r["dataset"], "target": r["target"], "classical": c,
                        "classical_method": r["best_classical"]["method"], "embedding": e,
                        "embedding_method": r["best_embedding"]["method"], "untrained": u,
                        "untrained_seeds": (r.get("best_untrained") or {}).get("seeds"), "classical_features": f,
                        "ratio": round(e / c, 4), "gain": round(e / u, 4) if u else None})  # fmt: skip
    ratio = lambda a, b: _median(t[a] / t[b] if t[a] and t[b] else None for t in targets)  # noqa: E731
    collapse = metrics.get("collapse", {})
    untrained_collapse = [v for k, v in collapse.items() if k.startswith("untrained")]
    return {
        "embedding_dim": metrics.get("embedding_dim"),
        "n_regression": len(targets),
        "regression_ratio": ratio("embedding", "classical"),
        "pretraining_gain": ratio("embedding", "untrained"),
        "untrained_ratio": ratio("untrained", "classical"),
        "classical_features_ratio": ratio("classical_features", "classical"),
        "vs_classical_features": ratio("embedding", "classical_features"),
        "n_beats_classical": sum(t["ratio"] < 1 for t in targets),
        "targets": targets,
        "classes": classes,
        "transfer": transfer_digest(metrics.get("transfer", [])),
        "robustness": robustness_digest(metrics.get("robustness", [])),
        "effective_rank": _median(s["effective_rank"] for s in collapse.get("embedding", {}).values()),
        "dim_std": _median(s["dim_std_median"] for s in collapse.get("embedding", {}).values()),
        "untrained_effective_rank": _median(
            s["effective_rank"] for c in untrained_collapse for s in c.values()
        ),
    }


def _family(method: str) -> tuple[str, bool]:
    """``embedding+ridge+align`` → (``embedding``, True); ``aom_pls`` → (``aom_pls``, False)."""
    aligned = method.endswith("+align")
    return method.removesuffix("+align").split("+")[0], aligned


def transfer_digest(records: Sequence[dict]) -> dict:
    """Per group: k = 0 cross-instrument median RMSEP of each family (best head; untrained: the
    mean over its seeds), plain and aligned, and the within-instrument reference."""
    out: dict[str, dict] = {}
    for group in dict.fromkeys(r["group"] for r in records):
        mine = [r for r in records if r["group"] == group and r["k"] == 0]
        row: dict[str, float | None] = {}
        for within in (False, True):
            rs = [r for r in mine if (r["source"] == r["target_instrument"]) == within]
            for fam in FAMILIES:
                for aligned in (False, True):
                    if within and aligned:
                        continue
                    sel = [
                        r for r in rs if _family(r["method"]) == (fam, aligned) and "+pds" not in r["method"]
                    ]
                    per_seed = []
                    for seed in dict.fromkeys(r.get("seed") for r in sel):
                        by_method: dict[str, list[float]] = {}
                        for r in sel:
                            if r.get("seed") == seed:
                                by_method.setdefault(r["method"], []).append(r["metrics"]["rmsep"])
                        per_seed.append(min(statistics.median(v) for v in by_method.values()))
                    if per_seed:
                        name = ("within " if within else "") + fam + ("+align" if aligned else "")
                        row[name] = round(sum(per_seed) / len(per_seed), 4)
        out[group] = row
    return out


def robustness_digest(records: Sequence[dict]) -> dict:
    """Per ``dataset/perturbation``: each family's clean RMSEP and its mean over the non-zero
    severities (untrained: the mean over its seeds)."""
    out: dict[str, dict] = {}
    for dataset, kind in dict.fromkeys((r["dataset"], r["perturbation"]) for r in records):
        mine = [r for r in records if (r["dataset"], r["perturbation"]) == (dataset, kind)]
        row = {}
        for fam in FAMILIES:
            sel = [r for r in mine if _family(r["method"])[0] == fam]
            if not sel:
                continue
            clean = [r["metrics"]["rmsep"] for r in sel if r["severity"] == 0]
            hurt = [r["metrics"]["rmsep"] for r in sel if r["severity"] != 0]
            row[fam] = {"clean": round(statistics.mean(clean), 4) if clean else None,
                        "perturbed": round(statistics.mean(hurt), 4) if hurt else None}  # fmt: skip
        out[f"{dataset}/{kind}"] = row
    return out


# ----------------------------------------------------------------------------- tables
def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}g}" if abs(v) >= 10 else f"{v:.{digits}f}"


def _g(v: float | None) -> str:
    return "–" if v is None else f"{v:.3g}"


def _scored(report: dict) -> list[tuple[dict, str, dict]]:
    return [
        (e, readout, s)
        for e in report["entries"]
        for readout, s in e.get("scores", {}).items()
        if s.get("status") != "failed"
    ]


def markdown(report: dict) -> str:
    """Four tables: calibration, transfer k = 0, robustness and collapse, per-target ratios."""
    rows = _scored(report)
    lines = [f"# Representation study — scorecard `{report['scorecard']}`", ""]
    lines += ["## Calibration (median over the regression targets; < 1 is better than the reference)", "",
              "| checkpoint | readout | D | regression ratio | pretraining gain | untrained ratio | SNV+SG1 "
              "features ratio | vs SNV+SG1 features | beats best classical | class bal. acc. "
              "(emb / untrained / SNV+SG1 / classical) |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for e, readout, s in rows:
        cls = "; ".join(
            f"{c['dataset']}: {_f(c['embedding'])} / {_f(c['untrained'])} / {_f(c['classical_features'])} / "
            f"{_f(c['classical'])}"
            for c in s["classes"]
        )
        lines.append(
            f"| {e['name']} | {readout} | {s['embedding_dim']} | {_f(s['regression_ratio'])} | "
            f"{_f(s['pretraining_gain'])} | {_f(s['untrained_ratio'])} | {_f(s['classical_features_ratio'])} | "
            f"{_f(s['vs_classical_features'])} | {s['n_beats_classical']}/{s['n_regression']} | {cls or '–'} |"
        )
    groups = list(dict.fromkeys(g for _, _, s in rows for g in s["transfer"]))
    cols = ["embedding", "embedding+align", "untrained", "untrained+align", "snv_sg1", "snv_sg1+align",
            "pls_raw", "pls_raw+align", "aom_pls", "aom_pls+align", "within embedding", "within pls_raw"]  # fmt: skip
    lines += ["", "## Transfer, k = 0 (median test RMSEP over the cross-instrument pairs)", "",
              "| checkpoint | readout | group | " + " | ".join(cols) + " |", "|---" * (3 + len(cols)) + "|"]  # fmt: skip
    for e, readout, s in rows:
        for g in groups:
            t = s["transfer"].get(g, {})
            lines.append(
                f"| {e['name']} | {readout} | {g} | " + " | ".join(_f(t.get(c)) for c in cols) + " |"
            )
    keys = list(dict.fromkeys(k for _, _, s in rows for k in s["robustness"]))
    fams = ["embedding", "untrained", "pls_raw", "snv_sg1_pls"]
    lines += ["", "## Robustness (RMSEP clean → mean over the perturbed severities) and collapse", "",
              "| checkpoint | readout | " + " | ".join(f"{k}: {f}" for k in keys for f in fams)
              + " | effective rank (untrained) | dim std | pretraining (steps × batch, wall s) |",
              "|---" * (3 + len(keys) * len(fams) + 2) + "|"]  # fmt: skip
    for e, readout, s in rows:
        cells = []
        for k in keys:
            for fam in fams:
                v = s["robustness"].get(k, {}).get(fam)
                cells.append("–" if not v else f"{_f(v['clean'])} → {_f(v['perturbed'])}")
        b = e.get("budget")
        budget = f"{b['steps']} × {b['batch_size']}, {_f(b.get('wall_s'))}" if b else "existing"
        lines.append(
            f"| {e['name']} | {readout} | " + " | ".join(cells) + f" | {_f(s['effective_rank'])} "
            f"({_f(s['untrained_effective_rank'])}) | {_g(s['dim_std'])} | {budget} |"
        )
    lines += ["", "## Per target (RMSEP ratio to the best classical)", ""]
    head = [f"{e['name']} ({r})" for e, r, _ in rows]
    lines += ["| dataset / target | best classical | " + " | ".join(head) + " | untrained (first) | SNV+SG1 features |",
              "|---" * (4 + len(head)) + "|"]  # fmt: skip
    if rows:
        first = rows[0][2]["targets"]
        for t in first:
            cells = []
            for _, _, s in rows:
                mine = [x for x in s["targets"] if (x["dataset"], x["target"]) == (t["dataset"], t["target"])]
                cells.append(_f(mine[0]["ratio"]) if mine else "–")
            u = t["untrained"] / t["classical"] if t["untrained"] else None
            f = t["classical_features"] / t["classical"] if t["classical_features"] else None
            lines.append(f"| {t['dataset']} / {t['target']} | {t['classical_method']} {_f(t['classical'])} | "
                         + " | ".join(cells) + f" | {_f(u)} | {_f(f)} |")  # fmt: skip
    failed = [(e["name"], r, s["error"]) for e in report["entries"] for r, s in e.get("scores", {}).items()
              if s.get("status") == "failed"]  # fmt: skip
    lines += [""] + [f"- FAILED: {n} / {r}: {err}" for n, r, err in failed]
    return "\n".join(lines).rstrip() + "\n"


def write_study(report: dict, stem: Path) -> dict[str, Path]:
    """``STEM.json`` (the whole report) and ``STEM.md`` (:func:`markdown`)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {"json": stem.with_suffix(".json"), "markdown": stem.with_suffix(".md")}
    paths["json"].write_text(json.dumps(report, indent=1))
    paths["markdown"].write_text(markdown(report))
    return paths
