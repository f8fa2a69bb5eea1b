"""Pretraining losses: minimal for identical inputs, growing with difference, gradients flow;
the objective encodes every view in one call (the design itself: tests/test_objectives.py)."""

from __future__ import annotations

import math

import pytest
import torch

from vitnirs.batching.contract import PAD_WAVELENGTH
from vitnirs.batching.masking import block_mask
from vitnirs.model import build_mae
from vitnirs.train.objectives import PretrainObjective, combine, concat_views
from vitnirs.train.objectives.baseline import baseline_consistency
from vitnirs.train.objectives.contrastive import contrastive, info_nce, vicreg


def emb(b: int = 32, d: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed))


def test_baseline_consistency_zero_for_identical_and_grows():
    z = emb()
    assert baseline_consistency(z, z).item() == pytest.approx(0.0, abs=1e-6)
    assert baseline_consistency(z, 3.0 * z).item() == pytest.approx(0.0, abs=1e-6)  # scale-free
    small = baseline_consistency(z, z + 0.1 * emb(seed=1)).item()
    large = baseline_consistency(z, z + 2.0 * emb(seed=1)).item()
    assert 0 < small < large <= 2.0


def test_vicreg_invariance_zero_for_identical_and_grows():
    z = emb()
    same = vicreg(z, z)
    assert same["invariance"].item() == 0.0
    assert vicreg(z, z + 0.1 * emb(seed=1))["invariance"] < vicreg(z, z + emb(seed=1))["invariance"]
    assert set(same) == {"invariance", "variance", "covariance", "total"}


def test_vicreg_variance_fights_collapse():
    collapsed = torch.ones(32, 16) + 1e-3 * emb()
    spread = 2.0 * emb()
    assert vicreg(collapsed, collapsed)["variance"].item() > 0.9
    assert vicreg(spread, spread)["variance"].item() < 0.1
    # The gradient of the variance term pushes a collapsed batch apart.
    z = collapsed.clone().requires_grad_(True)
    vicreg(z, z.detach(), sim=0, var=1, cov=0)["total"].backward()
    with torch.no_grad():
        spread_after = (z - 0.5 * z.grad).std(0).mean()
    assert spread_after > collapsed.std(0).mean()


def test_info_nce_minimal_for_identical_and_chance_for_random():
    z = 10 * emb()
    assert info_nce(z, z, temperature=0.1).item() < 0.05
    chance = info_nce(emb(512, 64), emb(512, 64, seed=1), temperature=1.0).item()
    assert chance == pytest.approx(math.log(512), rel=0.05)
    assert contrastive(z, z, "infonce")["total"].item() < 0.05
    with pytest.raises(ValueError, match="vicreg"):
        contrastive(z, z, "nope")


@pytest.mark.parametrize("kind", ["vicreg", "infonce"])
def test_gradients_flow(kind):
    z1 = emb().requires_grad_(True)
    z2 = emb(seed=1).requires_grad_(True)
    total = contrastive(z1, z2, kind)["total"] + baseline_consistency(z1, z2)
    total.backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_concat_views_pads_the_shorter_view_with_the_contract_padding():
    def view(L, seed):
        g = torch.Generator().manual_seed(seed)
        return {
            "values": torch.randn(4, L, generator=g),
            "wavelengths": 1000 + torch.rand(4, L, generator=g),
            "valid": torch.ones(4, L, dtype=torch.bool),
            "level": torch.randn(4, 2, generator=g),
            "mask": torch.zeros(4, L, dtype=torch.bool),
        }

    short, long = view(3, 0), view(5, 1)
    cat = concat_views([short, long])
    assert cat["values"].shape == (8, 5) and cat["meta"] is None
    torch.testing.assert_close(cat["values"][:4, :3], short["values"])
    assert (cat["values"][:4, 3:] == 0).all() and not cat["valid"][:4, 3:].any()
    assert (cat["wavelengths"][:4, 3:] == PAD_WAVELENGTH).all()
    torch.testing.assert_close(cat["values"][4:], long["values"])
    torch.testing.assert_close(cat["level"], torch.cat([short["level"], long["level"]]))


def test_combine_weights_and_logs_every_term():
    terms = {"mae": torch.tensor(2.0), "baseline": torch.tensor(0.5), "contrastive": torch.tensor(9.0)}
    total, logged = combine(terms, {"mae": 1.0, "baseline": 0.1, "contrastive": 0.0})
    assert total.item() == pytest.approx(2.05)
    assert {k: float(v) for k, v in logged.items()} == pytest.approx(
        {"mae": 2.0, "baseline": 0.5, "contrastive": 9.0, "total": 2.05}
    )
    with pytest.raises(ValueError, match="weight"):
        combine(terms, {})


