"""Robustness curves: perturbation semantics, severity 0 = clean, no refit, no train perturbation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import absorbance_table

import vitnirs.embedding as embedding_module
from vitnirs.checkpoint import CheckpointInfo
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.embedding import embed_store, meta_ids
from vitnirs.evaluate import robustness
from vitnirs.evaluate.baselines import run_baselines
from vitnirs.evaluate.downstream import fit_head, run_heads
from vitnirs.evaluate.robustness import perturb, plot_robustness, robustness_curves
from vitnirs.evaluate.splits import Split
from vitnirs.model import build_mae

GRID = np.linspace(1000.0, 1400.0, 81)  # 5 nm step
N_TRAIN, N_TEST = 60, 30
SEVERITIES = {
    "noise": (0.0, 0.003, 0.03),
    "shift": (0.0, 2.0, 8.0),
    "drift": (0.0, 0.1),
    "scatter": (0.0, 0.1),
}
BASELINES = ("pls_raw", "snv_sg1_pls")
VOCAB = {"instrument": ["toy"]}


def _spectra(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A band at 1200 nm whose height is y, an interfering band at 1300 nm, offsets, 1e-3 noise."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    y = rng.uniform(0.2, 1.0, n)
    other = rng.uniform(0.2, 1.0, n)
    band = lambda c, w: np.exp(-0.5 * ((GRID - c) / w) ** 2)[None, :]  # noqa: E731
    X = 0.3 + rng.uniform(0, 0.05, (n, 1)) + y[:, None] * band(1200, 25) + other[:, None] * band(1300, 30)
    return X + rng.normal(0, 1e-3, X.shape), y


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PreparedStore:
    X, y = _spectra()
    n = len(y)
    table = absorbance_table(
        "toy",
        X,
        GRID,
        targets={"y_band": y},
        metadata={"sample_id": [f"s{i:03d}" for i in range(n)], "instrument": ["toy"] * n},
    )
    path = tmp_path_factory.mktemp("rstore")
    prepare(table_jobs([table], "real"), path, progress=False)
    return PreparedStore(path)


@pytest.fixture(scope="module")
def split() -> Split:
    return Split("native", np.arange(N_TRAIN), np.arange(N_TRAIN, N_TRAIN + N_TEST))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_mae("tiny").eval()


INFO = CheckpointInfo(checkpoint="test", meta_vocab=VOCAB)  # as load_encoder would give it


def _spy(fn, log: list):
    def wrapper(*args, **kwargs):
        log.append((args, kwargs))
        return fn(*args, **kwargs)

    return wrapper


@pytest.fixture(scope="module")
def run(store, split, model):
    """The records of one call, with every fit and embedding call it made."""
    Z = embed_store(model, store, "toy", info=INFO)
    calls = {"run_baselines": [], "fit_head": [], "embed_spectra": []}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(robustness, "run_baselines", _spy(run_baselines, calls["run_baselines"]))
        mp.setattr(robustness, "fit_head", _spy(fit_head, calls["fit_head"]))
        mp.setattr(
            embedding_module, "embed_spectra", _spy(embedding_module.embed_spectra, calls["embed_spectra"])
        )
        records = robustness_curves(
            store, model, "toy", "y_band", split, heads=("ridge",), baselines=BASELINES,
            severities=SEVERITIES, seed=0, embeddings={"toy": Z}, engine="sklearn", info=INFO,
        )  # fmt: skip
    return records, calls, Z


def _rmsep(records, method, kind, severity, key="rmsep"):
    (r,) = [x for x in records if (x["method"], x["perturbation"], x["severity"]) == (method, kind, severity)]
    return r["metrics"][key]


# ----------------------------------------------------------------------------- perturb
def test_shift_moves_a_narrow_peak_by_that_many_nm():
    fine = np.arange(1100.0, 1300.0, 0.1)
    X = 0.2 + np.exp(-0.5 * ((fine - 1200.0) / 2.0) ** 2)[None, :]
    for s in (0.5, 1.0, 2.0, 4.0, -1.5):
        moved = fine[np.argmax(perturb(X, fine, "shift", s, seed=3)[0])]
        assert moved == pytest.approx(1200.0 + s, abs=0.11), s  # λ0 + s, not λ0 - s


def test_perturbation_magnitudes_follow_the_severity():
    X, _ = _spectra()
    s = 0.05
    drift = perturb(X, GRID, "drift", s, seed=1) - X
    resid = [np.polyfit(GRID, d, 1, full=True)[1][0] for d in drift]
    assert max(resid) < 1e-20  # exactly linear in λ per spectrum
    assert 0.5 * s < np.abs(drift).max() <= 2 * s + 1e-12
    np.testing.assert_allclose(perturb(X, GRID, "drift", 2 * s, seed=1) - X, 2 * drift, atol=1e-12)
    scattered = perturb(X, GRID, "scatter", s, seed=1)
    gains = np.array([np.polyfit(x, p, 1)[0] for x, p in zip(X, scattered, strict=True)])
    assert np.all(np.abs(gains - 1) <= s + 1e-9) and np.abs(gains - 1).max() > s / 3
    noise = perturb(X, GRID, "noise", 0.01, seed=1) - X
    assert np.std(noise) == pytest.approx(0.01, rel=0.05)


def test_perturb_is_deterministic_and_severity_zero_is_identity():
    X, _ = _spectra()
    for kind in robustness.KINDS:
        a = perturb(X, GRID, kind, 0.02 if kind != "shift" else 1.0, seed=7)
        np.testing.assert_array_equal(a, perturb(X, GRID, kind, 0.02 if kind != "shift" else 1.0, seed=7))
        assert not np.array_equal(a, X)
        zero = perturb(X, GRID, kind, 0.0, seed=7)
        np.testing.assert_array_equal(zero, X)
        assert zero is not X
    assert not np.array_equal(
        perturb(X, GRID, "noise", 0.01, seed=1), perturb(X, GRID, "noise", 0.01, seed=2)
    )


def test_bad_perturbations_raise():
    X, _ = _spectra()
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(X, GRID, "warp", 1.0, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        perturb(X, GRID, "noise", -0.01, seed=0)
    with pytest.raises(ValueError, match="< 1"):
        perturb(X, GRID, "scatter", 1.0, seed=0)
    with pytest.raises(ValueError, match="wavelengths_nm"):
        perturb(X, GRID[:-1], "shift", 1.0, seed=0)


# ----------------------------------------------------------------------------- curves
def test_severity_zero_reproduces_the_clean_fit(run, store, split):
    records, _, Z = run
    X = np.asarray(store.values("toy"), dtype=np.float64)
    y = store.targets("toy")["y_band"].to_numpy(dtype=np.float64)
    clean = run_baselines(X, y, split, methods=BASELINES, seed=0, engine="sklearn")
    (head,) = run_heads(Z, y, split.train, split.test, methods=["ridge"], seed=0)  # the downstream section
    expected = {r["method"]: r["metrics"]["rmsep"] for r in clean}
    expected["embedding+ridge"] = head["metrics"]["rmsep"]
    for kind in SEVERITIES:
        for method, value in expected.items():
            assert _rmsep(records, method, kind, 0.0) == pytest.approx(value, rel=1e-9, abs=1e-12)
            assert _rmsep(records, method, kind, 0.0, "rmsep_ratio") == 1.0


def test_noise_and_shift_degrade_pls(run):
    records, _, _ = run
    noise = [_rmsep(records, "pls_raw", "noise", s) for s in SEVERITIES["noise"]]
    assert noise[-1] > 3 * noise[0], noise
    assert noise[1] >= 0.99 * noise[0] and noise[2] > noise[1], noise
    ratio = _rmsep(records, "pls_raw", "noise", 0.03, "rmsep_ratio")
    assert ratio == pytest.approx(noise[-1] / noise[0])
    assert _rmsep(records, "pls_raw", "shift", 8.0) > 3 * _rmsep(records, "pls_raw", "shift", 0.0)
    # an additive offset does not move SNV + 1st derivative at all, but does move raw PLS
    assert _rmsep(records, "snv_sg1_pls", "drift", 0.1, "rmsep_ratio") < _rmsep(
        records, "pls_raw", "drift", 0.1, "rmsep_ratio"
    )


def test_train_never_perturbed_and_nothing_refitted(run, store, split):
    records, calls, Z = run
    X = np.asarray(store.values("toy"), dtype=np.float64)
    w = store.wavelengths_nm("toy")
    # one run_baselines call (one fit per method), trained on the clean train spectra
    ((args, kwargs),) = calls["run_baselines"]
    X_stack, y_stack, stacked = args
    np.testing.assert_array_equal(X_stack[stacked.train], X[split.train])
    assert list(kwargs["methods"]) == list(BASELINES)
    n_blocks = 1 + sum(s != 0 for v in SEVERITIES.values() for s in v)
    assert len(stacked.test) == n_blocks * N_TEST
    np.testing.assert_array_equal(X_stack[stacked.test[:N_TEST]], X[split.test])
    # one head fit, on the clean train embedding
    ((args, kwargs),) = calls["fit_head"]
    assert args[0] == "ridge"
    np.testing.assert_array_equal(args[1], Z[split.train])
    # one embedding call per non-zero severity, on perturbed test spectra with the test rows' metadata
    perturbed = [(k, s) for k, v in SEVERITIES.items() for s in v if s != 0]
    assert len(calls["embed_spectra"]) == len(perturbed)
    meta = meta_ids(store, "toy", VOCAB)[split.test]
    for (args, kwargs), (kind, s) in zip(calls["embed_spectra"], perturbed, strict=True):
        np.testing.assert_array_equal(args[1], perturb(X[split.test], w, kind, s, seed=0))
        np.testing.assert_array_equal(kwargs["meta"], meta)
    assert len(records) == 3 * sum(len(v) for v in SEVERITIES.values())
    assert all(
        r["n_train"] == N_TRAIN and r["n_test"] == N_TEST and r["protocol"] == "robustness" for r in records
    )
    assert {r["severity_unit"] for r in records if r["perturbation"] == "shift"} == {"nm"}


def test_nirs4all_engine_matches_sklearn(store, split):
    sev = {"noise": (0.0, 0.01)}
    kw = dict(heads=(), baselines=("pls_raw",), severities=sev, seed=0)
    fast = robustness_curves(store, None, "toy", "y_band", split, engine="sklearn", **kw)
    real = robustness_curves(store, None, "toy", "y_band", split, engine="nirs4all", **kw)
    assert [r["severity"] for r in real] == [0.0, 0.01]
    for a, b in zip(fast, real, strict=True):
        assert b["metrics"]["rmsep"] == pytest.approx(a["metrics"]["rmsep"], rel=1e-5)


def test_plot_is_written(run, tmp_path):
    records, _, _ = run
    path = plot_robustness(records, tmp_path / "fig" / "robustness.png")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
