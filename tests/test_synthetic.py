"""The synthetic bank: shapes, metadata, paired views, determinism, adversarial AUC."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import cross_val_predict

import vitnirs.data.synthetic as synthetic
from vitnirs.data.signal import region_of
from vitnirs.data.synthetic import adversarial_auc, generate_synthetic_tables

META = {"instrument", "measurement_mode", "grid", "recipe", "sample_id"}


@pytest.fixture(scope="module")
def tables():
    return generate_synthetic_tables(400, seed=3, paired_fraction=0.5)


def _pairs(tables):
    by_name = {t.name: t for t in tables}
    return [
        (t, by_name[t.extra["paired_with"]])
        for t in tables
        if "paired_with" in t.extra and t.metadata.view[0] == "A"
    ]


def _hf_noise(values: np.ndarray) -> float:
    """Median per-spectrum white-noise estimate from second differences."""
    return float(np.median(np.std(np.diff(values, n=2, axis=1), axis=1) / np.sqrt(6)))


def test_tables_are_well_formed(tables):
    assert sum(t.n_rows for t in tables) == 400
    for t in tables:
        assert t.values.dtype == np.float32 and t.values.ndim == 2 and t.n_rows > 0
        assert np.isfinite(t.values).all()
        assert t.wavelengths_nm.shape == (t.n_points,) and np.all(np.diff(t.wavelengths_nm) > 0)
        assert t.native_unit == "nm" and t.source.startswith("synthetic:")
        assert t.signal_type_stored == "absorbance" and t.n_duplicated_spectra == 0
        assert t.region == region_of(t.wavelengths_nm)
        assert t.targets.empty  # pretraining never sees targets
        assert set(t.metadata.columns) >= META and len(t.metadata) == t.n_rows
    ids = np.concatenate([t.metadata.sample_id.to_numpy() for t in tables])
    assert len(set(ids)) == len(ids)


def test_many_grids_instruments_and_modes(tables):
    grids = {t.metadata.grid[0] for t in tables}
    assert len(grids) >= 4
    assert len({t.n_points for t in tables}) >= 4  # grids really differ, not just their names
    assert len({t.metadata.measurement_mode[0] for t in tables}) >= 2
    assert len({t.metadata.instrument[0] for t in tables}) >= 3


def test_paired_views_are_aligned(tables):
    pairs = _pairs(tables)
    assert pairs and 2 * sum(a.n_rows for a, _ in pairs) == 200
    for a, b in pairs:
        assert b.extra["paired_with"] == a.name
        assert a.n_rows == b.n_rows
        assert (a.metadata.pair_id.to_numpy() == b.metadata.pair_id.to_numpy()).all()
        assert set(a.metadata.view) == {"A"} and set(b.metadata.view) == {"B"}
        assert a.metadata.grid[0] != b.metadata.grid[0]
    unpaired = [t for t in tables if "paired_with" not in t.extra]
    assert unpaired and all("pair_id" not in t.metadata.columns for t in unpaired)


def test_paired_views_share_composition():
    """View B's main variations are predictable from view A for paired rows, not shuffled ones."""

    def features(X):  # first derivative + SNV: removes offsets, scatter and level
        d = np.diff(X.astype(np.float64), axis=1)
        return (d - d.mean(1, keepdims=True)) / d.std(1, keepdims=True)

    def cross_view_r2(A, B):
        target = PCA(3).fit_transform(B - B.mean(0))
        pred = cross_val_predict(RidgeCV(alphas=np.logspace(-3, 3, 7)), A - A.mean(0), target, cv=5)
        return 1 - ((pred - target) ** 2).sum() / ((target - target.mean(0)) ** 2).sum()

    pairs = _pairs(generate_synthetic_tables(900, seed=0, paired_fraction=1.0))
    assert len(pairs) >= 3
    rng = np.random.default_rng(0)
    paired, shuffled = [], []
    for a, b in pairs:
        fa, fb = features(a.values), features(b.values)
        paired.append(cross_view_r2(fa, fb))
        shuffled.append(cross_view_r2(fa, fb[rng.permutation(len(fb))]))
    assert np.mean(paired) > 0.5, paired
    assert max(shuffled) < 0.15, shuffled
    assert all(p > s for p, s in zip(paired, shuffled, strict=True))


def test_deterministic_by_seed():
    first, again = generate_synthetic_tables(60, seed=7), generate_synthetic_tables(60, seed=7)
    assert [t.name for t in first] == [t.name for t in again]
    for t, u in zip(first, again, strict=True):
        np.testing.assert_array_equal(t.values, u.values)
        np.testing.assert_array_equal(t.wavelengths_nm, u.wavelengths_nm)
        assert t.metadata.equals(u.metadata)
    other = generate_synthetic_tables(60, seed=8)
    assert [t.name for t in other] != [t.name for t in first] or any(
        not np.array_equal(t.values, u.values) for t, u in zip(first, other, strict=True)
    )


def test_noise_and_nuisances_differ_between_builds(tables):
    recipes = [t.extra["recipe"] for t in tables]
    for key in (
        "detector_noise",
        "baseline_amplitude",
        "scatter_alpha_std",
        "instrumental_fwhm",
        "level_gain",
    ):
        assert len({round(r[key], 6) for r in recipes}) == len(recipes), key
    noise = [_hf_noise(t.values) for t in tables]
    assert max(noise) / min(noise) > 2.0, noise


def test_non_finite_rows_are_dropped_and_reported(monkeypatch):
    level = synthetic._level

    def poisoned(X, recipe):
        out = level(X, recipe)
        out[0, 3] = np.nan
        return out

    monkeypatch.setattr(synthetic, "_level", poisoned)
    tables = generate_synthetic_tables(40, seed=1)
    assert sum(t.n_rows for t in tables) == 40 - len(tables)
    for t in tables:
        assert np.isfinite(t.values).all() and len(t.metadata) == t.n_rows
        assert any("non-finite" in w for w in t.warnings)
    for a, b in _pairs(tables):
        assert (a.metadata.pair_id.to_numpy() == b.metadata.pair_id.to_numpy()).all()


def test_adversarial_auc_on_tiny_inputs():
    real = generate_synthetic_tables(120, seed=11)
    offset = [dataclasses.replace(t, values=t.values + 1.0) for t in real]  # the same spectra, shifted
    kw = {"grid_nm": (1100.0, 1600.0, 10.0), "max_per_side": 60}
    same = adversarial_auc(real, real, **kw)
    assert 0.3 < same["auc"] < 0.7 and same["auc_std"] > 0.0, same  # one population: chance, varying folds
    shifted = adversarial_auc(real, offset, **kw)
    assert shifted["auc"] > 0.99 and shifted["auc_std"] == 0.0, shifted  # every fold separates them
    assert shifted["interpretation"] == "trivially separable (>= 0.8)"
    out = adversarial_auc(real, offset, snv=True, **kw)  # SNV removes a constant offset exactly
    assert 0.3 < out["auc"] < 0.7, out
    assert 0 < out["n_real"] <= 60 and 0 < out["n_synthetic"] <= 60
    assert out["real_tables"] and out["synthetic_tables"] and out["snv"] is True
    assert out["grid_nm"] == [1100.0, 1600.0, 10.0] and out["interpretation"]


def test_adversarial_auc_raises_when_nothing_covers_the_grid():
    synth = generate_synthetic_tables(40, seed=2)
    with pytest.raises(ValueError, match="covers the grid"):
        adversarial_auc(synth, synth, grid_nm=(300.0, 3000.0, 10.0))
