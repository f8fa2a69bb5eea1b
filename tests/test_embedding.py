"""embed_spectra / load_encoder / embed_store: shapes, determinism, grids, caps, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import peak_spectra

from vitnirs.checkpoint import checkpoint_dir
from vitnirs.embedding import embed_spectra, embed_store, load_encoder
from vitnirs.errors import VitnirsError
from vitnirs.model import build_mae
from vitnirs.train.checkpoint import capture_rng_state, save_checkpoint

D_TINY = 32


def spectra(n: int = 20, L: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, L)`` float32 spectra and their ``(L,)`` grid in nm, 1000-2500 nm."""
    X, w = peak_spectra(n, L, seed)
    return X.astype(np.float32), w


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_mae("tiny").eval()


def test_shape_dtype_and_determinism(model):
    X, w = spectra()
    Z = embed_spectra(model, X, w)
    assert Z.shape == (20, D_TINY) and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    np.testing.assert_array_equal(Z, embed_spectra(model, X, w))
    assert np.abs(Z[0] - Z[1]).max() > 1e-4  # different spectra, different embeddings
    assert embed_spectra(model, X[:0], w).shape[0] == 0


def test_batch_size_invariance(model):
    X, w = spectra(n=23)
    ref = embed_spectra(model, X, w, batch_size=256)
    for bs in (1, 7):
        np.testing.assert_allclose(embed_spectra(model, X, w, batch_size=bs), ref, atol=1e-5)


def test_shared_and_per_row_grids(model):
    X, w = spectra()
    shared = embed_spectra(model, X, w)
    per_row = embed_spectra(model, X, np.tile(w, (len(X), 1)))
    np.testing.assert_allclose(per_row, shared, atol=1e-6)
    W = np.tile(w, (len(X), 1))
    W[4] += 300.0  # one row on another grid: only its embedding changes
    moved = embed_spectra(model, X, W)
    np.testing.assert_allclose(np.delete(moved, 4, 0), np.delete(shared, 4, 0), atol=1e-6)
    assert np.abs(moved[4] - shared[4]).max() > 1e-4
    with pytest.raises(ValueError, match="wavelengths_nm must be"):
        embed_spectra(model, X, w[:-1])


def test_max_points_cap_is_even_spaced_and_deterministic(model):
    X, w = spectra(n=10, L=300)
    capped = embed_spectra(model, X, w, max_points=100)
    np.testing.assert_array_equal(capped, embed_spectra(model, X, w, max_points=100))
    np.testing.assert_allclose(capped, embed_spectra(model, X, w, max_points=100, batch_size=3), atol=1e-5)
    # 300 → 100 evenly spaced points = every third point, starting at the first
    np.testing.assert_allclose(capped, embed_spectra(model, X[:, ::3], w[::3], max_points=0), atol=1e-5)
    assert np.abs(capped - embed_spectra(model, X, w, max_points=0)).max() > 1e-5


def test_level_is_kept(model):
    X, w = spectra()
    # same shapes, other absolute level: the normalised values match but level does not
    assert np.abs(embed_spectra(model, X + 1.0, w) - embed_spectra(model, X, w)).max() > 1e-4


def test_non_finite_input_names_the_row(model):
    X, w = spectra()
    X[3, 10] = np.nan
    X[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"first row 3"):
        embed_spectra(model, X, w)
    with pytest.raises(ValueError, match="must be \\(n, L\\)"):
        embed_spectra(model, X[0], w)


BAD_GRIDS = {  # problem -> (the grid made bad, what the message says)
    "repeated": (lambda w: np.r_[w[:5], w[4], w[6:]], "has repeated values"),
    "non-positive": (lambda w: w - 1500.0, "must be positive"),
    "non-finite": (lambda w: np.r_[np.nan, w[1:]], "has non-finite values"),
}


@pytest.mark.parametrize("problem", sorted(BAD_GRIDS))
def test_one_grid_check_for_embed_spectra_and_the_embedder(model, tmp_path, problem):
    """embed_spectra and SpectralEmbedder refuse a grid by the same rule and message
    (vitnirs.data.spectra_input.check_spectra); a per-row grid names its row."""
    from vitnirs import SpectralEmbedder

    bad, says = BAD_GRIDS[problem]
    X, w = spectra(n=4, L=60)
    grid = bad(w.copy())
    with pytest.raises(ValueError, match=f"^wavelengths_nm {says}"):
        embed_spectra(model, X, grid)
    with pytest.raises(ValueError, match=f"^wavelengths {says}"):
        SpectralEmbedder(str(_save(tmp_path, 1, model)), wavelengths=grid.tolist()).fit(X)
    per_row = np.tile(w, (4, 1))
    per_row[2] = grid
    with pytest.raises(ValueError, match=f"^wavelengths_nm {says}.*first row 2"):
        embed_spectra(model, X, per_row)


