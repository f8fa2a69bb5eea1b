"""Nuisance projection at the readout (EPO on the embedding): a planted direction is removed and the
rest left alone, k beyond the rank and k = 0, the nuisance copies, the per-group and robustness
paths, and `evaluate` with evaluation.nuisance_projection=2 (heads read the projected embedding)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import absorbance_table, tiny_checkpoint

from vitnirs.evaluate import projection
from vitnirs.evaluate.projection import (
    NUISANCE,
    NuisanceProjection,
    nuisance_copies,
    nuisance_directions,
    project_out,
    removed_shares,
)
from vitnirs.evaluate.robustness import perturb

GRID = np.arange(1100.0, 1500.0, 10.0)  # 40 points
ATOL = 1e-10  # float64 projections of O(1) embeddings


def _planted(n: int = 200, dim: int = 16, seed: int = 0):
    """Embeddings ``Z + a u`` (a per row), the unit vector ``u``, and pairs that differ by ``b u``."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, dim))
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    a, b = rng.normal(0, 3, n), rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n)
    return Z + a[:, None] * u, u, (Z, Z + b[:, None] * u)


def test_a_planted_offset_direction_is_removed_and_the_rest_kept():
    Z, u, (clean, moved) = _planted()
    V = nuisance_directions(clean, moved, 1)
    assert V.shape == (16, 1) and abs(abs(float(V[:, 0] @ u)) - 1) < ATOL
    P = project_out(Z, V)
    assert np.abs(P @ u).max() < ATOL  # nothing left along u
    np.testing.assert_allclose(P, Z - np.outer(Z @ u, u), atol=ATOL)  # the orthogonal part unchanged
    shares = removed_shares(clean, moved, V)
    assert shares["nuisance_share"] == pytest.approx(1.0, abs=1e-6)
    assert 0 < shares["variance_share"] < 0.5  # one of 16 isotropic dimensions: ~1/16


def test_k_beyond_the_rank_and_the_larger_direction_first():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(100, 12))
    u1, u2 = np.linalg.qr(rng.normal(size=(12, 2)))[0].T  # orthonormal
    sign = rng.choice([-1.0, 1.0], (100, 1))
    along = np.where(np.arange(100)[:, None] < 50, 3 * u1, 0.5 * u2)  # half the rows along u1, half u2
    moved = Z + sign * along  # rank-2 D, Dᵀ D = 450 u1 u1ᵀ + 12.5 u2 u2ᵀ
    V = nuisance_directions(Z, moved, 5)
    assert V.shape == (12, 2)  # k = 5 asked, rank 2 given
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=ATOL)
    np.testing.assert_allclose(np.abs(project_out(np.stack([u1, u2]), V)), 0, atol=ATOL)
    (v,) = nuisance_directions(Z, moved, 1).T  # the larger move
    assert abs(abs(v @ u1) - 1) < ATOL
    # an encoder that ignores the nuisance: D is float32 rounding, no direction at all
    noise = Z.astype(np.float32).astype(np.float64) * (1 + 1e-8 * rng.normal(size=Z.shape))
    assert nuisance_directions(Z, noise, 3).shape == (12, 0)


def test_k_zero_is_the_identity():
    Z, _, (clean, moved) = _planted()
    V = nuisance_directions(clean, moved, 0)
    assert V.shape == (16, 0)
    P = project_out(Z.astype(np.float32), V)
    assert P.dtype == np.float64
    np.testing.assert_array_equal(P, Z.astype(np.float32).astype(np.float64))
    with pytest.raises(ValueError, match="k must be"):
        nuisance_directions(clean, moved, -1)
    with pytest.raises(ValueError, match="same"):
        nuisance_directions(clean, moved[:-1], 1)


def _spectra(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, n)
    X = 0.3 + c[:, None] * np.exp(-0.5 * ((GRID - 1300) / 40) ** 2) + rng.normal(0, 2e-3, (n, len(GRID)))
    return X, c


