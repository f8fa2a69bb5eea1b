"""Pretraining losses: minimal for identical inputs, growing with difference, gradients flow."""

from __future__ import annotations

import math

import pytest
import torch

from vitnirs.batching.contract import PAD_WAVELENGTH
from vitnirs.train.losses import baseline_consistency, combine, concat_views, contrastive, info_nce, vicreg


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


def test_objective_encodes_every_view_in_one_call_on_visible_points():
    """MAE + baseline + contrastive: ONE forward_encoder call on [x; x - baseline; view2], each
    view on its visible (unmasked) points; the MAE term equals the model's own MAE loss."""
    from vitnirs.batching.masking import block_mask
    from vitnirs.model import build_mae
    from vitnirs.train.losses import PretrainObjective

    g = torch.Generator().manual_seed(0)
    b, length = 6, 40

    def view() -> dict:
        valid = torch.ones(b, length, dtype=torch.bool)
        valid[0, 30:] = False  # one shorter spectrum: padding
        mask = block_mask(valid, mask_ratio=0.5, min_block=3, max_block=6, generator=g)
        wl = torch.linspace(1000, 2000, length).expand(b, length).clone()
        return {"values": torch.randn(b, length, generator=g), "wavelengths": wl, "valid": valid,
                "mask": mask, "level": torch.randn(b, 2, generator=g)}  # fmt: skip

    batch = view()
    batch.update(
        corrected_values=torch.randn(b, length, generator=g), corrected_level=torch.randn(b, 2, generator=g)
    )
    batch["view2"] = view()
    torch.manual_seed(0)
    model = build_mae("tiny").eval()
    calls = []
    original = model.forward_encoder

    def spy(cat):
        calls.append(cat)
        return original(cat)

    model.forward_encoder = spy
    objective = PretrainObjective(model, weights={"mae": 1.0, "baseline": 0.1, "contrastive": 0.1})
    total, terms = objective(batch)
    assert len(calls) == 1 and calls[0]["values"].shape[0] == 3 * b
    assert torch.equal(calls[0]["mask"][:b], batch["mask"]) and torch.equal(
        calls[0]["mask"][b : 2 * b], batch["mask"]
    )
    assert torch.equal(calls[0]["mask"][2 * b :], batch["view2"]["mask"])
    assert {"mae", "baseline", "contrastive", "total"} <= set(terms)
    model.forward_encoder = original
    assert terms["mae"].item() == pytest.approx(model(batch)[0].item(), rel=1e-5)
    total.backward()
