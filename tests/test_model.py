"""The model (vitnirs.model): shapes, padding invariance, absolute wavelengths, masking, loss, training."""

from __future__ import annotations

import pytest
import torch

from vitnirs.batching.masking import block_mask
from vitnirs.model import (
    PRESETS,
    SpectralMAE,
    StandardisedLinearHead,
    WavelengthEncoding,
    build_mae,
    count_parameters,
)


def make_batch(lengths: list[int], *, seed: int = 0, L: int | None = None, ratio: float = 0.5) -> dict:
    """A batch in the contract of vitnirs.batching: smooth spectra on NIR grids, padded at the end."""
    g = torch.Generator().manual_seed(seed)
    L = max(lengths) if L is None else L
    B = len(lengths)
    n = torch.tensor(lengths)
    valid = torch.arange(L)[None, :] < n[:, None]
    start = 900 + 200 * torch.rand(B, 1, generator=g)
    step = 1 + 4 * torch.rand(B, 1, generator=g)
    wavelengths = torch.where(valid, start + step * torch.arange(L)[None, :], torch.tensor(1000.0))
    x = torch.arange(L)[None, :] / n[:, None]
    values = torch.sin(6 * x + 3 * torch.rand(B, 1, generator=g)) + 0.1 * torch.randn(B, L, generator=g)
    values = torch.where(valid, values, torch.tensor(0.0))
    mask = block_mask(valid, mask_ratio=ratio, min_block=2, max_block=8, generator=g)
    return {
        "values": values,
        "wavelengths": wavelengths,
        "valid": valid,
        "mask": mask,
        "level": torch.randn(B, 2, generator=g),
        "meta": torch.randint(0, 5, (B, 3), generator=g),
    }


def row(batch: dict, i: int, L: int) -> dict:
    """Row i of a batch, cut (or padded) to length L."""
    out = {}
    for k, v in batch.items():
        v = v[i : i + 1]
        if v.dim() == 2 and k not in ("level", "meta"):
            v = v[:, :L]
        out[k] = v
    return out


def tiny(**overrides) -> SpectralMAE:
    torch.manual_seed(0)
    return build_mae("tiny", **overrides).eval()


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_shapes_and_backward(preset: str) -> None:
    model = build_mae(preset, dropout=0.1)
    batch = make_batch([40, 25, 33])
    loss, pred, mask = model(batch)
    assert loss.shape == () and torch.isfinite(loss)
    assert pred.shape == mask.shape == (3, 40)
    assert (pred[~mask] == 0).all()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    latents, embedding = model.encode(batch["values"], batch["wavelengths"], batch["valid"], batch["level"])
    d, n = PRESETS[preset]["d_model"], PRESETS[preset]["n_latents"]
    assert latents.shape == (3, n, d) and embedding.shape == (3, d)


def test_base_forward_and_sizes() -> None:
    model = build_mae("base").eval()
    with torch.no_grad():
        loss, pred, _ = model(make_batch([64, 50]))
    assert torch.isfinite(loss) and pred.shape == (2, 64)
    assert model.encoder.latents.shape == (1, 64, 128)
    sizes = {p: count_parameters(build_mae(p)) for p in ("tiny", "small", "base")}
    assert sizes["tiny"] < sizes["small"] < sizes["base"] < 2_000_000


def test_presets_reject_unknown_options() -> None:
    with pytest.raises(ValueError, match="d_modle"):
        build_mae("tiny", d_modle=3)
    with pytest.raises(ValueError, match="huge"):
        build_mae("huge")
    assert build_mae("tiny", d_model=48, n_heads=4).encoder.d_model == 48


def test_padding_invariance() -> None:
    model = tiny()
    batch = make_batch([30, 80, 55])
    emb = model.embed(batch["values"], batch["wavelengths"], batch["valid"], batch["level"], batch["meta"])
    _, pred, _ = model(batch)
    for i, n in enumerate([30, 80, 55]):
        one = row(batch, i, n)  # the same spectrum alone, without padding, same mask
        emb1 = model.embed(one["values"], one["wavelengths"], one["valid"], one["level"], one["meta"])
        torch.testing.assert_close(emb1, emb[i : i + 1], atol=1e-5, rtol=0)
        _, pred1, _ = model(one)
        torch.testing.assert_close(pred1, pred[i : i + 1, :n], atol=1e-5, rtol=0)


def test_padding_values_do_not_matter() -> None:
    model = tiny()
    batch = make_batch([20, 50])
    other = dict(batch, values=torch.where(batch["valid"], batch["values"], torch.tensor(7.0)))
    other["wavelengths"] = torch.where(batch["valid"], batch["wavelengths"], torch.tensor(400.0))
    torch.testing.assert_close(model(batch)[1], model(other)[1], atol=1e-6, rtol=0)


