"""Mixtures of real spectra (vitnirs.batching.mixtures) and their place in PretrainData's batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import absorbance_table, batch_settings

from vitnirs.batching.collate import raw_rows
from vitnirs.batching.loader import PretrainData
from vitnirs.batching.mixtures import MAX_COMPONENTS, cat_rows, mix_rows, plan_mixtures
from vitnirs.data.prepare import prepare, table_jobs

TOL = dict(rtol=1e-6, atol=1e-6)  # float32 sums of a few terms


def _rows(values: list[np.ndarray], start: float = 1000.0) -> list[dict]:
    return [
        {
            "values": v,
            "wavelengths": np.linspace(start, start + 800, len(v)),
            "baseline": 0.1 * v,
            "meta": [1],
        }
        for v in values
    ]


def test_a_mixture_of_copies_of_one_spectrum_is_that_spectrum():
    x = np.random.default_rng(0).normal(1.0, 0.3, 60).astype(np.float32)
    base = raw_rows(_rows([x, x, x, x]))  # one group of K = 4 copies
    w = np.random.default_rng(1).dirichlet(np.ones(4), size=5).astype(np.float32)[None]  # [1, 5, 4]
    out = mix_rows(base, w)
    assert out.values.shape == (5, 60)
    torch.testing.assert_close(out.values, torch.from_numpy(x).expand(5, -1), **TOL)
    torch.testing.assert_close(out.baseline, 0.1 * torch.from_numpy(x).expand(5, -1), **TOL)


def test_a_mixture_is_the_weighted_sum_on_the_first_rows_grid():
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=40).astype(np.float32) for _ in range(8)]
    base = raw_rows(_rows(xs))  # two groups of K = 4
    w = rng.dirichlet(np.ones(4), size=(2, 3)).astype(np.float32)  # [G=2, M=3, K=4]
    out = mix_rows(base, w)
    want = np.einsum("gmk,gkl->gml", w, np.stack(xs).reshape(2, 4, 40)).reshape(6, 40)
    np.testing.assert_allclose(out.values.numpy(), want, rtol=1e-5, atol=1e-6)
    assert torch.equal(out.wavelengths[3], base.wavelengths[4]) and not out.is_synthetic.any()
    both = cat_rows(raw_rows(_rows([xs[0][:10]])), out)  # padded to the wider
    assert both.values.shape == (7, 40) and both.valid[0].sum() == 10 and both.valid[1:].all()


def test_plan_weights_are_convex_and_use_distinct_real_spectra():
    sizes, synthetic = np.array([50, 3, 40]), np.array([False, False, True])
    rng = np.random.default_rng(3)
    for _ in range(20):
        plan = plan_mixtures(
            np.array([0, 1, 2] * 8), sizes, synthetic, p_mix=0.7, group=4, max_components=4, rng=rng
        )
        G = plan.weights.shape[0]
        assert plan.weights.shape == (G, 4, MAX_COMPONENTS) and G == 4  # round(0.7 * 24 / 4)
        np.testing.assert_allclose(plan.weights.sum(-1), 1.0, rtol=1e-5)
        assert not synthetic[plan.dataset].any()
        for g in range(G):
            k = int((plan.weights[g] > 0).any(0).sum())
            rows = plan.rows[g * MAX_COMPONENTS : g * MAX_COMPONENTS + k]
            assert 2 <= k <= min(4, sizes[plan.dataset[g * MAX_COMPONENTS]]) and len(set(rows)) == k
    none = dict(sizes=sizes, synthetic=synthetic, group=4, max_components=4, rng=rng)
    assert plan_mixtures(np.array([0, 1] * 8), p_mix=0.0, **none) is None
    assert plan_mixtures(np.array([2] * 16), p_mix=1.0, **none) is None  # no real spectrum drawn


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("mixstore")
    rng = np.random.default_rng(4)
    tables = [
        absorbance_table(name, 0.5 + rng.uniform(0, 0.5, (n, 1)) * np.ones((1, len(g))), g)
        for name, n, g in (("a", 30, np.linspace(1000, 2400, 300)), ("b", 20, np.linspace(1100, 2500, 280)))
    ]
    prepare(table_jobs(tables, "real"), path, progress=False)
    return path


def test_batches_carry_mixtures_as_their_last_rows_with_two_renders(store):
    s = batch_settings(batch_size=16, p_synth=0.0, seed=1, p_mix=0.5, mix_group=4, two_views=True)
    data = PretrainData(store, settings=s, regions=("NIR",))
    b = data.batch(3)
    group, w = b["mix_group"], b["mix_weights"]
    assert group.shape == (16,) and w.shape == (16, MAX_COMPONENTS)
    assert (group[:8] == -1).all() and torch.equal(group[8:], torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    torch.testing.assert_close(w[8:].sum(1), torch.ones(8), **TOL)
    assert (w[:8] == 0).all()
    for g in (0, 1):  # one dataset per group, rendered twice with their own nuisances
        rows = group == g
        assert len(set(b["dataset_id"][rows].tolist())) == 1
        assert torch.equal(b["view2"]["dataset_id"][rows], b["dataset_id"][rows])
    assert not torch.equal(b["view2"]["values"][8:], b["values"][8:])
    assert torch.equal(PretrainData(store, settings=s, regions=("NIR",)).batch(3)["values"], b["values"])
    plain = PretrainData(store, settings=batch_settings(batch_size=16, p_synth=0.0, seed=1), regions=("NIR",))
    assert "mix_group" not in plain.batch(3)
