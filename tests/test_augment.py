"""Torch augmentations: same law of change as the nirs4all operator with the same parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitnirs.batching import augment

aug_ops = pytest.importorskip("nirs4all.operators.augmentation")

N, L = 400, 200
WL = np.linspace(1100.0, 2500.0, L)


def spectra(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, L)[None]
    return (
        0.5 + rng.uniform(0, 0.3, (N, 1)) + 0.3 * np.exp(-(((x - rng.uniform(0.3, 0.7, (N, 1))) / 0.1) ** 2))
    )


def torch_batch(X: np.ndarray):
    values = torch.tensor(X, dtype=torch.float64)
    return values, torch.tensor(np.tile(WL, (len(X), 1))), torch.ones(values.shape, dtype=torch.bool)


def nirs4all(op, X: np.ndarray) -> np.ndarray:
    if hasattr(op, "_requires_wavelengths"):
        return op.fit(X, wavelengths=WL).transform(X, wavelengths=WL)
    return op.fit(X).transform(X)


def close(a: float, b: float, rel: float = 0.15, atol: float = 0.0) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b)) + atol


def poly_coeffs(delta: np.ndarray, degree: int = 3) -> np.ndarray:
    x = 2 * (WL - WL.min()) / (WL.max() - WL.min()) - 1
    design = np.stack([x**i for i in range(degree + 1)], 1)
    return np.linalg.lstsq(design, delta.T, rcond=None)[0].T  # (N, degree+1)


def test_baseline_drift_matches_polynomial_baseline_drift():
    X = spectra()
    ref = poly_coeffs(nirs4all(aug_ops.PolynomialBaselineDrift(degree=3, random_state=0), X) - X)
    v, w, ok = torch_batch(X)
    ours = poly_coeffs(augment.baseline_drift(v, w, ok, torch.Generator().manual_seed(0)).numpy() - X)
    for i in range(4):
        assert close(ref[:, i].std(), ours[:, i].std()), i
        assert abs(ours[:, i].mean()) < 0.2 * ours[:, i].std() + 1e-3


def test_scatter_matches_msc_and_multiplicative_noise():
    X = spectra(1)

    def fit_ab(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xc = X - X.mean(1, keepdims=True)
        b = (xc * (out - out.mean(1, keepdims=True))).sum(1) / (xc**2).sum(1)
        return out.mean(1) - b * X.mean(1), b

    v, _, ok = torch_batch(X)
    g = torch.Generator().manual_seed(1)
    a_ref, b_ref = fit_ab(
        nirs4all(aug_ops.ScatterSimulationMSC(a_range=(-0.1, 0.1), b_range=(0.9, 1.1), random_state=1), X)
    )
    a, b = fit_ab(augment.scatter(v, ok, g, a_range=(-0.1, 0.1), b_range=(0.9, 1.1)).numpy())
    assert close(a_ref.std(), a.std()) and close(b_ref.std(), b.std()) and close(b_ref.mean(), b.mean(), 0.01)
    _, gain_ref = fit_ab(nirs4all(aug_ops.MultiplicativeNoise(sigma_gain=0.05, random_state=1), X))
    _, gain = fit_ab(augment.scatter(v, ok, g, a_range=(0, 0), b_range=(1, 1), sigma_gain=0.05).numpy())
    assert close(gain_ref.std(), gain.std()) and close(gain_ref.mean(), gain.mean(), 0.01)


def test_gaussian_noise_is_relative_to_each_spectrum_std():
    X = spectra(2) * np.linspace(0.1, 10, N)[:, None]  # very different scales
    ref = nirs4all(aug_ops.GaussianAdditiveNoise(sigma=0.02, random_state=2), X) - X
    v, _, ok = torch_batch(X)
    ours = augment.gaussian_noise(v, ok, torch.Generator().manual_seed(2), sigma=0.02).numpy() - X
    rel_ref, rel = ref.std(1) / X.std(1), ours.std(1) / X.std(1)
    assert close(rel_ref.mean(), rel.mean(), 0.05) and close(rel.mean(), 0.02, 0.05)
    assert close(rel_ref.std(), rel.std(), 0.2)


def test_band_masking_matches_fraction_changed_and_is_linear():
    X = spectra(3)
    op = aug_ops.BandMasking(n_bands_range=(1, 3), bandwidth_range=(5, 20), mode="interp", random_state=3)
    ref = nirs4all(op, X)
    v, _, ok = torch_batch(X)
    ours = augment.band_mask(v, ok, torch.Generator().manual_seed(3)).numpy()
    frac_ref, frac = (np.abs(ref - X) > 1e-12).mean(1), (np.abs(ours - X) > 1e-12).mean(1)
    assert close(frac_ref.mean(), frac.mean(), 0.15) and close(frac_ref.std(), frac.std(), 0.2)
    # inside a band the values lie on a line: second differences vanish where 3 neighbours changed
    # (except where two bands touch, as in nirs4all)
    for out in (ours, ref):
        changed = np.abs(out - X) > 1e-12
        inner = changed[:, :-2] & changed[:, 1:-1] & changed[:, 2:]
        assert inner.any() and (np.abs(np.diff(out, 2, axis=1)[inner]) > 1e-9).mean() < 0.05


@pytest.mark.parametrize("kind", ["shift", "stretch"])
def test_wavelength_shift_and_stretch_match_nirs4all(kind: str):
    c = WL.mean()
    X = np.tile(0.001 * (WL - c), (N, 1)) + 1.0  # a ramp: the change reveals the shift / factor
    v, w, ok = torch_batch(X)
    g = torch.Generator().manual_seed(4)
    interior = slice(20, -20)
    if kind == "shift":
        ref = nirs4all(aug_ops.WavelengthShift(shift_range=(-2, 2), random_state=4), X)
        ours = augment.shift_stretch(v, w, ok, g, shift_range=(-2, 2)).numpy()
        est_ref, est = [-(o - X)[:, interior].mean(1) / 0.001 for o in (ref, ours)]  # the shift s, nm
        assert close(est.std(), 4 / 12**0.5, 0.1)
    else:
        ref = nirs4all(aug_ops.WavelengthStretch(stretch_range=(0.99, 1.01), random_state=4), X)
        ours = augment.shift_stretch(v, w, ok, g, shift_range=(0, 0), stretch_range=(0.99, 1.01)).numpy()
        est_ref, est = [((X - 1.0) / (o - 1.0))[:, interior].mean(1) for o in (ref, ours)]  # the factor f
        assert close(est.std(), 0.02 / 12**0.5, 0.1)
    assert close(est_ref.std(), est.std(), 0.15) and abs(est.mean() - est_ref.mean()) < 0.2 * est.std() + 1e-6


def test_padding_untouched_and_grid_respected():
    X = spectra(5)
    v, w, ok = torch_batch(X)
    ok[::2, 120:] = False  # half the rows are shorter
    v[~ok], w[~ok] = 7.0, 1000.0
    aug = augment.Augmenter(p_baseline_drift=1, p_scatter=1, p_noise=1, p_band_mask=1, p_shift=1)
    out = aug(v, w, ok, torch.Generator().manual_seed(0))
    assert (out[~ok] == 7.0).all() and torch.isfinite(out).all()
    again = aug(v, w, ok, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    for op in (
        lambda g: augment.baseline_drift(v, w, ok, g),
        lambda g: augment.band_mask(v, ok, g, bandwidth_range=(30, 60)),
        lambda g: augment.shift_stretch(v, w, ok, g, shift_range=(-50, 50)),
        lambda g: augment.gaussian_noise(v, ok, g),
    ):
        res = op(torch.Generator().manual_seed(1))
        assert (res[~ok] == 7.0).all() and torch.isfinite(res).all()


def test_augmenter_probabilities():
    X = spectra(6)
    v, w, ok = torch_batch(X)
    out = augment.Augmenter(p_baseline_drift=0, p_scatter=0.5, p_noise=0, p_band_mask=0, p_shift=0)(
        v, w, ok, torch.Generator().manual_seed(0)
    )
    changed = (out - v).abs().amax(1) > 0
    assert 0.4 < changed.double().mean() < 0.6
