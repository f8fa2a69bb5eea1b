"""Patch tokens on the absolute log-λ lattice (``model.tokenizer: patch``): which patches are valid,
grid independence, shift equivariance, the SG channels against scipy, padding invariance of the
patch model, masked-patch pretraining, exact resume and the config keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import savgol_filter

from vitnirs.batching.augment import Augmenter
from vitnirs.batching.contract import normalise
from vitnirs.batching.masking import block_mask
from vitnirs.config import load_config
from vitnirs.errors import ConfigError
from vitnirs.model.presets import build_mae
from vitnirs.model.readout import READOUTS
from vitnirs.model.tokenizer import PatchTokenizer
from vitnirs.train.objectives import PretrainObjective

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

ALL_CHANNELS = ("absorbance", "sg1", "sg2")
STEP = 0.0016  # the default lattice step δ


@pytest.fixture(scope="module")
def tok() -> PatchTokenizer:
    return PatchTokenizer(d_model=16, channels=ALL_CHANNELS, lattice_step=STEP)


def padded(
    rows: list[tuple[np.ndarray, np.ndarray]],
    *,
    L: int | None = None,
    pad_w: float = 1000.0,
    pad_v: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grid, absorbance) rows -> the batch contract: values (normalised), wavelengths, valid, level.

    Padding at the end of each row: wavelength ``pad_w``, value ``pad_v`` (after normalisation).
    """
    L = L or max(len(w) for w, _ in rows)
    B = len(rows)
    v = torch.zeros(B, L, dtype=torch.float64)
    w = torch.full((B, L), pad_w, dtype=torch.float64)
    ok = torch.zeros(B, L, dtype=torch.bool)
    for i, (wi, vi) in enumerate(rows):
        n = len(wi)
        v[i, :n], w[i, :n], ok[i, :n] = torch.as_tensor(vi), torch.as_tensor(wi), True
    x, level = normalise(v, ok)
    return torch.where(ok, x, pad_v), w.float(), ok, level


def bands(lam: np.ndarray) -> np.ndarray:
    """A smooth absorbance: a level and three Gaussian bands (nm)."""
    lam = np.asarray(lam, dtype=np.float64)
    return (
        0.3
        + 0.5 * np.exp(-(((lam - 1200) / 30) ** 2))
        + 0.8 * np.exp(-(((lam - 1450) / 50) ** 2))
        + 0.4 * np.exp(-(((lam - 1700) / 25) ** 2))
    )


def log_bands(lam: np.ndarray) -> np.ndarray:
    """A smooth absorbance defined in u = log λ (so a lattice shift is an exact translation)."""
    u = np.log(np.asarray(lam, dtype=np.float64))
    return (
        0.2
        + 0.6 * np.exp(-(((u - np.log(1250)) / 0.02) ** 2))
        + 0.9 * np.exp(-(((u - np.log(1450)) / 0.03) ** 2))
        + 0.5 * np.exp(-(((u - np.log(1650)) / 0.015) ** 2))
    )


