"""The model (vitnirs.model): every tokenizer x trunk pair — shapes, one backward step, padding
invariance, mask invariants — then the parts (wavelength codes, side tokens, heads, presets)."""

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
from vitnirs.model.sizes import SHIPPED_PRESET, TOKENIZER_NAMES, TRUNK_KEYS
from vitnirs.model.tokenizer import TOKENIZERS
from vitnirs.model.trunks import TRUNKS

# every tokenizer x trunk pair, as (preset, overrides): a new tokenizer or trunk joins this list
PAIRS = {
    "patch x transformer": ("tiny", {}),
    "patch x perceiver": ("perceiver_tiny", {}),
}


def test_every_tokenizer_and_trunk_is_in_the_smoke_tests() -> None:
    built = {(m.encoder.tokenizer.__class__, m.encoder.trunk.__class__) for m in map(build_pair, PAIRS)}
    assert built == {(tok, trunk) for tok in TOKENIZERS.values() for trunk in TRUNKS.values()}
    assert set(TOKENIZERS) == set(TOKENIZER_NAMES) and set(TRUNKS) == set(TRUNK_KEYS)


def build_pair(name: str, **extra) -> SpectralMAE:
    preset, overrides = PAIRS[name]
    torch.manual_seed(0)
    return build_mae(preset, **{**overrides, **extra}).eval()


def make_batch(lengths: list[int], *, seed: int = 0, L: int | None = None, ratio: float = 0.5) -> dict:
    """A batch in the contract of vitnirs.batching: smooth spectra on NIR grids (2-4 nm steps,
    so 8-40 patches), padded at the end."""
    g = torch.Generator().manual_seed(seed)
    L = max(lengths) if L is None else L
    B = len(lengths)
    n = torch.tensor(lengths)
    valid = torch.arange(L)[None, :] < n[:, None]
    start = 900 + 200 * torch.rand(B, 1, generator=g)
    step = 2 + 2 * torch.rand(B, 1, generator=g)
    wavelengths = torch.where(valid, start + step * torch.arange(L)[None, :], torch.tensor(1000.0))
    x = torch.arange(L)[None, :] / n[:, None]
    values = torch.sin(6 * x + 3 * torch.rand(B, 1, generator=g)) + 0.1 * torch.randn(B, L, generator=g)
    values = torch.where(valid, values, torch.tensor(0.0))
    mask = block_mask(valid, mask_ratio=ratio, min_block=8, max_block=24, generator=g)
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


def embed(model: SpectralMAE, batch: dict, **kw) -> torch.Tensor:
    return model.embed(
        batch["values"], batch["wavelengths"], batch["valid"], batch["level"], batch.get("meta"), **kw
    )


def tiny(**overrides) -> SpectralMAE:
    return build_pair("patch x transformer", **overrides)


@pytest.mark.parametrize("pair", PAIRS)
def test_shapes_and_backward(pair: str) -> None:
    model = build_pair(pair, dropout=0.1).train()
    batch = make_batch([120, 70, 95])
    loss, pred, mask = model(batch)
    out = model.forward_encoder(batch)
    T, C = out.input.content.shape[1], model.encoder.tokenizer.content_dim
    assert loss.shape == () and torch.isfinite(loss)
    assert pred.shape == (3, T, C) and mask.shape == (3, T) and mask.dtype == torch.bool
    assert (pred[~mask] == 0).all() and bool(mask.any())
    loss.backward()
    grads = {k: p.grad for k, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), [
        k for k, g in grads.items() if g is None
    ]
    enc = model.encode(batch["values"], batch["wavelengths"], batch["valid"], batch["level"])
    D = PRESETS[PAIRS[pair][0]]["d_model"]
    N = PRESETS[PAIRS[pair][0]].get("n_latents", int(enc.input.valid.sum(1).max()))
    assert enc.tokens.shape == (3, N, D) and enc.valid.shape == (3, N) and enc.embedding.shape == (3, D)
    assert enc.embedding.requires_grad


