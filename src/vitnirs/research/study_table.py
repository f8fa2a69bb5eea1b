"""The representation study's figures and tables (:mod:`vitnirs.research.study`).

Definitions (also in the README, "Representation study"):

- **regression ratio**: per regression target, the best embedding head's test RMSEP ÷ the best
  classical pipeline's; the figure is the median over the regression targets (< 1: the
  embedding wins). Class targets are reported apart, as balanced accuracy.
- **pretraining gain**: median over the regression targets of RMSEP(pretrained) ÷ RMSEP(the
  same architecture untrained, the mean of seeds 0 and 1, each seed's best head); < 1: the
  pretraining paid.
- **controls**: the untrained network's own ratio to the best classical, the classical
  features (SNV + SG1 of the spectra into the same heads) and the MiniRocket features (random
  convolutional kernels fitted without targets on the dataset's rows, same heads) likewise;
  ``vs SNV+SG1`` (``vs MiniRocket``) is the embedding's RMSEP ÷ those features' (median).
- **transfer k = 0**: median over the ordered cross-instrument pairs of test RMSEP, each
  method family at its best head; ``+align`` is the same model on B's rows shifted by
  mean(A cal) − mean(B cal), B's calibration spectra used without labels.
- **robustness**: RMSEP averaged over the non-zero severities of a perturbation; the axis's one
  number per dataset, kind and method is the mean over the non-zero severities of
  RMSEP(perturbed) ÷ RMSEP(clean) (1 = unaffected), and per kind its median over the datasets.
- **few-shot**: from ``fewshot_summary`` (heads fitted on n = 10 / 25 / 50 labelled rows): the
  median ratio per n of the embedding's RMSEP to the best classical pipeline's and to the
  untrained network's at the same n; absent when the evaluation ran no few-shot section.
- **four axes** (``axes``): within (the calibration figures), few-shot, robustness, transfer.
- **effective rank** of a dataset's embedding: exp of the Shannon entropy of the normalised
  singular values of the centred (n, D) matrix; **dim std**: the median per-dimension std;
  both the median over the scorecard's datasets.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from vitnirs.evaluate.metrics import protocol_family, summarise
from vitnirs.evaluate.robustness import KINDS, robustness_summary

__all__ = ["digest", "fewshot_digest", "markdown", "robustness_axis", "write_study"]

FAMILIES = ("embedding", "untrained", "snv_sg1", "minirocket", "pls_raw", "snv_sg1_pls", "aom_pls")
# the robustness axis's methods (untrained: one column per seed, and their mean)
ROBUST_FAMILIES = ("embedding", "untrained", "snv_sg1_pls", "pls_raw", "minirocket")
FEWSHOT_SIZES = (10, 25, 50)


def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 4) if vals else None


def _get(d: dict | None, key: str) -> float | None:
    return None if not d else d.get(key)


def _best_control(metrics: dict, prefix: str, row: dict, key: str) -> float | None:
    """The best head of a feature control (``<prefix>+<head>`` in ``controls``) on a summary row's
    dataset, target and protocol, averaged over repeated splits; None when it was not run."""
    mine = [r for r in metrics.get("controls", []) if str(r["method"]).startswith(prefix + "+")
            and r.get("metrics") is not None and (r["dataset"], r["target"]) == (row["dataset"], row["target"])
            and protocol_family(str(r["protocol"])) == protocol_family(str(row["protocol"]))]  # fmt: skip
    scores = [s["metrics"][key] for s in summarise(mine) if s["metrics"].get(key) is not None]
    return (max if key == "balanced_accuracy" else min)(scores) if scores else None


def digest(metrics: dict) -> dict:
    """The study's figures of one evaluation (``metrics.json`` of the suite), the four axes in ``axes``."""
    targets, classes = [], []
    for r in metrics["summary"]:
        if r["task"] == "classification":
            key = "balanced_accuracy"
            classes.append({"dataset": r["dataset"], "target": r["target"], "classical": _get(r["best_classical"], key),
                            "embedding": _get(r["best_embedding"], key),
                            "untrained": _get(r.get("best_untrained"), key),
                            "classical_features": _get(r.get("best_snv_sg1_features"), key),
                            "minirocket": _best_control(metrics, "minirocket", r, key)})  # fmt: skip
            continue
        c, e = _get(r["best_classical"], "rmsep"), _get(r["best_embedding"], "rmsep")
        if c is None or e is None:
            continue
        u, f = _get(r.get("best_untrained"), "rmsep"), _get(r.get("best_snv_sg1_features"), "rmsep")
        targets.append({"dataset": r["dataset"], "target": r["target"], "classical": c,
                        "classical_method": r["best_classical"]["method"], "embedding": e,
                        "embedding_method": r["best_embedding"]["method"], "untrained": u,
                        "untrained_seeds": (r.get("best_untrained") or {}).get("seeds"), "classical_features": f,
                        "minirocket": _best_control(metrics, "minirocket", r, "rmsep"),
                        "ratio": round(e / c, 4), "gain": round(e / u, 4) if u else None})  # fmt: skip
    ratio = lambda a, b: _median(t[a] / t[b] if t[a] and t[b] else None for t in targets)  # noqa: E731
    collapse = metrics.get("collapse", {})
    untrained_collapse = [v for k, v in collapse.items() if k.startswith("untrained")]
    out = {
        "embedding_dim": metrics.get("embedding_dim"),
        "n_regression": len(targets),
        "regression_ratio": ratio("embedding", "classical"),
        "pretraining_gain": ratio("embedding", "untrained"),
        "untrained_ratio": ratio("untrained", "classical"),
        "classical_features_ratio": ratio("classical_features", "classical"),
        "vs_classical_features": ratio("embedding", "classical_features"),
        "minirocket_ratio": ratio("minirocket", "classical"),
        "vs_minirocket": ratio("embedding", "minirocket"),
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
    within = ("n_regression", "regression_ratio", "pretraining_gain", "untrained_ratio", "classical_features_ratio",
              "vs_classical_features", "minirocket_ratio", "vs_minirocket", "n_beats_classical")  # fmt: skip
    out["axes"] = {
        "within": {k: out[k] for k in within},
        "fewshot": fewshot_digest(metrics),
        "robustness": robustness_axis(metrics),
        "transfer": out["transfer"],
    }
    return out


def fewshot_digest(metrics: dict) -> dict:
    """The few-shot axis: ``{"<n>": {"vs_classical", "vs_untrained", "vs_<control>", "targets"}}``.

    Read from ``metrics["fewshot_summary"]`` (:func:`vitnirs.evaluate.fewshot.fewshot_summary`: per
    n, the median over the targets of the embedding's best median RMSEP ÷ the best classical
    method's, ``embedding_vs_best_classical``, and ÷ each control's, ``embedding_vs_<source>``),
    defensively: ``{}`` when the section is absent, empty or not a list of rows with ``n``.
    """
    raw = metrics.get("fewshot_summary")
    rows = (
        [r for r in raw if isinstance(r, Mapping) and r.get("n") is not None] if isinstance(raw, list) else []
    )
    out: dict[str, dict] = {}
    for r in rows:
        figures = {}
        for key, value in r.items():
            if key.startswith("embedding_vs_") and _number(value):
                name = key.removeprefix("embedding_vs_").replace("best_classical", "classical")
                figures[f"vs_{name}"] = round(float(value), 4)
        if _number(r.get("targets_best_classical")):
            figures["targets"] = r["targets_best_classical"]
        out[str(r["n"])] = figures
    return out


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def robustness_axis(metrics: dict) -> dict:
    """The robustness axis: one number per dataset, kind and method, and per kind over the datasets.

    Returns ``{"by_dataset": {"<dataset>/<kind>": {method: mean ratio}}, "by_kind": {kind: {method:
    median over the datasets}}}``; the mean ratio is :func:`~vitnirs.evaluate.robustness.robustness_summary`'s
    (``metrics["robustness_summary"]``, else computed from ``metrics["robustness"]``). Methods:
    ``embedding`` (its first head), ``untrained_seed<s>`` and ``untrained`` (their mean),
    ``snv_sg1_pls``, ``pls_raw``, ``minirocket`` where they ran.
    """
    rows = metrics.get("robustness_summary") or robustness_summary(metrics.get("robustness", []))
    by_dataset: dict[str, dict] = {}
    for r in rows:
        fam = _family(r["method"])[0]
        if fam not in ROBUST_FAMILIES or r.get("mean_rmsep_ratio") is None:
            continue
        name = f"untrained_seed{r['seed']}" if fam == "untrained" else fam
        by_dataset.setdefault(f"{r['dataset']}/{r['perturbation']}", {}).setdefault(
            name, r["mean_rmsep_ratio"]
        )
    for row in by_dataset.values():
        seeds = [v for k, v in row.items() if k.startswith("untrained_seed")]
        if seeds:
            row["untrained"] = round(statistics.mean(seeds), 4)
    by_kind: dict[str, dict] = {}
    for kind in sorted({k.rsplit("/", 1)[1] for k in by_dataset}, key=_kind_order):
        mine = [row for k, row in by_dataset.items() if k.rsplit("/", 1)[1] == kind]
        methods = dict.fromkeys(m for row in mine for m in row)
        by_kind[kind] = {m: _median(row.get(m) for row in mine) for m in methods}
    return {"by_dataset": by_dataset, "by_kind": by_kind}


def _kind_order(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


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


def _axes(s: dict) -> dict:
    """A digest's four axes (a digest written before ``axes`` existed: rebuilt from its figures)."""
    return s.get("axes") or {"within": s, "fewshot": {}, "robustness": {}, "transfer": s.get("transfer", {})}


def _axes_table(rows: list[tuple[dict, str, dict]]) -> list[str]:
    """One row per scored checkpoint: within, few-shot, robustness (median over datasets), transfer."""
    kinds = list(dict.fromkeys(k for _, _, s in rows for k in _axes(s)["robustness"].get("by_kind", {})))
    groups = list(dict.fromkeys(g for _, _, s in rows for g in _axes(s)["transfer"]))
    sizes = " / ".join(map(str, FEWSHOT_SIZES))
    head = [
        "checkpoint",
        "readout",
        "within: ratio to best classical",
        "pretraining gain",
        "vs SNV+SG1 features",
        "vs MiniRocket",
        f"few-shot n = {sizes}: vs best classical",
        f"few-shot n = {sizes}: vs untrained",
    ]
    head += [f"robustness {k}: embedding (untrained; SNV+SG1+PLS; MiniRocket)" for k in kinds]
    head += [f"transfer {g} k=0: embedding (untrained; SNV+SG1; MiniRocket; PLS raw)" for g in groups]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for e, readout, s in rows:
        ax = _axes(s)
        w, fs = ax["within"], ax["fewshot"]
        few = [
            " / ".join(_f((fs.get(str(n)) or {}).get(k)) for n in FEWSHOT_SIZES)
            for k in ("vs_classical", "vs_untrained")
        ]
        cells = [e["name"], readout, _f(w.get("regression_ratio")), _f(w.get("pretraining_gain")),
                 _f(w.get("vs_classical_features")), _f(w.get("vs_minirocket")), *few]  # fmt: skip
        for k in kinds:
            r = ax["robustness"]["by_kind"].get(k, {})
            cells.append(f"{_f(r.get('embedding'))} ({_f(r.get('untrained'))}; {_f(r.get('snv_sg1_pls'))}; "
                         f"{_f(r.get('minirocket'))})")  # fmt: skip
        for g in groups:
            t = ax["transfer"].get(g, {})
            cells.append(f"{_f(t.get('embedding'))} ({_f(t.get('untrained'))}; {_f(t.get('snv_sg1'))}; "
                         f"{_f(t.get('minirocket'))}; {_f(t.get('pls_raw'))})")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _robustness_table(rows: list[tuple[dict, str, dict]]) -> list[str]:
    """Per dataset / kind: the controls that do not depend on the checkpoint (first score that has
    them), then each checkpoint's embedding and its untrained network (mean of the seeds)."""
    keys = list(dict.fromkeys(k for _, _, s in rows for k in _axes(s)["robustness"].get("by_dataset", {})))
    if not keys:
        return []
    fixed = ["snv_sg1_pls", "pls_raw", "minirocket"]
    head = ["dataset / perturbation", "SNV+SG1+PLS", "PLS raw", "MiniRocket"]
    head += [f"{e['name']} ({r}): embedding (untrained)" for e, r, _ in rows]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for k in keys:
        mine = [_axes(s)["robustness"]["by_dataset"].get(k, {}) for _, _, s in rows]
        cells = [k] + [_f(next((m[f] for m in mine if m.get(f) is not None), None)) for f in fixed]
        cells += [f"{_f(m.get('embedding'))} ({_f(m.get('untrained'))})" for m in mine]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict) -> str:
    """The four axes, then calibration, transfer k = 0, robustness (one number per kind; curves
    and collapse), per-target ratios."""
    rows = _scored(report)
    lines = [f"# Representation study — scorecard `{report['scorecard']}`", ""]
    lines += [
        "## Four axes (< 1 is better than the reference; robustness: mean RMSEP perturbed ÷ clean over "
        "the severities, 1 = unaffected, median over the datasets; transfer: median test RMSEP)",
        "",
    ]
    lines += _axes_table(rows)
    lines += ["", "## Calibration (median over the regression targets; < 1 is better than the reference)", "",
              "| checkpoint | readout | D | regression ratio | pretraining gain | untrained ratio | SNV+SG1 "
              "features ratio | vs SNV+SG1 features | MiniRocket ratio | vs MiniRocket | beats best classical | "
              "class bal. acc. (emb / untrained / SNV+SG1 / MiniRocket / classical) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for e, readout, s in rows:
        cls = "; ".join(
            f"{c['dataset']}: {_f(c['embedding'])} / {_f(c['untrained'])} / {_f(c['classical_features'])} / "
            f"{_f(c.get('minirocket'))} / {_f(c['classical'])}"
            for c in s["classes"]
        )
        lines.append(
            f"| {e['name']} | {readout} | {s['embedding_dim']} | {_f(s['regression_ratio'])} | "
            f"{_f(s['pretraining_gain'])} | {_f(s['untrained_ratio'])} | {_f(s['classical_features_ratio'])} | "
            f"{_f(s['vs_classical_features'])} | {_f(s.get('minirocket_ratio'))} | {_f(s.get('vs_minirocket'))} | "
            f"{s['n_beats_classical']}/{s['n_regression']} | {cls or '–'} |"
        )
    groups = list(dict.fromkeys(g for _, _, s in rows for g in s["transfer"]))
    cols = ["embedding", "embedding+align", "untrained", "untrained+align", "snv_sg1", "snv_sg1+align",
            "minirocket", "minirocket+align", "pls_raw", "pls_raw+align", "aom_pls", "aom_pls+align", "within embedding", "within pls_raw"]  # fmt: skip
    lines += ["", "## Transfer, k = 0 (median test RMSEP over the cross-instrument pairs)", "",
              "| checkpoint | readout | group | " + " | ".join(cols) + " |", "|---" * (3 + len(cols)) + "|"]  # fmt: skip
    for e, readout, s in rows:
        for g in groups:
            t = s["transfer"].get(g, {})
            lines.append(
                f"| {e['name']} | {readout} | {g} | " + " | ".join(_f(t.get(c)) for c in cols) + " |"
            )
    rob = _robustness_table(rows)
    if rob:
        lines += ["", "## Robustness, one number per kind (mean RMSEP perturbed ÷ clean over the non-zero "
                  "severities; 1 = unaffected)", ""] + rob  # fmt: skip
    keys = list(dict.fromkeys(k for _, _, s in rows for k in s["robustness"]))
    fams = ["embedding", "untrained", "pls_raw", "snv_sg1_pls", "minirocket"]
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
    lines += ["| dataset / target | best classical | " + " | ".join(head)
              + " | untrained (first) | SNV+SG1 features | MiniRocket features |", "|---" * (5 + len(head)) + "|"]  # fmt: skip
    if rows:
        first = rows[0][2]["targets"]
        for t in first:
            cells = []
            for _, _, s in rows:
                mine = [x for x in s["targets"] if (x["dataset"], x["target"]) == (t["dataset"], t["target"])]
                cells.append(_f(mine[0]["ratio"]) if mine else "–")
            u = t["untrained"] / t["classical"] if t["untrained"] else None
            f = t["classical_features"] / t["classical"] if t["classical_features"] else None
            m = t["minirocket"] / t["classical"] if t.get("minirocket") else None
            lines.append(f"| {t['dataset']} / {t['target']} | {t['classical_method']} {_f(t['classical'])} | "
                         + " | ".join(cells) + f" | {_f(u)} | {_f(f)} | {_f(m)} |")  # fmt: skip
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