def test_wavelength_encoding_is_absolute() -> None:
    enc = WavelengthEncoding(16)
    grid_a = torch.tensor([[1000.0, 1450.0, 2000.0, 2500.0]])
    grid_b = torch.tensor([[1450.0, 1452.0, 1454.0, 1456.0]])
    grid_c = torch.tensor([[400.0, 700.0, 1450.0, 1000.0]])
    with torch.no_grad():
        codes = [enc(g) for g in (grid_a, grid_b, grid_c)]
    torch.testing.assert_close(codes[0][0, 1], codes[1][0, 0], atol=0, rtol=0)
    torch.testing.assert_close(codes[0][0, 1], codes[2][0, 2], atol=0, rtol=0)
    assert not torch.allclose(codes[1][0, 0], codes[1][0, 1])  # 2 nm apart: different codes
    # and inside the encoder: the token code of 1,450 nm does not depend on the rest of the grid
    model = tiny()
    with torch.no_grad():
        a = model.encoder.wavelength_encoding(grid_a)[0, 1]
        c = model.encoder.wavelength_encoding(grid_c)[0, 2]
    torch.testing.assert_close(a, c, atol=0, rtol=0)


def test_masked_tokens_are_dropped() -> None:
    model = tiny()
    batch = make_batch([40, 60])
    changed = dict(batch, values=torch.where(batch["mask"], torch.tensor(100.0), batch["values"]))
    with torch.no_grad():
        lat, emb, lat_valid = model.forward_encoder(batch)
        lat2, emb2, _ = model.forward_encoder(changed)
        full_lat, _ = model.encode(
            changed["values"], changed["wavelengths"], changed["valid"], changed["level"]
        )
    assert torch.equal(lat, lat2) and torch.equal(emb, emb2)
    assert lat_valid is None  # Perceiver latents: every one valid
    assert not torch.allclose(lat, full_lat)  # sanity: the unmasked encoder does see them


def test_loss_counts_only_real_masked_points() -> None:
    target = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    pred = torch.tensor([[2.0, 2.0, 5.0], [1.0, 50.0, -9.0]])  # row 2: slots 1-2 are padding
    masked_valid = torch.tensor([[True, True, True], [True, False, False]])
    loss = SpectralMAE.forward_loss(target, pred, masked_valid)
    assert loss.item() == pytest.approx((1 + 0 + 4 + 9) / 4)
    # end to end: the loss ignores unmasked points and padding, whatever the prediction there
    model = tiny()
    batch = make_batch([12, 30])
    loss, pred_full, mask = model(batch)
    by_hand = ((pred_full - batch["values"]) ** 2)[mask].sum() / mask.sum()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_metadata_unknown_and_none() -> None:
    batch = make_batch([30, 40])
    model = tiny()
    args = (batch["values"], batch["wavelengths"], batch["valid"], batch["level"])
    e_none = model.embed(*args, None)
    e_zero = model.embed(*args, torch.zeros(2, 3, dtype=torch.long))
    e_meta = model.embed(*args, batch["meta"])
    torch.testing.assert_close(e_none, e_zero, atol=0, rtol=0)  # None means all unknown
    assert not torch.allclose(e_none, e_meta)
    model_short = model.embed(*args, batch["meta"][:, :1])  # fewer fields: the rest unknown
    assert model_short.shape == (2, 32)
    no_meta = tiny(d_meta=0)
    assert no_meta.embed(*args, batch["meta"]).shape == (2, 32)
    with pytest.raises(ValueError, match="fields"):
        model.embed(*args, torch.zeros(2, 5, dtype=torch.long))


def test_level_token_keeps_level_and_scale() -> None:
    model = tiny()
    batch = make_batch([50, 50])
    values = batch["values"][:1].expand(2, -1)  # identical after normalisation
    level = torch.tensor([[0.2, -1.0], [0.9, 0.5]])  # different mean and log std
    args = (values, batch["wavelengths"][:1].expand(2, -1), batch["valid"][:2], level)
    emb = model.embed(*args)
    assert (emb[0] - emb[1]).abs().max() > 1e-3
    blind = tiny(level_token=False)  # the ablation: the token stays, its input is blanked
    emb = blind.embed(*args)
    torch.testing.assert_close(emb[0], emb[1], atol=0, rtol=0)
    valid = batch["valid"][:2].clone()
    valid[0] = False  # still a valid key for a row with no real point
    assert torch.isfinite(blind.embed(values, args[1], valid, level)).all()


