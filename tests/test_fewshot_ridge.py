"""The few-shot ridge term: its closed form is sklearn's Ridge with intercept, its gradient is
the finite-difference one, it reads linear embeddings and not shuffled labels, and through the
objective it picks each group's rows, trains the encoder and is a graph-keeping zero without groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from test_losses import pretrain_batch

from vitnirs.config import Config, LossesConfig
from vitnirs.model import build_mae
from vitnirs.train.objectives import PretrainObjective, build_terms, term_classes
from vitnirs.train.objectives.fewshot_ridge import FewShotRidge, group_rows, ridge_task_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def dirichlet(shape: tuple[int, ...], gen: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """Flat Dirichlet weights over the last axis (normalised exponentials), from ``gen``."""
    e = -torch.log(torch.rand(shape, generator=gen, dtype=dtype))
    return e / e.sum(-1, keepdim=True)


def toy_tasks(g: int, s: int, q: int, d: int, k: int, seed: int = 0, dtype=torch.float64):
    """G tasks of S support + Q query rows: Dirichlet weights (G, S+Q, K), embeddings (G, S+Q, D)
    linear in them plus noise."""
    gen = torch.Generator().manual_seed(seed)
    y = dirichlet((g, s + q, k), gen, dtype)
    z = y @ torch.randn(g, k, d, generator=gen, dtype=dtype) + 0.3 * torch.randn(
        g, s + q, d, generator=gen, dtype=dtype
    )
    return z[:, :s], y[:, :s], z[:, s:], y[:, s:]


# ----------------------------------------------------------------------------- the pure function
def test_closed_form_is_sklearn_ridge_with_intercept():
    zs, ys, zq, yq = toy_tasks(g=3, s=6, q=5, d=10, k=3)
    lam = 0.3
    got = ridge_task_loss(zs, ys, zq, yq, lam)
    assert got.shape == (3,) and got.dtype == torch.float64
    for i in range(3):
        Zs, Ys, Zq, Yq = (t[i].numpy() for t in (zs, ys, zq, yq))
        alpha = lam * np.mean(np.sum((Zs - Zs.mean(0)) ** 2, axis=1))  # λ' = lam · mean ||zs - z̄||²
        pred = Ridge(alpha=alpha, fit_intercept=True).fit(Zs, Ys).predict(Zq)
        expected = np.mean((pred - Yq) ** 2) / np.mean(Yq.var(axis=0))  # MSE / mean column variance
        np.testing.assert_allclose(got[i].item(), expected, rtol=1e-6)


def test_loss_is_invariant_to_the_embedding_scale_and_zero_label_columns():
    zs, ys, zq, yq = toy_tasks(g=2, s=4, q=4, d=16, k=2, seed=1)
    base = ridge_task_loss(zs, ys, zq, yq, 0.1)
    torch.testing.assert_close(ridge_task_loss(7.5 * zs, ys, 7.5 * zq, yq, 0.1), base, rtol=1e-10, atol=0)
    pad = torch.nn.functional.pad  # the batch's mix_weights: K columns, zero-padded to 4
    torch.testing.assert_close(
        ridge_task_loss(zs, pad(ys, (0, 2)), zq, pad(yq, (0, 2)), 0.1), base, rtol=1e-10, atol=0
    )


def test_gradient_matches_finite_differences():
    zs, ys, zq, yq = toy_tasks(g=2, s=3, q=3, d=5, k=3, seed=2)
    zs.requires_grad_(True)
    zq.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: ridge_task_loss(a, ys, b, yq, 0.2), (zs, zq), eps=1e-6, atol=1e-7, rtol=1e-5
    )


def test_a_linear_embedding_is_read_off_shuffled_labels_are_not():
    zs, ys, zq, yq = toy_tasks(g=64, s=6, q=6, d=32, k=3, seed=3)
    gen = torch.Generator().manual_seed(3)
    A = torch.randn(3, 32, generator=gen, dtype=torch.float64)
    perfect = ridge_task_loss(ys @ A, ys, yq @ A, yq, 1e-6)  # noise-free z = y A
    assert perfect.max().item() < 1e-3
    shuffled = yq[:, torch.randperm(6, generator=gen)]  # query labels no longer match their rows
    assert ridge_task_loss(ys @ A, ys, yq @ A, shuffled, 0.1).mean().item() > 0.9


def test_float32_under_autocast():
    zs, ys, zq, yq = (t.to(torch.bfloat16) for t in toy_tasks(g=2, s=4, q=4, d=8, k=2, seed=4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ridge_task_loss(zs, ys, zq, yq, 0.1)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


# ----------------------------------------------------------------------------- grouping
def test_group_rows_keeps_row_order_and_drops_small_groups():
    group = torch.tensor([2, 0, -1, 0, 2, 1, 0, 2, 0, 1, 2, 3, 3, 3, 3, 3])
    by_size = {rows.shape[1]: rows.tolist() for rows in group_rows(group)}
    assert by_size == {4: [[1, 3, 6, 8], [0, 4, 7, 10]], 5: [[11, 12, 13, 14, 15]]}  # group 1: 2 rows
    assert group_rows(torch.full((6,), -1)) == []


# ----------------------------------------------------------------------------- through the objective
def mixture_batch(mix_group: list[int], seed: int = 0) -> dict:
    """``pretrain_batch`` plus the mixture keys: ``mix_group`` as given, Dirichlet weights over
    K = 3 components, zero-padded to 4 columns (all zero outside a group)."""
    batch = pretrain_batch([120, 80, 100, 110] * (len(mix_group) // 4), seed=seed)
    group = torch.tensor(mix_group)
    weights = dirichlet((len(mix_group), 3), torch.Generator().manual_seed(seed), torch.float32)
    batch["mix_group"] = group
    batch["mix_weights"] = torch.nn.functional.pad(weights, (0, 1)) * (group >= 0)[:, None]  # (B, 4)
    return batch


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    return build_mae("tiny").eval()


def test_the_term_trains_the_encoder_on_each_groups_rows():
    # groups 0 and 1 interleaved (4 rows each), group 2 too small (2 rows), group 3 of 5 rows
    batch = mixture_batch([0, 1, 0, 1, 0, 1, 0, 1, -1, 2, 2, 3, 3, 3, 3, 3])
    model = tiny()
    objective = PretrainObjective(model, [FewShotRidge(1.0, lam=0.1)])
    total, logged = objective(batch)
    assert torch.isfinite(total) and logged["fewshot_ridge_groups"].item() == 3
    # the same value by hand: support = the first half of each group's rows (2 of 4, 2 of 5)
    emb, w = model.forward_encoder(batch).embedding.detach(), batch["mix_weights"]
    tasks = [([0, 2], [4, 6]), ([1, 3], [5, 7]), ([11, 12], [13, 14, 15])]
    expected = [ridge_task_loss(emb[None, s], w[None, s], emb[None, q], w[None, q], 0.1) for s, q in tasks]
    assert total.item() == pytest.approx(torch.cat(expected).mean().item(), rel=1e-5)
    total.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > len(grads) // 2


@pytest.mark.parametrize("drop_keys", [False, True])
def test_no_group_gives_a_zero_that_backpropagates(drop_keys):
    batch = mixture_batch([-1] * 8)
    if drop_keys:
        del batch["mix_group"], batch["mix_weights"]
    model = tiny()
    total, logged = PretrainObjective(model, {"fewshot_ridge": 0.5})(batch)
    assert total.item() == 0.0 and logged["fewshot_ridge_groups"].item() == 0
    total.backward()  # the encoder is in the graph (DDP sees every parameter used)
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- config
def test_build_terms_picks_the_term_from_the_config():
    assert "fewshot_ridge" in term_classes()
    model = tiny()
    losses = Config().losses
    assert losses.fewshot_ridge_weight == 0.0 and losses.fewshot_ridge_lambda == 0.1
    assert "fewshot_ridge" not in [t.name for t in build_terms(losses, model=model)]
    on = losses.model_copy(update={"fewshot_ridge_weight": 0.2, "fewshot_ridge_lambda": 0.05})
    (term,) = [t for t in build_terms(on, model=model) if t.name == "fewshot_ridge"]
    assert isinstance(term, FewShotRidge) and (term.weight, term.lam) == (0.2, 0.05)
    with pytest.raises(ValueError, match="fewshot_ridge_lambda"):
        LossesConfig(fewshot_ridge_lambda=0.0)