def patch_index(tok: PatchTokenizer, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """The lattice index (of the whole lattice) of each patch of a ``patches`` output (it is cropped)."""
    idx = torch.searchsorted(tok.centres, p["centres"])
    assert torch.equal(tok.centres[idx], p["centres"])
    return idx


# ----------------------------------------------------------------------------- 1. validity
def test_a_patch_is_valid_only_inside_the_spectrum_range(tok):
    """1100-1810 nm (1,800 nm falls between two patches; 1,810 nm is inside one, as 1,100 nm is)."""
    P = tok.patch_size
    lo_nm, hi_nm = 1100.0, 1810.0
    g = np.arange(lo_nm, hi_nm + 1e-9, 2.0)
    wide = np.arange(1000.0, 2000.0 + 1e-9, 2.0)  # keeps the patches around both ends in the crop
    gap = g[(g <= 1400) | (g >= 1500)]  # a detector gap: no point strictly between 1400 and 1500 nm
    x, w, ok, _ = padded([(g, bands(g)), (wide, bands(wide)), (gap, bands(gap))])
    lat = tok.lattice
    _, covered = tok.channel_values(x, w, ok)  # the lattice points each row covers
    assert torch.equal(covered[0], (lat >= lo_nm) & (lat <= hi_nm))
    assert torch.equal(covered[2], ((lat >= lo_nm) & (lat <= 1400)) | ((lat >= 1500) & (lat <= hi_nm)))
    p = tok.patches(x, w, ok)
    pts = tok.lattice.reshape(-1, P)[patch_index(tok, p)]  # [T, P] nm
    lo, hi = pts.amin(-1), pts.amax(-1)

    valid = p["valid"][0]
    assert ((pts[valid] >= lo_nm) & (pts[valid] <= hi_nm)).all()
    inside = (lo >= lo_nm) & (hi <= hi_nm)
    assert inside.sum() >= 30
    assert torch.equal(valid, inside)  # every patch fully inside is valid, no other
    straddle = ((lo < lo_nm) & (hi > lo_nm)) | ((lo < hi_nm) & (hi > hi_nm))
    assert straddle.sum() == 2 and not valid[straddle].any()  # one at each end, both invalid
    assert p["valid"][1][straddle].all()  # valid in the wide row: only the range made them invalid

    valid_gap = p["valid"][2]
    across = (hi > 1400) & (lo < 1500)  # some point of the patch in the gap (or spanning it)
    assert across.sum() >= 5 and not valid_gap[across].any()
    left, right = (lo >= lo_nm) & (hi <= 1400), (lo >= 1500) & (hi <= hi_nm)
    assert left.sum() >= 10 and right.sum() >= 10
    assert torch.equal(valid_gap, left | right)
    assert p["valid"][1][across].all()


# ----------------------------------------------------------------------------- 2. grid independence
def test_same_spectrum_on_2nm_and_1nm_grids_gives_the_same_patches(tok):
    P, C = tok.patch_size, len(tok.channels)
    out = []
    for step in (2.0, 1.0):
        g = np.arange(1100.0, 1800.0 + 1e-9, step)
        p = tok.patches(*padded([(g, bands(g))])[:3])
        out.append((patch_index(tok, p), p))
    (ia, a), (ib, b) = out
    assert torch.equal(ia, ib) and torch.equal(a["valid"], b["valid"])  # the same valid patches
    both = a["valid"][0] & b["valid"][0]
    assert both.sum() >= 30
    diff = (a["content"][0, both] - b["content"][0, both]).abs().reshape(-1, P, C).amax((0, 1))  # per channel
    # measured 0.0019 / 0.0028 / 0.012; nearest-neighbour interpolation: 0.064 / 0.27 / 1.5,
    # taking the left neighbour: 0.064 / 0.15 / 0.92
    tol = {"absorbance": 0.01, "sg1": 0.015, "sg2": 0.05}
    for c, name in enumerate(tok.channels):
        assert diff[c] < tol[name], (name, float(diff[c]))


# ----------------------------------------------------------------------------- 3. shift equivariance
@pytest.mark.parametrize("steps", [8, 1])
def test_a_shift_of_the_grid_by_lattice_steps_shifts_the_content(tok, steps):
    """g(λ) = f(λ / e^{kδ}) is f moved up by k lattice points: on the lattice, g at k' + k = f at k'.

    k = P: patch j of g is patch j - 1 of f. Each spectrum is sampled densely (about 0.17 nm) on
    its own range, the range of f moved by the same factor, both ends between lattice points.
    """
    P = tok.patch_size
    assert steps in (1, P)
    lat = tok.lattice.double().numpy()
    a, b = np.sqrt(lat[700] * lat[701]), np.sqrt(lat[1000] * lat[1001])  # ~1070-1740 nm
    factor = np.exp(steps * STEP)
    grid_f = np.linspace(a, b, 4000)
    grid_g = np.linspace(a * factor, b * factor, 4200)  # another density: not the same native points
    xf, wf, okf, _ = padded([(grid_f, log_bands(grid_f))])
    xg, wg, okg, _ = padded([(grid_g, log_bands(grid_g / factor))])

    cf, covf = tok.channel_values(xf, wf, okf)  # [1, K, C], [1, K]
    cg, covg = tok.channel_values(xg, wg, okg)
    k = steps
    assert covf.sum() > 250 and torch.equal(covg[0, k:], covf[0, :-k]) and not covg[0, :k].any()
    m = covf[0, :-k]
    err = (cg[0, k:][m] - cf[0, :-k][m]).abs().amax()
    same = covf[0] & covg[0]
    unshifted = (cg[0][same] - cf[0][same]).abs().amax()
    assert err < 2e-3, float(err)  # measured 4.7e-4 (sg2; 6.5e-5 absorbance)
    assert unshifted > 0.1, float(unshifted)  # measured 0.18 (one step) / 1.3 (one patch): a real move

    if steps == P:  # the same through patches(): patch j of g == patch j - 1 of f
        pf, pg = tok.patches(xf, wf, okf), tok.patches(xg, wg, okg)
        jf, jg = patch_index(tok, pf), patch_index(tok, pg)
        assert pf["valid"].all() and pg["valid"].all()
        assert torch.equal(jg, jf + 1)
        perr = (pg["content"][0] - pf["content"][0]).abs().amax()
        assert perr < 2e-3, float(perr)


# ----------------------------------------------------------------------------- 4. SG = scipy
@pytest.mark.parametrize("channels", [("sg1",), ("sg2",), ("sg2", "absorbance", "sg1")])
def test_sg_channels_equal_scipy_savgol_filter_on_the_lattice(channels):
    tok = PatchTokenizer(d_model=8, channels=channels, lattice_step=STEP)
    a, b = 650, 900  # native points = lattice points a..b-1 (~1000-1480 nm)
    grid = tok.lattice[a:b]
    lam = grid.double().numpy()
    raw = (
        0.3
        + 0.7 * np.exp(-(((lam - 1300) / 40) ** 2))
        + 0.5 * np.exp(-(((lam - 1450) / 25) ** 2))
        + 1e-4 * lam
    )
    x, w, ok, _ = padded([(lam, raw)])
    w = grid[None]  # exactly the lattice's float32 values
    out, covered = tok.channel_values(x, w, ok)
    assert torch.equal(torch.nonzero(covered[0]).flatten(), torch.arange(a, b))
    x_lat = x[0].double().numpy()  # the values the tokenizer received, on the lattice

    def z(v: np.ndarray) -> np.ndarray:
        return (v - v.mean()) / v.std()

    for c, name in enumerate(channels):
        if name == "absorbance":
            ref = z(x_lat)
        else:
            ref = z(savgol_filter(x_lat, tok.sg_window, 2, deriv=1 if name == "sg1" else 2, mode="nearest"))
        got = out[0, a:b, c].double().numpy()
        assert np.abs(got - ref).max() < 1e-4, (name, np.abs(got - ref).max())  # measured 8e-7 / 4.8e-6
        assert (out[0, :a, c] == 0).all() and (out[0, b:, c] == 0).all()  # 0 where not covered


def test_snv_dt_is_scipy_detrend_and_ignores_an_offset_and_a_log_lambda_tilt():
    tok = PatchTokenizer(d_model=8, channels=("snv_dt", "absorbance"), lattice_step=STEP)
    a, b = 650, 900
    grid = tok.lattice[a:b]
    lam = grid.double().numpy()
    raw = 0.3 + 0.7 * np.exp(-(((lam - 1300) / 40) ** 2)) + 0.5 * np.exp(-(((lam - 1450) / 25) ** 2))
    from scipy.signal import detrend

    def channels(values: np.ndarray) -> torch.Tensor:
        x, _, ok, _ = padded([(lam, values)])
        return tok.channel_values(x, grid[None], ok)[0][0, a:b]  # [K, 2]

    out = channels(raw).double().numpy()
    ref = detrend(raw)  # linear detrend along the lattice index (log lambda)
    assert np.abs(out[:, 0] - ref / ref.std()).max() < 1e-4
    drifted = channels(raw + 0.4 + 0.8 * np.log(lam / 1000.0))  # offset + a tilt in log lambda
    assert (drifted[:, 0] - channels(raw)[:, 0]).abs().max() < 1e-4  # snv_dt unchanged
    assert (drifted[:, 1] - channels(raw)[:, 1]).abs().max() > 0.05  # absorbance (SNV) moved


# ----------------------------------------------------------------------------- 5. padding invariance
def _spectrum(lo: float, step: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = lo + step * np.arange(n)
    x = (w - w[0]) / (w[-1] - w[0])
    v = (
        0.5
        + rng.uniform(0, 0.3) * x
        + rng.uniform(0.2, 0.6) * np.exp(-(((x - rng.uniform(0.3, 0.7)) / 0.1) ** 2))
    )
    return w, v


def test_patch_model_embeddings_are_padding_and_batch_invariant():
    torch.manual_seed(0)
    model = build_mae("tiny").eval()
    S = [_spectrum(1100, 2.0, 350, 0), _spectrum(950, 0.5, 900, 1), _spectrum(1300, 4.0, 200, 2)]
    others = [_spectrum(400, 1.0, 1500, 3), _spectrum(1600, 3.0, 250, 4)]
    meta = torch.tensor([[1, 2, 3], [0, 1, 4], [2, 2, 2]])
    meta_o = torch.tensor([[3, 3, 3], [1, 0, 1]])
    order = [3, 2, 0, 4, 1]  # mixed batch: others[0], S[2], S[0], others[1], S[1]
    pool, pool_meta = [*S, *others], torch.cat([meta, meta_o])
    mixed_rows, mixed_meta = [pool[i] for i in order], pool_meta[order]
    back = [order.index(i) for i in range(3)]  # where S[i] sits in the mixed batch

    for kind in READOUTS:
        base = model.embed(*padded(S), meta=meta, kind=kind)
        garbage = model.embed(*padded(S, L=1100, pad_w=437.0, pad_v=7.5), meta=meta, kind=kind)
        mixed = model.embed(*padded(mixed_rows, L=1600, pad_w=2222.0, pad_v=-3.0), meta=mixed_meta, kind=kind)
        alone = torch.cat([model.embed(*padded([S[i]]), meta=meta[i : i + 1], kind=kind) for i in range(3)])
        for other in (garbage, mixed[back], alone):
            torch.testing.assert_close(other, base, atol=1e-5, rtol=0)  # measured <= 7e-7
        assert (base[0] - base[1]).abs().max() > 0.1  # different spectra: different embeddings

    # the masked path (pretraining): a wavelength-defined mask, so each row's mask is the same alone
    def masked(rows, m, **kw):
        x, w, ok, level = padded(rows, **kw)
        mask = ok & (w > 1350) & (w < 1450)
        return {"values": x, "wavelengths": w, "valid": ok, "level": level, "mask": mask, "meta": m}

    with torch.no_grad():
        emb = model.forward_encoder(masked(S, meta, L=1000, pad_w=437.0, pad_v=7.5)).embedding
        emb_alone = torch.cat(
            [model.forward_encoder(masked([S[i]], meta[i : i + 1])).embedding for i in range(3)]
        )
        emb_full = model.embed(*padded(S), meta=meta)
    torch.testing.assert_close(emb_alone, emb, atol=1e-5, rtol=0)
    assert (emb - emb_full).abs().max() > 1e-3  # the masked patches were dropped
    # the masked-patch loss: the batch's is the per-row losses weighted by their masked patches
    with torch.no_grad():
        loss = model(masked(S, meta, L=1000, pad_w=437.0, pad_v=7.5))[0]
        rows = [masked([S[i]], meta[i : i + 1]) for i in range(3)]
        losses = torch.stack([model(r)[0] for r in rows])
        counts = torch.stack([model.forward_encoder(r).input.masked.sum() for r in rows]).float()
    assert counts.min() >= 1 and counts.max() > counts.min()  # unequal rows: padding slots in M
    torch.testing.assert_close(loss, (losses * counts).sum() / counts.sum(), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- 6. pretraining
def _toy_view(raw: torch.Tensor, w: torch.Tensor, ok: torch.Tensor, g: torch.Generator) -> dict:
    x, level = normalise(raw, ok)
    mask = block_mask(ok, mask_ratio=0.5, min_block=5, max_block=30, generator=g)
    return {"values": x, "wavelengths": w.float(), "valid": ok, "level": level, "mask": mask}


def toy_batch(B: int = 8, seed: int = 0) -> dict:
    """Smooth random spectra (2 nm grids, 200-350 points), a 50 % block mask and a nuisance-only view2."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(200, 351, (B,), generator=g)
    L = int(n.max())
    ok = torch.arange(L)[None] < n[:, None]
    start = 1000 + 200 * torch.rand(B, 1, generator=g)
    w = torch.where(ok, start + 2.0 * torch.arange(L)[None], 1000.0).double()
    x = (w - start) / (2.0 * n[:, None])
    centre = 0.3 + 0.4 * torch.rand(B, 1, generator=g)
    raw = 0.5 + 0.3 * torch.rand(B, 1, generator=g) * x
    raw = torch.where(
        ok, raw + (0.2 + 0.5 * torch.rand(B, 1, generator=g)) * torch.exp(-(((x - centre) / 0.1) ** 2)), 0
    )
    batch = _toy_view(raw, w, ok, g)
    batch["meta"] = torch.randint(0, 5, (B, 3), generator=g)
    aug = Augmenter(p_shift=0, p_band_mask=0, p_blur=0.5, p_response=0.5)
    view2 = _toy_view(aug(raw, w, ok, g), w, ok, g)
    batch["view2"] = {**view2, "meta": batch["meta"]}
    return batch


@pytest.mark.parametrize(
    "weights",
    [{"mae": 1.0}, {"contrastive": 1.0}, {"mae": 1.0, "contrastive": 0.05}],
    ids=["mae", "vicreg", "both"],
)
def test_patch_pretraining_objective_is_finite_and_falls(weights):
    torch.manual_seed(0)
    model = build_mae("tiny")
    batch = toy_batch()
    objective = PretrainObjective(model, weights)
    if "mae" in weights:  # there are masked patches to reconstruct, and the encoder drops them
        assert model.forward_encoder(batch).input.masked.sum() >= 8
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    totals, maes = [], []
    for step in range(30):
        total, terms = objective(batch)
        assert torch.isfinite(total), terms
        opt.zero_grad()
        total.backward()
        if step == 0:  # every term trains the encoder, down to the patch projection
            grad = model.encoder.tokenizer.proj.weight.grad
            assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
        opt.step()
        totals.append(total.item())
        maes.append(terms.get("mae", total).item())
    # measured last/first 0.31-0.43 (mae), 0.43-0.46 (contrastive), 0.38-0.43 (both), 3 seeds
    assert totals[-1] < 0.7 * totals[0], totals
    assert maes[-1] < 0.7 * maes[0], maes


# ----------------------------------------------------------------------------- 7. exact resume
def test_patch_model_resume_gives_identical_weights(tmp_path, monkeypatch):
    from test_train import TINY, make_tiny_store

    import vitnirs.train.loop as loop
    from vitnirs.checkpoint import latest_checkpoint, load_model

    monkeypatch.setattr(loop, "plot_loss_curve", lambda *a, **k: None)  # matplotlib: seconds, not under test
    store = make_tiny_store(tmp_path / "store")
    cfg = load_config(
        overrides=[
            *TINY, "model.channels=[absorbance,sg1,sg2]", "losses.contrastive_weight=0.1",
            "training_strategy.steps_per_epoch=2", "training.checkpoint_every=1",
        ]
    )  # fmt: skip
    straight = loop.pretrain(cfg, store=store, run_dir=tmp_path / "a", progress=False)
    assert straight["steps"] == 4
    loop.pretrain(cfg, store=store, run_dir=tmp_path / "b", max_steps=2, progress=False)
    assert latest_checkpoint(tmp_path / "b").name == "step_0000002"
    halfway, _ = load_model(latest_checkpoint(tmp_path / "b"))
    resumed = loop.pretrain(cfg, store=store, run_dir=tmp_path / "b", resume=True, progress=False)
    assert resumed["start_step"] == 2 and resumed["steps"] == 4
    a, _ = load_model(latest_checkpoint(tmp_path / "a"))
    b, info = load_model(latest_checkpoint(tmp_path / "b"))
    assert a.encoder.tokenizer.channels == b.encoder.tokenizer.channels == ALL_CHANNELS
    assert info.step == 4
    moved = False
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
        moved = moved or not torch.equal(value, halfway.state_dict()[key])
    assert moved  # steps 3-4 changed the weights: equality is not trivial


# ----------------------------------------------------------------------------- 8. config
def test_config_accepts_patch_tokens_and_channels():
    cfg = load_config(overrides=["model.channels=[absorbance,sg1,sg2]"])
    assert cfg.model.tokenizer == "patch" and cfg.model.channels == list(ALL_CHANNELS)
    with pytest.raises(ConfigError, match=r"model\.channels.*snv2"):
        load_config(overrides=["model.channels=[absorbance,snv2]"])
    with pytest.raises(ConfigError, match=r"model\.tokenizer"):
        load_config(overrides=["model.tokenizer=points"])
    with pytest.raises(ConfigError, match=r"tokens"):  # retired (a YAML key says so: config test)
        load_config(overrides=["model.tokens=patch"])

    for channels, patch_size in ((ALL_CHANNELS, 8), (("absorbance",), 4), (("sg1", "sg2"), 6)):
        model = build_mae("tiny", channels=list(channels), patch_size=patch_size)
        assert model.decoder.out_dim == patch_size * len(channels)
        assert model.encoder.tokenizer.proj.in_features == patch_size * len(channels)
    from vitnirs.train.loop import build_model  # and from the config, as the training loop builds it

    overrides = ["model.preset=tiny", "model.channels=[absorbance,sg1,sg2]", "model.patch_size=4"]
    model = build_model(load_config(overrides=overrides))
    assert model.decoder.out_dim == 4 * 3
    with pytest.raises(ValueError, match="snv2"):
        build_mae("tiny", channels=["absorbance", "snv2"])
