"""Cross-instrument transfer: a planted pair that must degrade, and no test leakage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import absorbance_table

from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.data.table import SpectralTable
from vitnirs.evaluate.transfer import transfer_pairs, transfer_table
from vitnirs.model import build_mae

GRID = np.linspace(1000.0, 2000.0, 120)
N_CAL, N_TRANSFER, N_TEST = 40, 12, 24


def _spectra(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping bands; y = concentration of the first one."""
    rng = np.random.default_rng(seed)
    n = N_CAL + N_TRANSFER + N_TEST
    c = rng.uniform(0.2, 1.0, (n, 3))
    centres, widths = np.array([1300.0, 1500.0, 1750.0]), np.array([40.0, 60.0, 50.0])
    bands = np.exp(-0.5 * ((GRID[None, :] - centres[:, None]) / widths[:, None]) ** 2)
    X = 0.3 + c @ bands + rng.normal(0, 2e-3, (n, len(GRID)))
    return X, c[:, 0]


def _table(name: str, X: np.ndarray, y: np.ndarray, ids: list[str], part: list[str]) -> SpectralTable:
    meta = {"sample_id": ids, "partition": part, "instrument": [name] * len(ids)}
    return absorbance_table(name, X, GRID, targets={"y_c": y}, metadata=meta)


def _make_store(path, *, misaligned: bool = False) -> PreparedStore:
    X, y = _spectra()
    n = len(y)
    ids = [f"s{i:03d}" for i in range(n)]
    part = ["cal"] * N_CAL + ["transfer"] * N_TRANSFER + ["test"] * N_TEST
    # instrument B: the same samples, a 6 nm wavelength shift and a strong additive baseline
    shift = 6.0
    Xb = np.stack([np.interp(GRID - shift, GRID, row) for row in X])
    Xb = Xb + 0.5 + 0.4 * (GRID - GRID[0]) / np.ptp(GRID)
    # B's rows in a different order (alignment is by sample_id, not by row)
    rev = np.arange(n)[::-1]
    ids_b = [ids[i] for i in rev]
    if misaligned:
        ids_b[0] = "zz_unknown"
    tables = [
        _table("inst_a", X, y, ids, part),
        _table("inst_b", Xb[rev], y[rev], ids_b, [part[i] for i in rev]),
    ]
    prepare(table_jobs(tables, "real"), path, progress=False)
    return PreparedStore(path)


GROUPS = {"toy": ["inst_a", "inst_b", "not_in_store"]}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    store = _make_store(tmp_path_factory.mktemp("tstore"))
    torch.manual_seed(0)
    model = build_mae("tiny").eval()
    return transfer_pairs(
        store, model, groups=GROUPS, baselines=("pls_raw", "snv_sg1_pls"), engine="sklearn", seed=0
    )


def _get(records, source, target, k, method):
    (r,) = [
        x
        for x in records
        if x["source"] == source
        and x["target_instrument"] == target
        and x["k"] == k
        and x["method"] == method
    ]
    return r


def test_planted_pair_degrades_and_slope_bias_repairs(records):
    within = _get(records, "inst_a", "inst_a", 0, "pls_raw")["metrics"]["rmsep"]
    cross = _get(records, "inst_a", "inst_b", 0, "pls_raw")["metrics"]["rmsep"]
    assert cross > 3 * within, (within, cross)
    corrected = _get(records, "inst_a", "inst_b", 10, "pls_raw+slope_bias")["metrics"]["rmsep"]
    assert corrected < 0.5 * cross, (cross, corrected)
    # transfer samples in the training set help PLS on raw too
    assert _get(records, "inst_a", "inst_b", 10, "pls_raw")["metrics"]["rmsep"] < cross


def test_every_pair_and_k_has_records(records):
    methods = {"embedding+ridge", "embedding+pls", "pls_raw", "snv_sg1_pls"}
    for a, b in [("inst_a", "inst_b"), ("inst_b", "inst_a")]:
        for k in (0, 5, 10):
            got = {r["method"] for r in records if (r["source"], r["target_instrument"], r["k"]) == (a, b, k)}
            assert methods <= got, (a, b, k, got)
            for corrected in ("pls_raw+slope_bias", "pls_raw+pds", "snv_sg1_pls+pds"):
                assert (corrected in got) == (k > 0), (corrected, k, got)
            aligned = {f"{m}+align" for m in methods}
            assert (aligned <= got) == (k == 0) and (not aligned & got) == (k > 0), (k, got)
        within = {r["method"] for r in records if r["source"] == r["target_instrument"] == a}
        assert methods <= within and not any(m.endswith("+align") for m in within)
    assert not any("not_in_store" in (r["source"], r["target_instrument"]) for r in records)
    assert all(np.isfinite(r["metrics"]["rmsep"]) for r in records)
    table = transfer_table(records, k=0)
    assert table.shape[0] == 4  # 2 ordered pairs + 2 within-instrument references


