"""The synthetic part of the bank: nirs4all spectra on many real instrument grids.

``generate_synthetic_tables`` splits ``n_samples`` into builds ("recipes"). Each build draws,
from one ``numpy`` Generator seeded by ``seed``: a real instrument wavelength grid
(``list_instrument_wavelength_grids``), an instrument archetype whose range covers it, a
measurement mode, an application domain (its components), the per-sample nuisance spreads
(baseline, scatter, tilt, shift, stretch, path length: the ``*_std`` knobs), the detector
noise level, the resolution (``instrumental_fwhm``), batch effects, and an absorbance level
(effective path length and offset). ``paired_fraction`` of the samples come as *paired
views*: the same concentrations seen by two generators with different grids, instruments,
modes and nuisances (``NIRS4ALL_API.md`` §3). The concentrations (nirs4all's y) are never
kept: pretraining uses no targets.

Builds run on ``SyntheticNIRSGenerator``, the engine under ``SyntheticDatasetBuilder``,
because the builder hides the generator whose detector noise must be rescaled (see
``_generator``). nirs4all returns (apparent) absorbance in every measurement mode: its
reflectance mode applies Kubelka-Munk, then log10(1/R) (values about -0.1..1.5, never a
0-1 or 0-100 reflectance). So every table is declared ``absorbance``; the simulated mode is
in the ``measurement_mode`` column and in ``extra["recipe"]``.

``adversarial_auc`` measures how easily a linear classifier tells synthetic spectra from
real ones on a common grid (nirs4all's ``compute_adversarial_validation_auc``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from vitnirs.data.signal import region_of, to_absorbance
from vitnirs.data.table import SpectralTable

_MODES = ("reflectance", "transmittance", "transflectance")
_BUILD_SIZE = 150  # spectra per build: more builds = more diversity, each build costs ~10 ms overhead
_MIN_INSTRUMENT_COVERAGE = 0.95  # an archetype must cover this fraction of a grid's span


# Per-build ranges: ("log"|"lin"|"int", low, high). Each build draws its own value, so noise,
# baseline, scatter... levels differ between builds; the builder then varies them per sample.
_RANGES: dict[str, tuple[str, float, float]] = {
    "detector_noise": ("log", 0.02, 1.0),  # x the instrument's detector noise (see _generator)
    "baseline_amplitude": ("log", 5e-3, 0.1),
    "scatter_alpha_std": ("log", 0.01, 0.15),  # multiplicative scatter
    "scatter_beta_std": ("log", 2e-3, 0.05),  # additive scatter
    "tilt_std": ("log", 2e-3, 0.03),
    "global_slope_mean": ("lin", -0.02, 0.1),
    "global_slope_std": ("log", 5e-3, 0.05),
    "shift_std": ("log", 0.1, 2.0),  # nm
    "stretch_std": ("log", 2e-4, 3e-3),
    "path_length_std": ("log", 0.01, 0.12),
    "instrumental_fwhm": ("log", 2.0, 20.0),  # nm: the resolution of the build
    "artifact_prob": ("lin", 0.0, 0.03),  # spikes, dead bands, saturation
    "n_batches": ("int", 1, 4),
    "batch_offset_std": ("lin", 0.0, 0.05),
    "batch_gain_std": ("lin", 0.0, 0.05),
    "level_gain": ("log", 0.5, 3.0),  # absorbance level of the build: effective path length
    "level_offset": ("lin", -0.1, 0.3),  # and offset (reference, stray light)
}


def _draw(rng: np.random.Generator, spec: tuple[str, float, float]) -> float | int:
    kind, lo, hi = spec
    if kind == "int":
        return int(rng.integers(lo, hi + 1))
    if kind == "log":
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(lo, hi))


def _grid_instruments() -> dict[str, list[str]]:
    """Real wavelength grid name → archetypes whose wavelength range covers it."""
    from nirs4all.synthesis import (
        get_instrument_archetype,
        get_instrument_wavelengths,
        list_instrument_archetypes,
        list_instrument_wavelength_grids,
    )

    ranges = {a: get_instrument_archetype(a).wavelength_range for a in list_instrument_archetypes()}
    out: dict[str, list[str]] = {}
    for grid in list_instrument_wavelength_grids():
        wl = np.asarray(get_instrument_wavelengths(grid), dtype=float)
        lo, hi = float(wl.min()), float(wl.max())
        fits = [
            a
            for a, (a_lo, a_hi) in ranges.items()
            if (min(hi, a_hi) - max(lo, a_lo)) >= _MIN_INSTRUMENT_COVERAGE * (hi - lo)
        ]
        if fits:
            out[grid] = sorted(fits)
    return out


def _draw_recipe(rng: np.random.Generator, grid: str, instruments: list[str], complexity: str) -> dict:
    """One build's settings, all drawn at random (JSON-serialisable)."""
    from nirs4all.synthesis import get_domain_components, get_instrument_typical_modes, list_domains

    instrument = str(rng.choice(instruments))
    modes = [m for m in get_instrument_typical_modes(instrument) if m in _MODES] or list(_MODES)
    mode = str(rng.choice(modes))
    domain = str(rng.choice(list_domains()))
    return {
        "grid": grid,
        "instrument": instrument,
        "measurement_mode": mode,
        "domain": domain,
        "components": list(get_domain_components(domain)),
        "complexity": complexity,
        "concentration_method": str(rng.choice(["dirichlet", "uniform", "lognormal", "correlated"])),
        **{key: _draw(rng, spec) for key, spec in _RANGES.items()},
        "seed": int(rng.integers(2**31 - 1)),
    }


