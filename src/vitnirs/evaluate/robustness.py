"""Robustness curves: RMSEP as the test spectra are degraded, nothing refitted.

Protocol (one dataset, one target, one outer :class:`~vitnirs.evaluate.splits.Split`):

1. Every model is fitted **once**, on the clean train rows: each head on the frozen
   embedding (:func:`vitnirs.evaluate.downstream.fit_head`, hyper-parameters by inner CV on
   train) and each classical baseline on the clean train spectra
   (:func:`vitnirs.evaluate.baselines.run_baselines`, its own inner CV on train).
2. For every perturbation kind and severity, only the **test** spectra are perturbed
   (:func:`perturb`: nirs4all augmentation operators with the magnitude pinned to the
   severity), re-embedded with :func:`vitnirs.embedding.embed_spectra` (the test rows'
   metadata ids, one batched call per severity), and predicted by the already fitted models.
3. Each (method, kind, severity) gives a record with the RMSEP and ``rmsep_ratio`` = RMSEP /
   RMSEP on the clean test spectra (severity 0).
4. :func:`robustness_summary` makes a curve one number: the mean of ``rmsep_ratio`` over the
   non-zero severities (1 = unaffected; 2 = the error doubles on average over the ladder).

A feature control that is not a network (MiniRocket) takes ``features``, a fitted
``(m, L) → (m, F)`` transform, in place of the model: the perturbed test rows go through it.

How the baselines are fitted once: ``run_baselines`` fits on ``split.train`` and only
predicts ``split.test``, and every preprocessing it applies to the test rows is
per-spectrum. So the clean train rows are stacked with every perturbed copy of the test
rows (``[X_train; X_test; X_test(kind₁, s₁); …]``) and passed as *one* split: one fit (one
``nirs4all.run`` per method with ``engine="nirs4all"``), and predictions that are exactly
those the fitted model gives each block on its own.

The same seed draws the same standardised perturbation at every severity (the operators'
ranges scale with the severity), so a curve differs between severities by the magnitude
only, not by a new random draw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitnirs.evaluate.baselines import run_baselines
from vitnirs.evaluate.downstream import fit_head
from vitnirs.evaluate.metrics import regression_metrics
from vitnirs.evaluate.splits import Split, regression_targets

__all__ = [
    "KINDS",
    "SEVERITIES",
    "SEVERITY_UNITS",
    "perturb",
    "plot_robustness",
    "robustness_curves",
    "robustness_summary",
]

KINDS = ("drift", "scatter", "noise", "shift")
SEVERITY_UNITS = {
    "drift": "absorbance",
    "scatter": "relative gain",
    "noise": "absorbance (std)",
    "shift": "nm",
}
# NIR absorbance spectra span ~0.1–1 AU and differ between samples by ~0.05–0.5 AU; a good
# benchtop instrument has ~1e-4–1e-3 AU of noise and ≤ 0.5 nm of wavelength error (nirs4all's
# "realistic" synthesis uses noise 0.005, baseline 0.02, scatter 0.05, shift 0.5 nm). Each
# ladder runs from that instrument-grade level to a gross fault, on a ~×3 scale.
SEVERITIES: dict[str, tuple[float, ...]] = {
    "drift": (0.0, 0.01, 0.03, 0.1, 0.3),
    "scatter": (0.0, 0.01, 0.03, 0.1, 0.2),
    "noise": (0.0, 0.001, 0.003, 0.01, 0.03),
    "shift": (0.0, 0.5, 1.0, 2.0, 4.0),
}


def _operator(kind: str, s: float, X: np.ndarray, wavelengths_nm: np.ndarray, seed: int) -> Any:
    """The nirs4all augmentation operator of ``kind`` whose random magnitude is pinned by ``s``."""
    from nirs4all.operators.augmentation import (
        HeteroscedasticNoiseAugmenter,
        LinearBaselineDrift,
        ScatterSimulationMSC,
        WavelengthShift,
    )

    if kind == "drift":
        half_span = float(np.max(np.abs(wavelengths_nm - wavelengths_nm.mean())))
        slope = s / half_span if half_span > 0 else 0.0
        return LinearBaselineDrift(offset_range=(-s, s), slope_range=(-slope, slope), random_state=seed)
    if kind == "scatter":
        level = float(np.mean(np.abs(X)))
        return ScatterSimulationMSC(
            reference_mode="self", a_range=(-s * level, s * level), b_range=(1 - s, 1 + s), random_state=seed
        )
    if kind == "noise":
        return HeteroscedasticNoiseAugmenter(noise_base=s, noise_signal_dep=0.0, random_state=seed)
    return WavelengthShift(shift_range=(s, s), random_state=seed)


def perturb(
    X: np.ndarray, wavelengths_nm: np.ndarray, kind: str, severity: float, *, seed: int
) -> np.ndarray:
    """Degrade spectra with one nirs4all augmentation operator at a set severity.

    Parameters
    ----------
    X : np.ndarray
        ``(n, L)`` absorbance spectra.
    wavelengths_nm : np.ndarray
        ``(L,)`` their grid in nm.
    kind : {"drift", "scatter", "noise", "shift"}
        What ``severity`` ``s`` means:

        * ``drift`` — additive linear baseline (``LinearBaselineDrift``):
          ``x + a + b·(λ − λ̄)``, per spectrum ``a ~ U(−s, s)`` AU and ``b`` such that the tilt
          reaches ``U(−s, s)`` AU at the grid edge farthest from the mean wavelength λ̄; so the
          drift is at most ``2s`` AU anywhere. ``s`` in absorbance units.
        * ``scatter`` — multiplicative + additive scatter (``ScatterSimulationMSC``, MSC
          model): ``a + b·x``, per spectrum ``b ~ U(1 − s, 1 + s)`` and
          ``a ~ U(−s·m, s·m)`` with ``m`` the mean ``|X|`` of the block; ``s`` is the relative
          gain spread (``0 ≤ s < 1``).
        * ``noise`` — white Gaussian noise of standard deviation ``s`` absorbance units
          (``HeteroscedasticNoiseAugmenter`` with no signal-dependent term).
        * ``shift`` — wavelength shift by exactly ``s`` nm for every spectrum
          (``WavelengthShift`` with range ``(s, s)``): the spectrum is resampled at
          ``λ − s`` (linear interpolation), so a band at λ₀ moves to λ₀ + s; beyond the grid
          the edge value is repeated. ``s`` may be negative.
    severity : float
        ``s`` above; ``0`` returns an unchanged copy of ``X``.
    seed : int
        Seeds the draws: the same seed gives the same perturbation, and the same standardised
        draws at every severity.

    Returns
    -------
    np.ndarray
        ``(n, L)`` float64 perturbed spectra.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(wavelengths_nm, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (n, L); got shape {X.shape}")
    if w.shape != (X.shape[1],):
        raise ValueError(f"wavelengths_nm must be ({X.shape[1]},) to match X {X.shape}; got {w.shape}")
    if kind not in KINDS:
        raise ValueError(f"unknown perturbation {kind!r}; choose from {KINDS}")
    s = float(severity)
    if not np.isfinite(s) or (kind != "shift" and s < 0):
        raise ValueError(f"{kind} severity must be finite and >= 0; got {severity!r}")
    if kind == "scatter" and s >= 1:
        raise ValueError(f"scatter severity is a relative gain spread and must be < 1; got {s}")
    if s == 0:
        return X.copy()
    op = _operator(kind, s, X, w, seed)
    kw = {} if kind == "noise" else {"wavelengths": w}  # the noise operator takes no wavelengths
    return np.asarray(op.fit(X, **kw).transform(X, **kw), dtype=np.float64)


def _ladder(severities: Mapping[str, Sequence[float]]) -> list[tuple[str, float]]:
    """The (kind, severity) pairs to evaluate, validated; severity 0 included once per kind."""
    pairs = []
    for kind, values in severities.items():
        if kind not in KINDS:
            raise ValueError(f"unknown perturbation {kind!r}; choose from {KINDS}")
        pairs += [(kind, float(s)) for s in dict.fromkeys(values)]
    return pairs


def _clean_embedding(
    store: Any, model: Any, info: Any, dataset: str, embeddings: np.ndarray | Mapping[str, np.ndarray] | None
) -> np.ndarray:
    if isinstance(embeddings, Mapping):
        embeddings = embeddings.get(dataset)
    if embeddings is None:
        from vitnirs.embedding import embed_store

        embeddings = embed_store(model, store, dataset, info=info)
    return np.asarray(embeddings, dtype=np.float64)


def robustness_curves(
    store: Any,
    model: Any,
    dataset: str,
    target: str,
    split: Split,
    *,
    heads: Sequence[str] = ("ridge",),
    baselines: Sequence[str] = ("pls_raw", "snv_sg1_pls"),
    severities: Mapping[str, Sequence[float]] = SEVERITIES,
    seed: int = 0,
    embeddings: np.ndarray | Mapping[str, np.ndarray] | None = None,
    engine: str = "nirs4all",
    aom_bank: str | None = None,
    info: Any = None,
    features: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[dict]:
    """RMSEP vs severity of each perturbation for the embedding heads and the baselines.

    Parameters
    ----------
    store : PreparedStore
        Holds ``dataset``.
    model : SpectralMAE or None
        Frozen encoder; ``None`` runs the baselines only (perturbed spectra cannot be embedded).
    info : CheckpointInfo or None
        The encoder's checkpoint info (point cap, metadata vocabulary), as ``embed_spectra`` takes it.
    dataset, target : str
        Dataset name and its ``y_*`` regression column.
    split : Split
        Outer split (rows with a finite target); models are fitted on ``split.train``
        (inner CV groups: ``split.groups``) and scored on ``split.test``.
    heads : heads on the embedding (:func:`~vitnirs.evaluate.downstream.fit_head`).
    baselines : classical methods (:func:`~vitnirs.evaluate.baselines.run_baselines`).
    severities : ``{kind: (s₀, s₁, …)}``, see :func:`perturb` for what each means.
    seed : seeds the inner CVs and the perturbations.
    embeddings : the clean ``(n, D)`` embedding of ``dataset`` or ``{dataset: (n, D)}``;
        computed with ``embed_store`` when absent.
    engine : ``run_baselines`` engine (``"nirs4all"`` or the equivalent, faster ``"sklearn"``).
    aom_bank : AOM operator bank, when an ``aom_*`` baseline is asked for.
    features : instead of ``model``, a fitted transform ``(m, L)`` spectra → ``(m, F)`` features
        (a feature control, e.g. MiniRocket); the clean features are ``embeddings`` when given,
        else ``features`` of every row.

    Returns
    -------
    list of dict
        One per (kind, severity, method): ``{"dataset", "target", "method"
        ("embedding+<head>" or the baseline name), "protocol": "robustness", "split",
        "perturbation", "severity", "severity_unit", "n_train", "n_test", "metrics" (with
        ``rmsep_ratio`` = RMSEP / clean RMSEP), "params", "std": None}``.
    """
    X = np.asarray(store.values(dataset), dtype=np.float64)
    w = np.asarray(store.wavelengths_nm(dataset), dtype=np.float64)
    y = np.asarray(regression_targets(store.targets(dataset))[target], dtype=np.float64)
    tr, te = np.asarray(split.train, dtype=np.int64), np.asarray(split.test, dtype=np.int64)
    if not (np.isfinite(y[tr]).all() and np.isfinite(y[te]).all()):
        raise ValueError(f"{dataset}/{target}: the split holds rows without a target value")
    ladder = _ladder(severities)
    perturbed = [(k, s) for k, s in ladder if s != 0]
    # block 0: the clean test spectra (severity 0 of every kind); block i: perturbed[i - 1]
    blocks = [X[te]] + [perturb(X[te], w, k, s, seed=seed) for k, s in perturbed]
    preds: dict[str, np.ndarray] = {}  # method -> (n_blocks, n_test)
    params: dict[str, dict] = {}
    if features is not None and heads:
        clean = embeddings.get(dataset) if isinstance(embeddings, Mapping) else embeddings
        Z = np.asarray(features(X) if clean is None else clean, dtype=np.float64)
        Z_blocks = [Z[te]] + [np.asarray(features(B), np.float64) for B in blocks[1:]]
    elif model is not None and heads:
        from vitnirs.embedding import embed_spectra, meta_ids

        Z = _clean_embedding(store, model, info, dataset, embeddings)
        vocab = info.meta_vocab if info is not None else {}
        meta = meta_ids(store, dataset, vocab)[te] if vocab else None
        Z_blocks = [Z[te]] + [
            np.asarray(embed_spectra(model, B, w, meta=meta, info=info), np.float64) for B in blocks[1:]
        ]
    if (features is not None or model is not None) and heads:
        for head in heads:
            fitted, params[f"embedding+{head}"] = fit_head(head, Z[tr], y[tr], groups=split.groups, seed=seed)
            preds[f"embedding+{head}"] = np.stack(
                [np.asarray(fitted.predict(Zb)).reshape(-1) for Zb in Z_blocks]
            )
    if baselines:
        n_tr, n_stack = len(tr), len(te) * len(blocks)
        stacked = Split("robustness", np.arange(n_tr), np.arange(n_tr, n_tr + n_stack), groups=split.groups)
        X_stack = np.concatenate([X[tr], *blocks])
        y_stack = np.concatenate([y[tr], np.tile(y[te], len(blocks))])
        for rec in run_baselines(
            X_stack, y_stack, stacked, methods=baselines, seed=seed, engine=engine, aom_bank=aom_bank,
            return_predictions=True,
        ):  # fmt: skip
            preds[rec["method"]] = np.asarray(rec["y_pred"], dtype=np.float64).reshape(len(blocks), len(te))
            params[rec["method"]] = rec["params"]
    index = {pair: i + 1 for i, pair in enumerate(perturbed)}
    clean = {method: regression_metrics(y[te], p[0])["rmsep"] for method, p in preds.items()}
    records = []
    for kind, s in ladder:
        for method, p in preds.items():
            metrics = regression_metrics(y[te], p[index.get((kind, s), 0)])
            metrics["rmsep_ratio"] = metrics["rmsep"] / clean[method] if clean[method] > 0 else float("nan")
            records.append(
                {
                    "dataset": dataset,
                    "target": target,
                    "method": method,
                    "protocol": "robustness",
                    "split": split.name,
                    "perturbation": kind,
                    "severity": s,
                    "severity_unit": SEVERITY_UNITS[kind],
                    "n_train": len(tr),
                    "n_test": len(te),
                    "metrics": metrics,
                    "params": _plain(params[method]),
                    "std": None,
                }
            )
    return records


def robustness_summary(records: Sequence[dict]) -> list[dict]:
    """One number per curve: the mean over the non-zero severities of RMSEP(perturbed) ÷ RMSEP(clean).

    Parameters
    ----------
    records : records of :func:`robustness_curves` (several datasets, kinds, methods; a control's
        records may carry a ``seed``, e.g. each untrained network).

    Returns
    -------
    list of dict
        One per (dataset, target, perturbation, method, seed), in first-seen order:
        ``{"dataset", "target", "perturbation", "method", "seed", "severities" (the non-zero
        ones), "mean_rmsep_ratio"}``; 1.0 = the perturbation does not change the error,
        2.0 = it doubles it on average over the ladder. ``mean_rmsep_ratio`` is None when no
        non-zero severity has a finite ratio (e.g. a clean RMSEP of 0).
    """
    curves: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["dataset"], r["target"], r["perturbation"], r["method"], r.get("seed"))
        curves.setdefault(key, []).append(r)
    out = []
    for (dataset, target, kind, method, seed), rs in curves.items():
        hurt = sorted(
            (float(r["severity"]), float(r["metrics"]["rmsep_ratio"])) for r in rs if r["severity"] != 0
        )
        finite = [v for _, v in hurt if np.isfinite(v)]
        out.append(
            {
                "dataset": dataset,
                "target": target,
                "perturbation": kind,
                "method": method,
                "seed": seed,
                "severities": [s for s, _ in hurt],
                "mean_rmsep_ratio": round(float(np.mean(finite)), 4) if finite else None,
            }
        )
    return out


def _plain(params: Mapping) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}