def spectra_view(lengths: list[int], g: torch.Generator, L: int | None = None) -> dict:
    """One view in the batch contract: smooth spectra on NIR grids (2-4 nm steps from 900-1100 nm,
    so >= 150 nm and several patches per row), padded at the end, block-masked."""
    b, L = len(lengths), max(lengths) if L is None else L
    valid = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]
    start = 900 + 200 * torch.rand(b, 1, generator=g)
    step = 2 + 2 * torch.rand(b, 1, generator=g)
    wl = torch.where(valid, start + step * torch.arange(L)[None, :], torch.tensor(PAD_WAVELENGTH))
    x = torch.arange(L)[None, :] / L
    values = torch.sin(6 * x + 3 * torch.rand(b, 1, generator=g)) + 0.1 * torch.randn(b, L, generator=g)
    values = torch.where(valid, values, torch.tensor(0.0))
    mask = block_mask(valid, mask_ratio=0.5, min_block=8, max_block=24, generator=g)
    return {"values": values, "wavelengths": wl, "valid": valid, "mask": mask,
            "level": torch.randn(b, 2, generator=g), "meta": torch.randint(0, 5, (b, 3), generator=g)}  # fmt: skip


def pretrain_batch(lengths: list[int] = (120, 80, 100, 120), seed: int = 0) -> dict:
    """A pretraining batch with every view: corrected and clean (same points and mask, other
    values) and view2 (its own points, mask and length)."""
    g = torch.Generator().manual_seed(seed)
    batch = spectra_view(list(lengths), g)
    b, L = batch["values"].shape
    for name in ("corrected", "clean"):
        values = batch["values"] + 0.3 * torch.randn(b, L, generator=g)
        batch[f"{name}_values"] = torch.where(batch["valid"], values, torch.tensor(0.0))
        batch[f"{name}_level"] = torch.randn(b, 2, generator=g)
    batch["view2"] = spectra_view([n - 10 for n in lengths], g)  # shorter: padded in the concatenation
    return batch


def test_objective_encodes_every_view_in_one_call_on_visible_tokens():
    """MAE + baseline + contrastive: ONE forward_encoder call on [x; x - baseline; view2], each
    view with its own mask (the encoder sees its visible tokens); the MAE term equals the
    model's own MAE loss, the baseline term the views encoded apart."""
    batch = pretrain_batch()
    b, L = batch["values"].shape
    torch.manual_seed(0)
    model = build_mae("tiny").eval()
    calls, outs = [], []
    original = model.forward_encoder

    def spy(cat):
        calls.append(cat)
        outs.append(original(cat))
        return outs[-1]

    model.forward_encoder = spy
    objective = PretrainObjective(model, {"mae": 1.0, "baseline": 0.1, "contrastive": 0.1})
    assert objective.views == ["input", "corrected", "view2"]
    total, terms = objective(batch)
    model.forward_encoder = original
    (cat,) = calls
    assert cat["values"].shape == (3 * b, L) and cat["meta"].shape == (3 * b, 3)
    assert torch.equal(cat["values"][:b], batch["values"])
    assert torch.equal(cat["values"][b : 2 * b], batch["corrected_values"])
    assert torch.equal(cat["level"][b : 2 * b], batch["corrected_level"])
    assert torch.equal(cat["mask"][:b], batch["mask"]) and torch.equal(cat["mask"][b : 2 * b], batch["mask"])
    L2 = batch["view2"]["values"].shape[1]
    assert (
        torch.equal(cat["mask"][2 * b :, :L2], batch["view2"]["mask"])
        and not cat["valid"][2 * b :, L2:].any()
    )
    # masked tokens are dropped: each row's encoder tokens are its visible (valid, unmasked) tokens
    tokens = outs[0].input
    assert tokens.masked.any() and (tokens.valid & ~tokens.masked).any(1).all()
    assert torch.equal(outs[0].valid.sum(1), (tokens.valid & ~tokens.masked).sum(1))
    assert set(terms) == {"mae", "baseline", "contrastive", "total"} | {
        f"contrastive_{k}" for k in ("invariance", "variance", "covariance")
    }
    assert terms["mae"].item() == pytest.approx(model(batch)[0].item(), rel=1e-5)
    alone = [model.forward_encoder(v).embedding for v in (batch, {**batch, "values": batch["corrected_values"],
             "level": batch["corrected_level"]})]  # fmt: skip
    assert terms["baseline"].item() == pytest.approx(baseline_consistency(*alone).item(), abs=1e-5)
    expected = terms["mae"] + 0.1 * terms["baseline"] + 0.1 * terms["contrastive"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