@pytest.mark.parametrize("pair", PAIRS)
def test_padding_invariance(pair: str) -> None:
    model = build_pair(pair)
    lengths = [80, 160, 110]
    batch = make_batch(lengths)
    emb = embed(model, batch, kind="groups4")
    with torch.no_grad():
        visible = model.forward_encoder(batch).embedding
    for i, n in enumerate(lengths):
        one = row(batch, i, n)  # the same spectrum alone, without padding, same mask
        torch.testing.assert_close(embed(model, one, kind="groups4"), emb[i : i + 1], atol=1e-5, rtol=0)
        with torch.no_grad():
            torch.testing.assert_close(
                model.forward_encoder(one).embedding, visible[i : i + 1], atol=1e-5, rtol=0
            )


@pytest.mark.parametrize("pair", PAIRS)
def test_padding_values_do_not_matter(pair: str) -> None:
    model = build_pair(pair)
    batch = make_batch([60, 130])
    other = dict(batch, values=torch.where(batch["valid"], batch["values"], torch.tensor(7.0)))
    other["wavelengths"] = torch.where(batch["valid"], batch["wavelengths"], torch.tensor(400.0))
    with torch.no_grad():
        torch.testing.assert_close(model(batch)[1], model(other)[1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("pair", PAIRS)
def test_mask_invariants(pair: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Masked tokens are a subset of the valid ones, dropped from the trunk's input (their vectors do
    not matter), and the loss is the MSE over the masked tokens' content and nothing else."""
    model = build_pair(pair)
    batch = make_batch([100, 140])
    with torch.no_grad():
        out = model.forward_encoder(batch)
        loss, pred, mask = model(batch)
    tokens = out.input
    assert not (tokens.masked & ~tokens.valid).any() and torch.equal(mask, tokens.masked)
    if pair.endswith("transformer"):  # its output is the visible tokens themselves
        assert torch.equal(out.valid.sum(1), (tokens.valid & ~tokens.masked).sum(1))
    by_hand = ((pred - tokens.content) ** 2)[mask].sum() / (mask.sum() * tokens.content.shape[-1])
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    tokenizer = model.encoder.tokenizer
    original = type(tokenizer).forward

    def poisoned(self, *args, **kw):  # the masked tokens' vectors made huge
        t = original(self, *args, **kw)
        t.vectors = torch.where(t.masked[..., None], torch.full_like(t.vectors, 1e3), t.vectors)
        return t

    monkeypatch.setattr(type(tokenizer), "forward", poisoned)
    with torch.no_grad():
        again = model.forward_encoder(batch)
    torch.testing.assert_close(
        again.tokens[out.valid], out.tokens[out.valid], atol=0, rtol=0
    )  # padding aside
    assert not torch.allclose(embed(model, batch), out.embedding)  # sanity: unmasked, they are read


def test_forward_loss_counts_only_real_masked_tokens() -> None:
    target = torch.tensor([[[1.0], [2.0], [3.0]], [[4.0], [0.0], [0.0]]])
    pred = torch.tensor([[[2.0], [2.0], [5.0]], [[1.0], [50.0], [-9.0]]])  # row 2: slots 1-2 are padding
    masked_valid = torch.tensor([[True, True, True], [True, False, False]])
    assert SpectralMAE.forward_loss(target, pred, masked_valid).item() == pytest.approx((1 + 0 + 4 + 9) / 4)


def test_the_shipped_preset_draws_the_weights_it_always_drew() -> None:
    """Seed 0 gives the initial weights of the encoder before tokenizer x trunk (issue 21): the same
    parameters, drawn in the same order (the untrained control and the demo start from them).
    Sum and sum of squares of every tensor, recorded from that code. torch's initialisers may take
    another vectorised kernel on another CPU (its log/cos differ by a float32 ulp, ~1e-7 relative
    per weight), so the tolerance is 1e-6 relative: above that, far below any change of order or
    shape (a reordered draw moves these sums by more than 1e-3 relative)."""
    recorded = {
        "small": (750.3166100867611, 4673.842476508712),
        "tiny": (207.41035690935405, 2100.126955912184),
    }
    for preset, (total, squares) in recorded.items():
        torch.manual_seed(0)
        state = build_mae(preset).state_dict().values()
        got = (
            sum(float(t.double().sum()) for t in state),
            sum(float(t.double().square().sum()) for t in state),
        )
        assert got == pytest.approx((total, squares), rel=1e-6), preset
    assert SHIPPED_PRESET == "small"


def test_presets_and_their_checks() -> None:
    with pytest.raises(ValueError, match="d_modle"):
        build_mae("tiny", d_modle=3)
    with pytest.raises(ValueError, match="huge"):
        build_mae("huge")
    with pytest.raises(ValueError, match="n_latents"):
        build_mae("tiny", trunk="perceiver")  # the Perceiver needs its sizes
    with pytest.raises(ValueError, match="perceiver trunk"):
        build_mae("tiny", n_latents=8)  # ... which no other trunk reads
    with pytest.raises(ValueError, match="trunk"):
        build_mae("tiny", trunk="mamba")
    assert build_mae("tiny", d_model=48, n_heads=4).encoder.d_model == 48
    sizes = {p: count_parameters(build_mae(p)) for p in ("tiny", "small", "base", "perceiver_base")}
    assert sizes["tiny"] < sizes["small"] < sizes["base"] < 2_000_000 and sizes["perceiver_base"] < 2_000_000


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


@pytest.mark.parametrize("pair", PAIRS)
def test_metadata_unknown_and_none(pair: str) -> None:
    batch = make_batch([90, 120])
    model = build_pair(pair)
    args = (batch["values"], batch["wavelengths"], batch["valid"], batch["level"])
    e_none = model.embed(*args, None)
    e_zero = model.embed(*args, torch.zeros(2, 3, dtype=torch.long))
    e_meta = model.embed(*args, batch["meta"])
    torch.testing.assert_close(e_none, e_zero, atol=0, rtol=0)  # None means all unknown
    assert not torch.allclose(e_none, e_meta)
    assert model.embed(*args, batch["meta"][:, :1]).shape == (2, 32)  # fewer fields: the rest unknown
    assert build_pair(pair, d_meta=0).embed(*args, batch["meta"]).shape == (2, 32)
    with pytest.raises(ValueError, match="fields"):
        model.embed(*args, torch.zeros(2, 5, dtype=torch.long))


def test_level_token_keeps_level_and_scale() -> None:
    model = tiny()
    batch = make_batch([150, 150])
    values = batch["values"][:1].expand(2, -1)  # identical after normalisation
    level = torch.tensor([[0.2, -1.0], [0.9, 0.5]])  # different mean and log std
    args = (values, batch["wavelengths"][:1].expand(2, -1), batch["valid"][:2], level)
    assert (model.embed(*args)[0] - model.embed(*args)[1]).abs().max() > 1e-3
    blind = tiny(level_token=False)  # the ablation: the token stays, its input is blanked
    emb = blind.embed(*args)
    torch.testing.assert_close(emb[0], emb[1], atol=0, rtol=0)


@pytest.mark.parametrize("pair", PAIRS)
def test_a_row_without_tokens_is_finite(pair: str) -> None:
    model = build_pair(pair)
    batch = make_batch([30, 140])
    valid = batch["valid"].clone()
    valid[0] = False  # a row with no real point: the level token is still a key
    assert torch.isfinite(model.embed(batch["values"], batch["wavelengths"], valid, batch["level"])).all()
    every = dict(batch, mask=batch["valid"].clone())  # every point masked: nothing visible
    with torch.no_grad():
        assert torch.isfinite(model(every)[0])


def test_embed_restores_mode_and_encode_has_grad() -> None:
    model = build_mae("tiny").train()
    batch = make_batch([120, 120])
    args = (batch["values"], batch["wavelengths"], batch["valid"], batch["level"])
    emb = model.embed(*args)
    assert model.training and not emb.requires_grad
    assert model.encode(*args).embedding.requires_grad


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
        train, test = smooth_family(512, 300, g), smooth_family(128, 300, g)
        masking = {"mask_ratio": 0.5, "min_block": 20, "max_block": 60}
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
        codes = model.encoder.tokenizer.position(wl)
        (out.sum() + codes.square().sum()).backward()
        grad_q = model.decoder.blocks[0].attn.to_q.weight.grad.clone()
        return out.detach(), codes.detach(), grad_q

    shared = run()
    for enc in (model.decoder.wavelength_encoding, model.encoder.tokenizer.position):
        monkeypatch.setattr(enc, "table", lambda w, enc=enc: (enc.mlp(enc.features(w)), None))
    direct = run()
    for a, b in zip(shared, direct, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