_NUISANCE_KEYS = (
    "baseline_amplitude", "scatter_alpha_std", "scatter_beta_std",
    "tilt_std", "global_slope_mean", "global_slope_std", "shift_std", "stretch_std", "path_length_std",
    "instrumental_fwhm", "artifact_prob",
)  # fmt: skip


def _generator(recipe: dict, library: object):
    """The nirs4all generator of one build, its detector noise scaled by the recipe.

    With an instrument, nirs4all ignores ``noise_base``/``noise_signal_dep`` and adds its
    detector model's noise, fixed per detector type (2e-3 to 1e-2 AU, ~30x the corn set's
    1.3e-4). ``detector_noise`` rescales it as a longer/shorter effective integration time
    (shot, thermal and 1/f noise go as 1/sqrt(time)) and a smaller/larger read noise.
    The builder does not expose its generator, hence ``SyntheticNIRSGenerator`` directly.
    """
    from nirs4all.synthesis import SyntheticNIRSGenerator

    gen = SyntheticNIRSGenerator(
        component_library=library,
        complexity=recipe["complexity"],
        instrument=recipe["instrument"],
        instrument_wavelength_grid=recipe["grid"],
        measurement_mode=recipe["measurement_mode"],
        custom_params={k: recipe[k] for k in (*_NUISANCE_KEYS, "batch_offset_std", "batch_gain_std")},
        random_state=recipe["seed"],
    )
    factor = recipe["detector_noise"]
    for sim in [gen.detector_simulator, *(s for _, s in getattr(gen, "_sensor_detectors", []))]:
        if sim is not None:
            sim.config.integration_time_ms = 100.0 / factor**2
            sim.config.noise_model.read_noise_electrons *= factor
    return gen


