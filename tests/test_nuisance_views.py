"""Nuisance-only views (vitnirs.batching.augment): each op moves a spectrum as documented and never
touches padding; and the probe's embedding-collapse warning (vitnirs.train.probe)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vitnirs.batching import augment
from vitnirs.train.probe import RANK_WARNING, Probe

PAD_W, PAD_V = 1000.0, 123.0  # the contract's padding wavelength; a value that shows any change
LENGTHS = (300, 200)
GRID = 1100.0 + 2.0 * torch.arange(max(LENGTHS))  # 2 nm, 1100-1698 nm


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(rows: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of LENGTHS points on GRID (float32, as the data pipeline), padded with PAD_W / PAD_V."""
    L = max(LENGTHS)
    valid = torch.arange(L)[None] < torch.tensor(LENGTHS)[:, None]
    w = torch.where(valid, GRID, PAD_W)
    if rows is None:  # a level, a slope and two bands
        x = (GRID - 1100.0) / 600.0
        rows = [0.5 + 0.2 * x + 0.6 * torch.exp(-(((GRID - c) / 20.0) ** 2)) for c in (1300.0, 1450.0)]
    values = torch.where(valid, torch.stack(rows), PAD_V).float()
    return values, w.float(), valid


def assert_padding_untouched(out: torch.Tensor, valid: torch.Tensor) -> None:
    assert (out[~valid] == PAD_V).all()  # bit for bit
    assert torch.isfinite(out[valid]).all()


def alone(op, values: torch.Tensor, w: torch.Tensor, valid: torch.Tensor, i: int) -> torch.Tensor:
    """``op`` on row i cut to its own length (no padding)."""
    n = int(valid[i].sum())
    return op(values[i : i + 1, :n], w[i : i + 1, :n], valid[i : i + 1, :n])[0]


def peak_centre(y: torch.Tensor, grid: torch.Tensor) -> float:
    """Centre of the largest peak: argmax refined by a parabola through its three points."""
    i = int(y.argmax())
    a, b, c = (float(t) for t in y[i - 1 : i + 2])
    step = float(grid[i + 1] - grid[i])
    return float(grid[i]) + step * 0.5 * (a - c) / (a - 2 * b + c)


# ----------------------------------------------------------------------------- laws of change
def test_offset_adds_exactly_the_constant():
    v, w, ok = batch()
    c = 0.37
    out = augment.baseline_drift(v, w, ok, gen(), coeff_ranges=[(c, c)])
    assert torch.equal(out[ok], v[ok] + c)
    assert_padding_untouched(out, ok)
    # degree 1: c0 + c1 λ̃, λ̃ the row's own range (not the padding's 1000 nm) scaled to [-1, 1]
    c1 = 0.2
    out = augment.baseline_drift(v, w, ok, gen(), coeff_ranges=[(c, c), (c1, c1)])
    for i, n in enumerate(LENGTHS):
        lam = GRID[:n]
        expected = v[i, :n] + c + c1 * (2 * (lam - lam[0]) / (lam[-1] - lam[0]) - 1)
        torch.testing.assert_close(out[i, :n], expected, atol=1e-6, rtol=0)
    assert_padding_untouched(out, ok)


def test_scatter_multiplies_exactly_by_b():
    v, w, ok = batch()
    b = 1.07
    out = augment.scatter(v, ok, gen(), a_range=(0.0, 0.0), b_range=(b, b), sigma_gain=0.0)
    assert torch.equal(out[ok], b * v[ok])
    assert_padding_untouched(out, ok)


@pytest.mark.parametrize("s", [3.0, -3.0])
def test_shift_moves_a_peak_by_s_nm(s):
    """The docstring: resample at λ - s (f = 1), so a feature at λ0 ends at λ0 + s."""
    rows = [0.1 + torch.exp(-0.5 * ((GRID - 1500.0) / 6.0) ** 2) for _ in LENGTHS]
    v, w, ok = batch(rows)
    v[1] = torch.where(
        ok[1], 0.1 + torch.exp(-0.5 * ((GRID - 1400.0) / 6.0) ** 2), PAD_V
    )  # inside 200 points
    out = augment.shift_stretch(v, w, ok, gen(), shift_range=(s, s), stretch_range=(1.0, 1.0))
    for i, centre in enumerate((1500.0, 1400.0)):
        n = LENGTHS[i]
        assert abs(peak_centre(v[i, :n], GRID[:n]) - centre) < 0.05  # the input's own centre
        assert abs(peak_centre(out[i, :n], GRID[:n]) - (centre + s)) < 0.2  # measured: within 0.01 nm
    assert_padding_untouched(out, ok)
    op = lambda x, ww, k: augment.shift_stretch(x, ww, k, gen(), shift_range=(s, s), stretch_range=(1, 1))  # noqa: E731
    torch.testing.assert_close(alone(op, v, w, ok, 1), out[1, : LENGTHS[1]], atol=1e-6, rtol=0)