def test_meta_ids_are_used(model):
    X, w = spectra()
    meta = np.tile([[2, 1, 1]], (len(X), 1))
    assert np.abs(embed_spectra(model, X, w, meta=meta) - embed_spectra(model, X, w)).max() > 1e-5


def _save(run_dir: Path, step: int, model: torch.nn.Module, max_points: int = 64) -> Path:
    norm = {"max_points": max_points, "meta_vocab": {"instrument": ["inst_a", "inst_b"]}}
    spec = {"builder": "vitnirs.model.build_mae", "preset": "tiny", "kwargs": {"trunk": "transformer"}}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return save_checkpoint(run_dir, step, model, opt, None, {}, norm, capture_rng_state(), model_spec=spec)


def test_load_encoder_from_run_and_checkpoint_dir(model, tmp_path):
    torch.manual_seed(1)
    other = build_mae("tiny")
    _save(tmp_path, 1, other)
    _save(tmp_path, 5, model, max_points=64)  # the newest: the run dir must resolve to it
    X, w = spectra(L=150)
    expected = embed_spectra(model, X, w, max_points=64)
    loaded, info = load_encoder(tmp_path)
    assert info.checkpoint == str(checkpoint_dir(tmp_path, 5)) and info.step == 5
    assert info.max_points == 64 and info.meta_vocab["instrument"] == ["inst_a", "inst_b"]
    assert not loaded.training
    np.testing.assert_allclose(
        embed_spectra(loaded, X, w, info=info), expected, atol=1e-6
    )  # the cap from info
    assert np.abs(embed_spectra(loaded, X, w) - expected).max() > 1e-4  # without info: the default cap
    old, info1 = load_encoder(checkpoint_dir(tmp_path, 1))
    assert info1.step == 1
    np.testing.assert_allclose(
        embed_spectra(old, X, w, info=info1), embed_spectra(other, X, w, max_points=64), atol=1e-6
    )
    with pytest.raises(VitnirsError, match="neither a checkpoint"):
        load_encoder(_empty(tmp_path))
    with pytest.raises(VitnirsError, match="no such"):
        load_encoder(tmp_path / "missing")


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir(exist_ok=True)
    return tmp_path / "empty"


def test_embed_store(model, csvs, tmp_path):
    from vitnirs.data.bank import bank_jobs
    from vitnirs.data.prepare import prepare
    from vitnirs.data.store import PreparedStore

    bank = tmp_path / "bank"
    csvs.good("alpha.csv", n=25, folder=bank)
    jobs, _ = bank_jobs(bank)
    prepare(jobs, tmp_path / "store", progress=False)
    store = PreparedStore(tmp_path / "store")
    (name,) = store.names()
    Z = embed_store(model, store, name, batch_size=8)
    assert Z.shape == (25, D_TINY)
    expected = embed_spectra(model, np.asarray(store.values(name)), store.wavelengths_nm(name))
    np.testing.assert_allclose(Z, expected, atol=1e-6)


def test_effective_rank_of_constant_and_isotropic_embeddings():
    from vitnirs.embedding import collapse_stats, effective_rank

    assert effective_rank(np.full((50, 16), 0.57)) == 1.0
    rng = np.random.default_rng(0)
    assert 29 < effective_rank(rng.normal(size=(4000, 32))) <= 32
    line = rng.normal(size=(200, 1)) @ rng.normal(size=(1, 16))  # rank 1
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    stats = collapse_stats(0.57 + 0.004 * rng.normal(size=(80, 64)))  # the shipped model's corn figures
    assert stats["dim_std_median"] == pytest.approx(0.004, rel=0.2) and stats["mean_abs"] == pytest.approx(
        0.57, rel=0.01
    )
    assert stats["effective_rank"] > 40


def test_the_metadata_rule_leaves_ids_unknown_unless_asked(model, tmp_path):
    from conftest import absorbance_table

    from vitnirs.checkpoint import CheckpointInfo
    from vitnirs.data.prepare import prepare, table_jobs
    from vitnirs.data.store import PreparedStore
    from vitnirs.embedding import under_metadata_rule

    X, w = spectra(n=12, L=60)
    table = absorbance_table("inst", X, w, metadata={"instrument": ["m5"] * 12})
    prepare(table_jobs([table], "real"), tmp_path / "store", progress=False)
    store = PreparedStore(tmp_path / "store")
    info = CheckpointInfo(checkpoint="x", meta_vocab={"instrument": ["m5"]})
    assert (
        under_metadata_rule(info, "store") is info and under_metadata_rule(info, "unknown").meta_vocab == {}
    )
    unknown = embed_store(model, store, "inst", info=under_metadata_rule(info, "unknown"))
    np.testing.assert_array_equal(unknown, embed_store(model, store, "inst"))  # no ids at all
    keyed = embed_store(model, store, "inst", info=info)  # instrument m5 -> id 1: another embedding
    assert np.abs(keyed - unknown).max() > 1e-5
    with pytest.raises(ValueError, match="metadata rule"):
        under_metadata_rule(info, "sometimes")