def plot_robustness(records: Sequence[dict], path: str | Path) -> Path:
    """Draw RMSEP vs severity into one PNG, one line per method.

    A panel per perturbation kind (columns) and per dataset/target (rows); RMSEP on a log
    axis, severity on a symlog axis when the ladder spans more than a decade. Drawn on the
    Agg canvas (no display, no pyplot state).

    Parameters
    ----------
    records : records of :func:`robustness_curves` (several datasets/targets allowed).
    path : the PNG to write (its folder is created).

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not records:
        raise ValueError("no robustness records to plot")
    rows = list(dict.fromkeys((r["dataset"], r["target"]) for r in records))
    kinds = [k for k in KINDS if any(r["perturbation"] == k for r in records)]
    fig = Figure(figsize=(3.6 * len(kinds), 3.0 * len(rows)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(kinds), squeeze=False)
    for i, (dataset, target) in enumerate(rows):
        for j, kind in enumerate(kinds):
            ax = axes[i, j]
            mine = [
                r
                for r in records
                if (r["dataset"], r["target"], r["perturbation"]) == (dataset, target, kind)
            ]
            for method in dict.fromkeys(r["method"] for r in mine):
                pts = sorted((r["severity"], r["metrics"]["rmsep"]) for r in mine if r["method"] == method)
                ax.plot(*zip(*pts, strict=True), marker="o", lw=2 if method.startswith("embedding") else 1.2,
                        label=method)  # fmt: skip
            positive = [abs(r["severity"]) for r in mine if r["severity"] != 0]
            if positive and max(positive) > 10 * min(positive):  # a ×3 ladder: log-like axis
                ax.set_xscale("symlog", linthresh=min(positive))
            ax.set_yscale("log")  # one method breaking down must not flatten the others
            ax.set_xlabel(f"{kind} ({mine[0]['severity_unit']})")
            ax.set_ylabel("RMSEP")
            ax.set_title(f"{dataset} · {target}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