def test_blur_keeps_the_area_lowers_and_widens_a_narrow_peak():
    width, sigma, base = 3.0, 2.0, 0.1  # Gaussian peak sd 3 nm, blur sigma 2 nm: output sd sqrt(13)
    rows = [base + torch.exp(-0.5 * ((GRID - c) / width) ** 2) for c in (1500.0, 1350.0)]
    v, w, ok = batch(rows)
    out = augment.blur(v, w, ok, gen(), sigma_range=(sigma, sigma))
    assert_padding_untouched(out, ok)
    for i, c in enumerate((1500.0, 1350.0)):
        n = LENGTHS[i]
        d0, d1 = (v[i, :n] - base).double(), (out[i, :n] - base).double()
        g = GRID[:n].double()
        assert abs(d1.sum() / d0.sum() - 1) < 0.01  # area (uniform grid, the peak far from the ends)
        assert d1.max() < 0.9 * d0.max()  # measured 0.83
        var0, var1 = ((g - c) ** 2 * d0).sum() / d0.sum(), ((g - c) ** 2 * d1).sum() / d1.sum()
        assert abs(var0 - width**2) < 0.05
        assert abs(var1 - (width**2 + sigma**2)) < 0.05 * (width**2 + sigma**2)  # measured 13.00
        assert abs(peak_centre(out[i, :n], GRID[:n]) - c) < 0.05  # widened, not moved
    # a constant spectrum stays constant; the short row's end does not see the padding (123)
    const = batch([torch.full_like(GRID, 0.7) for _ in LENGTHS])
    flat = augment.blur(*const, gen(), sigma_range=(4.0, 4.0))
    assert (flat[const[2]] - 0.7).abs().max() < 1e-6
    assert_padding_untouched(flat, const[2])
    op = lambda x, ww, k: augment.blur(x, ww, k, gen(), sigma_range=(sigma, sigma))  # noqa: E731
    torch.testing.assert_close(alone(op, v, w, ok, 1), out[1, : LENGTHS[1]], atol=1e-6, rtol=0)
    # padding wavelengths are any finite value: even right after the row's end, 123 must not leak in
    near = torch.where(ok, w, GRID)
    assert torch.equal(augment.blur(v, near, ok, gen(), sigma_range=(sigma, sigma)), out)