def _build(recipes: list[dict], n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One build (one recipe) or paired views (two recipes sharing components and concentrations).

    Returns, per recipe, ``(X (n, L) absorbance, wavelengths (L,) nm, batch_ids (n,))``;
    the concentrations (the builder's y) are dropped: no targets in pretraining.
    """
    from nirs4all.synthesis import ComponentLibrary

    library = ComponentLibrary.from_predefined(recipes[0]["components"], random_state=seed)
    concentrations, out = None, []
    for recipe in recipes:
        gen, nb = _generator(recipe, library), recipe["n_batches"]
        if len(recipes) == 1:  # generate() also simulates multi-scan averaging and sensor stitching
            X, _, _, meta = gen.generate(
                n,
                concentration_method=recipe["concentration_method"],
                include_batch_effects=nb > 1,
                n_batches=nb,
                return_metadata=True,
            )
        else:
            if concentrations is None:
                concentrations = gen.generate_concentrations(n, method=recipe["concentration_method"])
            X, meta = gen.generate_from_concentrations(
                concentrations, include_batch_effects=nb > 1, n_batches=nb
            )
        batches = np.asarray(meta.get("batch_ids", np.zeros(n, dtype=int)))
        out.append((_level(X, recipe), np.asarray(gen.wavelengths, dtype=np.float64), batches))
    return out


def _level(X: np.ndarray, recipe: dict) -> np.ndarray:
    """Absorbance level of a build: ``gain * A + offset`` (effective path length, reference)."""
    return np.asarray(X, dtype=np.float64) * recipe["level_gain"] + recipe["level_offset"]


def _table(name: str, X: np.ndarray, wl: np.ndarray, recipe: dict, meta: dict, extra: dict) -> SpectralTable:
    """Wrap one build (``X`` (n, L) absorbance, ``wl`` (L,) nm) as a ``SpectralTable``."""
    order = np.argsort(wl, kind="stable")
    X, wl = X[:, order], wl[order]
    values, stored, notes = to_absorbance(X, "absorbance")  # the builder emits absorbance in every mode
    values = values.astype(np.float32)
    finite = np.isfinite(values).all(axis=1) & meta.pop("_finite")
    if not finite.all():
        notes.append(f"dropped {int((~finite).sum())} synthetic spectra with non-finite values")
    metadata = pd.DataFrame(meta).loc[finite].reset_index(drop=True)
    recipe_facts = {k: v for k, v in recipe.items() if k != "components"}
    description = (
        f"nirs4all {recipe['instrument']} on grid {recipe['grid']}, {recipe['measurement_mode']}, "
        f"{recipe['domain']}, fwhm {recipe['instrumental_fwhm']:.1f} nm, detector noise x{recipe['detector_noise']:.2f}"
    )
    return SpectralTable(
        name=name,
        source=f"synthetic:{description}",
        values=values[finite],
        wavelengths_nm=wl,
        native_unit="nm",
        native_axis_first=float(wl[0]),
        native_axis_last=float(wl[-1]),
        signal_type_original="absorbance",
        signal_type_stored=stored,
        region=region_of(wl),
        metadata=metadata,
        warnings=notes,
        n_duplicated_spectra=0,
        extra={"recipe": recipe_facts, "components": recipe["components"], **extra},
    )


def _meta(name: str, recipe: dict, batches: np.ndarray, finite: np.ndarray) -> dict:
    n = len(batches)
    return {
        "instrument": [recipe["instrument"]] * n,
        "measurement_mode": [recipe["measurement_mode"]] * n,
        "grid": [recipe["grid"]] * n,
        "recipe": [f"{recipe['domain']}/{recipe['seed']}"] * n,
        "sample_id": [f"{name}_{i:05d}" for i in range(n)],
        "batch": batches.astype(int),
        "_finite": finite,
    }


def generate_synthetic_tables(
    n_samples: int,
    *,
    seed: int = 0,
    complexity: str = "realistic",
    paired_fraction: float = 0.3,
    progress: bool = False,
) -> list[SpectralTable]:
    """Synthetic absorbance spectra on many real instrument grids, as ``SpectralTable`` s.

    ``n_samples`` spectra in all (paired views count one per view): ``paired_fraction`` of them
    in aligned pairs of tables (row i of view A and of view B are the same sample: same
    ``pair_id``; ``extra["paired_with"]`` names the other table), the rest in unpaired builds
    of about 150. Each table: ``values`` (n_t, L_t) float32, ascending nm, no targets.
    Deterministic for a given ``seed``.
    """
    from tqdm.auto import tqdm

    if n_samples < 0 or not 0.0 <= paired_fraction <= 1.0:
        raise ValueError(
            f"need n_samples >= 0 and 0 <= paired_fraction <= 1, got {n_samples}, {paired_fraction}"
        )
    rng = np.random.default_rng(seed)
    grid_instruments = _grid_instruments()
    grids = list(grid_instruments)

    def next_recipe(k: int, avoid: str = "") -> dict:
        if k % len(grids) == 0:
            rng.shuffle(grids)  # every grid once before any repeats
        grid = grids[k % len(grids)]
        grid = grids[(k + 1) % len(grids)] if grid == avoid else grid
        return _draw_recipe(rng, grid, grid_instruments[grid], complexity)

    def chunks(total: int, n_chunks: int) -> list[int]:
        return [len(c) for c in np.array_split(np.arange(total), n_chunks)] if total and n_chunks else []

    n_pair_rows = int(round(n_samples * paired_fraction / 2))
    n_single = n_samples - 2 * n_pair_rows
    plan = [("pair", n) for n in chunks(n_pair_rows, -(-n_pair_rows // _BUILD_SIZE))]
    # at least 4 builds (of >= 10 spectra) so that even a small bank has several grids
    plan += [
        ("single", n) for n in chunks(n_single, max(-(-n_single // _BUILD_SIZE), min(4, n_single // 10)))
    ]

    tables: list[SpectralTable] = []
    k = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirs4all warns per build about clipping / unknown types
        for kind, n in tqdm(plan, desc="synthetic builds", disable=not progress):
            if kind == "single":
                recipe = next_recipe(k)
                ((X, wl, batches),) = _build([recipe], n, seed=recipe["seed"])
                name = f"synth_{recipe['grid']}_{recipe['measurement_mode']}_{k}"
                meta = _meta(name, recipe, batches, np.isfinite(X).all(axis=1))
                tables.append(_table(name, X, wl, recipe, meta, {}))
                k += 1
                continue
            recipes = [next_recipe(k)]
            recipes.append(next_recipe(k + 1, avoid=recipes[0]["grid"]))  # another grid and instrument
            recipes[1]["components"] = recipes[0]["components"]  # same chemistry, one library
            recipes[1]["domain"] = recipes[0]["domain"]
            views = _build(recipes, n, seed=recipes[0]["seed"])
            finite = np.isfinite(views[0][0]).all(axis=1) & np.isfinite(views[1][0]).all(axis=1)
            names = [f"synth_{r['grid']}_{r['measurement_mode']}_{k + i}" for i, r in enumerate(recipes)]
            for i, (recipe, (X, wl, batches)) in enumerate(zip(recipes, views, strict=True)):
                meta = _meta(names[i], recipe, batches, finite)
                meta["pair_id"] = [f"pair{k}_{j:05d}" for j in range(n)]
                meta["view"] = ["AB"[i]] * n
                tables.append(_table(names[i], X, wl, recipe, meta, {"paired_with": names[1 - i]}))
            k += 2
    return tables


def _snv(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=1, keepdims=True)) / (X.std(axis=1, keepdims=True) + 1e-12)


def _resample(
    tables: list[SpectralTable], grid: np.ndarray, max_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """Rows of the tables covering ``grid``, interpolated onto it, at most ``max_rows`` in
    all, balanced across tables (small tables give their share to the others)."""
    used = [
        t for t in tables if t.n_rows and t.wavelengths_nm[0] <= grid[0] and t.wavelengths_nm[-1] >= grid[-1]
    ]
    blocks, left = [], max_rows
    for i, t in enumerate(sorted(used, key=lambda t: t.n_rows)):
        take = min(t.n_rows, left // (len(used) - i))
        rows = np.sort(rng.choice(t.n_rows, size=take, replace=False))
        blocks += [np.stack([np.interp(grid, t.wavelengths_nm, v) for v in t.values[rows]])] if take else []
        left -= take
    X = np.concatenate(blocks) if blocks else np.empty((0, len(grid)))
    return X, [t.name for t in used]


def adversarial_auc(
    real: list[SpectralTable],
    synthetic: list[SpectralTable],
    *,
    grid_nm: tuple[float, float, float] = (1100.0, 2400.0, 4.0),
    max_per_side: int = 1000,
    seed: int = 0,
    snv: bool = False,
) -> dict:
    """Real-vs-synthetic adversarial validation AUC on a common grid ``(start, stop, step)`` nm.

    Tables whose axis covers the grid are interpolated onto it (``np.interp``), optionally
    SNV-ed, subsampled to ``max_per_side`` per side (balanced across tables) and passed to
    nirs4all's ``compute_adversarial_validation_auc`` (logistic regression, 5-fold ROC AUC).
    ``ValueError`` if one side has no table covering the grid.
    """
    from nirs4all.synthesis import compute_adversarial_validation_auc

    start, stop, step = grid_nm
    grid = np.arange(start, stop + step / 2, step)
    rng = np.random.default_rng(seed)
    Xr, real_used = _resample(real, grid, max_per_side, rng)
    Xs, synth_used = _resample(synthetic, grid, max_per_side, rng)
    for side, used in (("real", real_used), ("synthetic", synth_used)):
        if not used:
            raise ValueError(f"no {side} table covers the grid {start:g}-{stop:g} nm")
    if snv:
        Xr, Xs = _snv(Xr), _snv(Xs)
    auc, auc_std = compute_adversarial_validation_auc(Xr, Xs, cv_folds=5, random_state=seed)
    verdict = (
        "excellent (< 0.6)" if auc < 0.6 else "good (< 0.7)" if auc < 0.7
        else "acceptable (< 0.8)" if auc < 0.8 else "trivially separable (>= 0.8)"
    )  # fmt: skip
    return {
        "auc": float(auc),
        "auc_std": float(auc_std),
        "n_real": int(len(Xr)),
        "n_synthetic": int(len(Xs)),
        "grid_nm": [float(start), float(stop), float(step)],
        "snv": bool(snv),
        "real_tables": real_used,
        "synthetic_tables": synth_used,
        "interpretation": verdict,
    }