def test_unlabelled_alignment_removes_the_planted_offset(records):
    cross = _get(records, "inst_a", "inst_b", 0, "pls_raw")["metrics"]["rmsep"]
    aligned = _get(records, "inst_a", "inst_b", 0, "pls_raw+align")
    assert aligned["metrics"]["rmsep"] < 0.5 * cross, (cross, aligned["metrics"]["rmsep"])
    assert aligned["protocol"] == "transfer_k0_aligned" and aligned["k"] == 0


def test_the_alignment_never_reads_a_label_or_a_test_row(tmp_path, monkeypatch):
    """Every reference the alignment gets is rows of B's cal partition (spectra or embeddings),
    never a test row; no target value is passed to it."""
    import vitnirs.evaluate.transfer as transfer

    store = _make_store(tmp_path / "s")
    torch.manual_seed(0)
    model = build_mae("tiny").eval()
    seen = []
    real = transfer.align_domain

    def spy(X, reference, source_reference):
        seen.append((np.asarray(X).copy(), np.asarray(reference).copy()))
        return real(X, reference, source_reference)

    monkeypatch.setattr(transfer, "align_domain", spy)
    records = transfer_pairs(store, model, groups=GROUPS, baselines=("pls_raw",), engine="sklearn", seed=0)
    assert seen and len(seen) == 2 * 3  # 2 ordered pairs x (ridge, pls, the raw spectra)
    cal_ids = {f"s{i:03d}" for i in range(N_CAL)}
    test_ids = {f"s{i:03d}" for i in range(N_CAL + N_TRANSFER, N_CAL + N_TRANSFER + N_TEST)}
    for r in [r for r in records if r["method"].endswith("+align")]:
        assert set(r["alignment_ids"]) == cal_ids and not set(r["alignment_ids"]) & test_ids
    # the raw references are exactly B's cal spectra (in A's row order), never a test spectrum
    order = transfer.align_instruments(store, "inst_a", "inst_b")
    Xb = np.asarray(store.values("inst_b"), dtype=np.float64)[order]
    raw_refs = [ref for _, ref in seen if ref.shape[1] == Xb.shape[1]]
    assert len(raw_refs) == 2
    np.testing.assert_array_equal(raw_refs[0], Xb[:N_CAL])
    for _, ref in seen:
        assert ref.shape[0] == N_CAL  # the reference is the cal partition, never the 24 test rows


def test_no_test_row_of_b_is_trained_on(records):
    test_ids = {f"s{i:03d}" for i in range(N_CAL + N_TRANSFER, N_CAL + N_TRANSFER + N_TEST)}
    transfer_ids = {f"s{i:03d}" for i in range(N_CAL, N_CAL + N_TRANSFER)}
    for r in records:
        assert set(r["test_ids"]) == test_ids
        assert not set(r["train_ids"]) & set(r["test_ids"])
        extra = set(r["train_ids"]) - {f"s{i:03d}" for i in range(N_CAL)}
        correction = r["method"].endswith(("+slope_bias", "+pds"))  # fitted on A cal only
        assert ("transfer_ids" in r) == correction
        assert extra <= transfer_ids and len(extra) == (0 if correction else r["k"])
        assert r["n_test"] == N_TEST
        if correction:
            assert len(r["transfer_ids"]) == r["k"] and set(r["transfer_ids"]) <= transfer_ids
        else:
            assert r["n_train"] == N_CAL + r["k"]
    # the k = 5 transfer samples are the first 5 of the k = 10 ones
    k5 = set(_get(records, "inst_a", "inst_b", 5, "pls_raw")["train_ids"])
    k10 = set(_get(records, "inst_a", "inst_b", 10, "pls_raw")["train_ids"])
    assert k5 < k10


def test_misaligned_sample_ids_raise(tmp_path):
    store = _make_store(tmp_path / "bad", misaligned=True)
    with pytest.raises(ValueError, match="sample_id .* do not align"):
        transfer_pairs(store, None, groups=GROUPS, baselines=("pls_raw",), engine="sklearn")