def test_nuisance_copies_are_a_drift_and_a_scatter_on_their_own_seeds():
    X, _ = _spectra()
    copies = nuisance_copies(X, GRID, seed=0)
    assert list(copies) == ["drift", "scatter"] and all(c.shape == X.shape for c in copies.values())
    again = nuisance_copies(X, GRID, seed=0)
    assert all(np.array_equal(copies[k], again[k]) for k in copies)  # fixed draws
    t = (GRID - GRID.mean())[:, None]
    design = np.hstack([np.ones_like(t), t])  # [L, 2]
    drift = copies["drift"] - X  # per row a + b (λ − λ̄)
    fit = design @ np.linalg.lstsq(design, drift.T, rcond=None)[0]
    np.testing.assert_allclose(fit.T, drift, atol=1e-9)
    s = NUISANCE["drift"]
    assert 0.2 * s < np.abs(drift).max() <= 2 * s + 1e-12  # the robustness 'drift' law at s = 0.1
    for row, moved in zip(X, copies["scatter"], strict=True):  # a + b x per row, |b - 1| <= 0.1
        (b, a), *_ = np.linalg.lstsq(np.stack([row, np.ones_like(row)], 1), moved, rcond=None)
        np.testing.assert_allclose(a + b * row, moved, atol=1e-9)
        assert abs(b - 1) <= NUISANCE["scatter"] + 1e-9
    # not the robustness curves' draws (those use the seed itself)
    assert not np.allclose(copies["drift"], perturb(X, GRID, "drift", s, seed=0))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two instruments of the same 50 samples (cal / transfer / test partitions), an untrained tiny checkpoint."""
    from vitnirs.data.prepare import prepare, table_jobs

    root = tmp_path_factory.mktemp("projection")
    tables = []
    for i, name in enumerate(("toy_a", "toy_b")):
        X, y = _spectra(50)
        X = X + 0.05 * i * (1 + (GRID - GRID[0]) / np.ptp(GRID))  # instrument b: a baseline and a tilt
        part = ["cal"] * 30 + ["transfer"] * 5 + ["test"] * 15
        meta = {"sample_id": [f"s{j}" for j in range(50)], "partition": part}
        tables.append(absorbance_table(name, X, GRID, targets={"y_c": y}, metadata=meta))
    prepare(table_jobs(tables, "real"), root / "store", progress=False)
    return root, tiny_checkpoint(root / "run")


def test_groups_share_one_basis_and_perturbed_rows_use_the_clean_one(tiny, one_thread):
    from vitnirs.data.store import PreparedStore
    from vitnirs.embedding import embed_store, load_encoder

    root, ckpt = tiny
    store = PreparedStore(root / "store")
    model, info = load_encoder(ckpt)
    raw = {n: embed_store(model, store, n, info=info) for n in ("toy_a", "toy_b")}
    epo = NuisanceProjection(model, info, store, raw.__getitem__, k=2, seed=0)
    V = epo.directions(["toy_a"])
    assert V.shape[0] == raw["toy_a"].shape[1] and 1 <= V.shape[1] <= 2
    np.testing.assert_allclose(epo("toy_a"), project_out(raw["toy_a"], V), atol=ATOL)
    joint, Vg = epo.projected(["toy_a", "toy_b"]), epo.directions(["toy_a", "toy_b"])
    for name, Zp in joint.items():  # both instruments of a group in the union's basis
        np.testing.assert_allclose(Zp, project_out(raw[name], Vg), atol=ATOL)
    rows = np.arange(10, 30)
    features = epo.features("toy_a", rows)
    X = np.asarray(store.values("toy_a"), dtype=np.float64)
    scale = np.abs(raw["toy_a"]).max()
    # the clean rows through the robustness path: the projected clean embedding (batch rounding only)
    np.testing.assert_allclose(features(X[rows]), epo("toy_a")[rows], atol=1e-5 * scale)
    moved = features(perturb(X[rows], GRID, "drift", 0.3, seed=0))  # projected with the clean V
    assert np.abs(moved @ V).max() < 1e-9 * scale
    assert set(epo.stats) == {("toy_a",), ("toy_a", "toy_b")}


def test_evaluate_projects_every_encoder_source_and_writes_the_record(
    tiny, tmp_path, monkeypatch, one_thread
):
    from vitnirs.config import load_config
    from vitnirs.evaluate import robustness, transfer
    from vitnirs.workflows import evaluation
    from vitnirs.workflows.evaluation import evaluate

    root, ckpt = tiny
    bases, features = [], []  # every V fitted, every feature matrix the heads saw
    fitted = projection.nuisance_directions
    monkeypatch.setattr(projection, "nuisance_directions", lambda *a: bases.append(fitted(*a)) or bases[-1])
    heads = evaluation.run_heads
    monkeypatch.setattr(evaluation, "run_heads", lambda Z, *a, **kw: features.append(Z) or heads(Z, *a, **kw))
    curves, calls = robustness.robustness_curves, []
    monkeypatch.setattr(
        robustness, "robustness_curves", lambda *a, **kw: calls.append(kw) or curves(*a, **kw)
    )
    pairs, shared = transfer.transfer_pairs, []
    monkeypatch.setattr(transfer, "transfer_pairs", lambda *a, **kw: shared.append(kw) or pairs(*a, **kw))
    monkeypatch.setattr(transfer, "INSTRUMENT_GROUPS", {"toy": ["toy_a", "toy_b"]})
    cfg = load_config(None, [
        "evaluation.datasets=[toy_a]", "evaluation.baseline_methods=[pls_raw]",
        "evaluation.downstream_methods=[ridge]", "evaluation.repeats=0", "evaluation.transfer_k=[0]",
        "evaluation.robustness_kinds=[drift]", "evaluation.synthetic_checks=false", "evaluation.artefacts=false",
        "evaluation.untrained_seeds=[0]", "evaluation.classical_control=false", "evaluation.nuisance_projection=2",
    ])  # fmt: skip
    evaluate(cfg, checkpoint=ckpt, store=root / "store", out=tmp_path / "eval", progress=False)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    record = saved["nuisance_projection"]
    assert record["k"] == 2 and record["nuisance"] == NUISANCE
    assert set(record["datasets"]) == {"toy_a"} and set(record["groups"]) == {"toy_a+toy_b"}
    for where, pairs_ in (("datasets", 100), ("groups", 200)):  # rows × (drift, scatter)
        stats = next(iter(record[where].values()))
        assert set(stats) == {"embedding", "untrained_seed0"}
        for s in stats.values():
            assert 1 <= s["directions"] <= 2 and s["pairs"] == pairs_
            assert 0 < s["nuisance_share"] <= 1 + 1e-9 and 0 <= s["variance_share"] <= 1 + 1e-9
    assert len(bases) == 4 and features  # per encoder: toy_a's basis and the group's
    for Z in features:  # each feature source the heads read is orthogonal to its encoder's basis
        scale = np.abs(Z).max()
        assert min(np.abs(Z @ V).max() for V in bases) < 1e-9 * scale
    # robustness: the encoder and its untrained control embed perturbed rows through the projection
    assert len(calls) == 2 and all(callable(kw.get("features")) for kw in calls)
    for kw in calls:
        (Z,) = kw["embeddings"].values()
        assert min(np.abs(Z @ V).max() for V in bases) < 1e-9 * np.abs(Z).max()
    # transfer: both instruments projected with one basis, the union's (model on A, rows of B)
    assert len(shared) == 2
    for kw in shared:
        Za, Zb = kw["embeddings"]["toy_a"], kw["embeddings"]["toy_b"]
        assert min(max(np.abs(Za @ V).max(), np.abs(Zb @ V).max()) for V in bases) < 1e-9 * np.abs(Za).max()
    methods = {r["method"] for r in saved["downstream"] + saved["controls"] + saved["robustness"]}
    assert {"embedding+ridge", "untrained+ridge", "pls_raw"} <= methods
    assert {"embedding+ridge", "untrained+ridge"} <= {r["method"] for r in saved["transfer"]}