def test_detector_response_adds_a_smooth_bounded_curve():
    amplitude, n_bumps = 0.2, 3
    v, w, ok = batch()
    B = 64  # many draws: the bound must hold for every one
    v, w, ok = v.repeat(B // 2, 1), w.repeat(B // 2, 1), ok.repeat(B // 2, 1)
    out = augment.detector_response(v, w, ok, gen(), amplitude=amplitude, n_bumps=n_bumps)
    assert_padding_untouched(out, ok)
    std = augment.masked_std(v, ok)  # [B, 1]
    d = torch.where(ok, out - v, 0.0).double()
    peak = d.abs().amax(1, keepdim=True)  # [B, 1]
    bound = amplitude * n_bumps * std
    assert (peak <= bound + 1e-6).all()
    assert (peak > 0.2 * bound).any()  # the amplitude is used, not just bounded (measured: up to ~0.6)
    for i in range(B):
        n = int(ok[i].sum())
        second = (d[i, 2:n] - 2 * d[i, 1 : n - 1] + d[i, : n - 2]).abs().max()
        # each bump has width >= 0.1 of the range, (n - 1) / 10 points: |second difference| <= a / w²
        assert second <= bound[i] / (0.1 * (n - 1)) ** 2 + 1e-6
        assert second < 0.01 * peak[i]  # smooth: measured <= 2e-3 of the curve (white noise: ~2)
    # in units of the spectrum's std: the same draws on 10 x the spectrum give 10 x the curve
    out10 = augment.detector_response(10 * v, w, ok, gen(), amplitude=amplitude, n_bumps=n_bumps)
    torch.testing.assert_close(torch.where(ok, out10 - 10 * v, 0.0).double(), 10 * d, atol=2e-5, rtol=1e-4)
    v0, w0, ok0 = batch()
    zero = augment.detector_response(v0, w0, ok0, gen(), amplitude=0.0)
    assert torch.equal(zero, v0)


def test_gaussian_noise_changes_the_real_points_only():
    v, w, ok = batch()
    sigma = 0.05
    out = augment.gaussian_noise(v, ok, gen(), sigma=sigma)
    assert_padding_untouched(out, ok)
    diff = out - v
    assert (diff[ok] != 0).all()
    z = diff / (sigma * augment.masked_std(v, ok))  # N(0, 1) at the real points
    assert abs(float(z[ok].std()) - 1) < 0.15  # N(0, sigma std(x)): measured 1.01 over 500 points
    assert abs(float(z[ok].mean())) < 0.15


# ----------------------------------------------------------------------------- padding, every op
OPS = {
    "offset": lambda v, w, ok, g: augment.baseline_drift(v, w, ok, g, coeff_ranges=[(0.3, 0.3)]),
    "baseline_drift": lambda v, w, ok, g: augment.baseline_drift(v, w, ok, g),
    "scatter": lambda v, w, ok, g: augment.scatter(v, ok, g, sigma_gain=0.03),
    "shift": lambda v, w, ok, g: augment.shift_stretch(
        v, w, ok, g, shift_range=(-20, 20), stretch_range=(0.99, 1.01)
    ),
    "blur": lambda v, w, ok, g: augment.blur(v, w, ok, g),
    "detector_response": lambda v, w, ok, g: augment.detector_response(v, w, ok, g, amplitude=0.5),
    "noise": lambda v, w, ok, g: augment.gaussian_noise(v, ok, g),
    "band_mask": lambda v, w, ok, g: augment.band_mask(v, ok, g, bandwidth_range=(30, 60)),
    "augmenter": augment.Augmenter(
        p_blur=1, p_response=1, p_shift=1, p_scatter=1, p_baseline_drift=1, p_noise=1, p_band_mask=1
    ),
}


@pytest.mark.parametrize("name", list(OPS))
def test_padding_is_bit_for_bit_unchanged(name):
    v, w, ok = batch()
    for seed in range(3):
        out = OPS[name](v, w, ok, gen(seed))
        assert_padding_untouched(out, ok)
        assert (out[ok] != v[ok]).any(), "the op did nothing"  # it does act on the real points
    assert torch.equal(OPS[name](v, w, ok, gen(7)), OPS[name](v, w, ok, gen(7)))  # from the generator only


# ----------------------------------------------------------------------------- collapse warning
class FakeModel(torch.nn.Module):
    """``encode`` gives a fixed embedding per call; ``__call__`` an MAE-like (loss, pred, mask)."""

    def __init__(self, embedding: torch.Tensor):
        super().__init__()
        self.embedding = embedding

    def encode(self, values, wavelengths, valid, level, meta=None):
        n = values.shape[0]
        return SimpleNamespace(embedding=self.embedding[:n])  # an EncoderOutput's embedding

    def forward(self, batch):
        return torch.tensor(0.5), None, None


def bare_probe(n: int = 32) -> Probe:
    probe = Probe.__new__(Probe)  # no data source: the batches are set by hand
    probe.batches = [
        {
            "values": torch.zeros(n, 10),
            "wavelengths": torch.linspace(1100, 1200, 10).expand(n, 10),
            "valid": torch.ones(n, 10, dtype=torch.bool),
            "level": torch.zeros(n, 2),
            "is_synthetic": torch.zeros(n, dtype=torch.bool),  # all real: no AUC fit
        }
    ]
    probe.amp_dtype, probe.device, probe.last_auc = None, torch.device("cpu"), None
    return probe


@pytest.mark.parametrize("kind", ["constant", "rank1"])
def test_probe_warns_of_an_embedding_collapse(kind):
    n, d = 32, 8
    if kind == "constant":
        emb = torch.full((n, d), 0.3)
    else:  # every embedding on one line: not constant, still rank 1
        emb = torch.linspace(-1, 1, n)[:, None] * torch.randn(d, generator=gen())[None]
    model = FakeModel(emb)
    with pytest.warns(UserWarning, match="effective rank"):
        out = bare_probe(n)(model)
    assert out["embedding_effective_rank"] < RANK_WARNING
    assert out["heldout_recon_mse"] == pytest.approx(0.5) and out["probe_auc"] is None
    assert model.training  # the probe restores the mode


def test_probe_reports_no_reconstruction_mse_when_nothing_is_masked():
    probe, model = bare_probe(), FakeModel(torch.randn(32, 8, generator=gen()))
    probe.batches[0]["mask"] = torch.zeros(32, 10, dtype=torch.bool)  # masking.mask_ratio = 0
    assert probe.heldout_recon_mse(model) is None
    probe.batches[0]["mask"][0, 3] = True  # one masked point: the loss is reported again
    assert probe.heldout_recon_mse(model) == pytest.approx(0.5)


def test_probe_does_not_warn_on_a_full_rank_embedding():
    n, d = 32, 8
    model = FakeModel(torch.randn(n, d, generator=gen()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = bare_probe(n)(model)
    assert not [w for w in caught if "effective rank" in str(w.message)]
    assert out["embedding_effective_rank"] > RANK_WARNING  # measured ~7 of 8
    assert np.isfinite(out["embedding_dim_std"])