def test_all_points_masked_or_padding_is_finite() -> None:
    model = tiny()
    batch = make_batch([10, 40])
    valid = batch["valid"].clone()
    valid[0] = False  # a row with no real point: the level token is still a key
    emb = model.embed(batch["values"], batch["wavelengths"], valid, batch["level"])
    assert torch.isfinite(emb).all()


def test_embed_restores_mode_and_encode_has_grad() -> None:
    model = build_mae("tiny").train()
    batch = make_batch([20, 20])
    args = (batch["values"], batch["wavelengths"], batch["valid"], batch["level"])
    emb = model.embed(*args)
    assert model.training and not emb.requires_grad
    _, emb = model.encode(*args)
    assert emb.requires_grad


def test_standardised_linear_head_sees_standardised_features() -> None:
    z = 1.0 + 1e-2 * torch.randn(50, 32)  # a large common part, small differences (as embeddings)
    head = StandardisedLinearHead(32, 2).fit_scale(z)
    assert head(z).shape == (50, 2)
    scaled = (z - head.mean) / head.std
    torch.testing.assert_close(scaled.mean(0), torch.zeros(32), atol=1e-3, rtol=0)
    torch.testing.assert_close(scaled.std(0, unbiased=False), torch.ones(32), atol=1e-3, rtol=0)
    assert set(head.state_dict()) == {"mean", "std", "linear.weight", "linear.bias"}


def smooth_family(n: int, L: int, g: torch.Generator) -> dict:
    """Normalised spectra: a slope plus one Gaussian band, on one NIR grid."""
    wavelengths = torch.linspace(1000.0, 2500.0, L)
    x = (wavelengths - 1000.0) / 1500.0
    centre = 0.2 + 0.6 * torch.rand(n, 1, generator=g)
    width = 0.05 + 0.15 * torch.rand(n, 1, generator=g)
    y = 0.5 + (torch.rand(n, 1, generator=g) - 0.5) * x
    y = y + torch.rand(n, 1, generator=g) * torch.exp(-(((x - centre) / width) ** 2))
    mean, std = y.mean(1, keepdim=True), y.std(1, keepdim=True)
    return {
        "values": (y - mean) / std,
        "wavelengths": wavelengths.expand(n, L).clone(),
        "valid": torch.ones(n, L, dtype=torch.bool),
        "level": torch.cat([mean, std.log()], dim=1),
    }


def test_training_reduces_heldout_mae_loss() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and steadier on a busy 2-core box
    try:
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        train, test = smooth_family(512, 48, g), smooth_family(128, 48, g)
        masking = {"mask_ratio": 0.5, "min_block": 4, "max_block": 12}
        test["mask"] = block_mask(test["valid"], **masking, generator=torch.Generator().manual_seed(1))
        model = build_mae("tiny", meta_dropout=0.0)
        with torch.no_grad():
            untrained = model.eval()(test)[0].item()
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, foreach=True)
        model.train()
        for _ in range(300):
            idx = torch.randint(0, 512, (64,), generator=g)
            batch = {k: v[idx] for k, v in train.items()}
            batch["mask"] = block_mask(batch["valid"], **masking, generator=g)
            loss = model(batch)[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            trained = model.eval()(test)[0].item()
    finally:
        torch.set_num_threads(threads)
    # predicting the mean (0) scores about 1; the untrained model about 1.4
    assert trained < 0.4 * untrained and trained < 0.5, (untrained, trained)


def test_shared_wavelength_codes_match_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU path (codes once per distinct wavelength, then gathered; the decoder's first query
    projection on those rows) gives the GPU path's values and gradients, shared grids or not."""
    torch.manual_seed(0)
    model = build_mae("tiny")
    grid = torch.linspace(1000, 2500, 40)
    wl = torch.stack([grid[torch.randperm(40)[:25].sort().values] for _ in range(3)])  # partly shared
    latents = torch.randn(3, 8, 32, requires_grad=True)
    valid = torch.ones(3, 25, dtype=torch.bool)

    def run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model.zero_grad()
        latents.grad = None
        out = model.decoder(latents, wl, valid)
        codes = model.encoder.wavelength_encoding(wl)
        (out.sum() + codes.square().sum()).backward()
        grad_q = model.decoder.blocks[0].attn.to_q.weight.grad.clone()
        return out.detach(), codes.detach(), grad_q

    shared = run()
    for enc in (model.decoder.wavelength_encoding, model.encoder.wavelength_encoding):
        monkeypatch.setattr(enc, "table", lambda w, enc=enc: (enc.mlp(enc.features(w)), None))
    direct = run()
    for a, b in zip(shared, direct, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
