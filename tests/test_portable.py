"""Portable checkpoints, the model card and the shipped default model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import peak_spectra
from safetensors import safe_open

from vitnirs.checkpoint import find_checkpoint, weights_sha256
from vitnirs.embedding import embed_spectra, load_encoder
from vitnirs.errors import VitnirsError
from vitnirs.model import build_mae
from vitnirs.model.readout import readout_dim
from vitnirs.train.checkpoint import capture_rng_state, save_checkpoint
from vitnirs.workflows.card_scorecard import scorecard_verdicts
from vitnirs.workflows.export import PORTABLE_FILES, export_checkpoint
from vitnirs.workflows.model_card import CardInputs, build_model_card

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ["alpha_real", "beta_real", "synth_gamma"]


def spectra(n: int = 12, L: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, L)`` float32 spectra and their ``(L,)`` grid in nm, 1100-2400 nm."""
    X, w = peak_spectra(n, L, seed, lo=1100.0, hi=2400.0)
    return X.astype(np.float32), w


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny pretraining run: one checkpoint (with trainer.pt), a summary and a metrics log."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = build_mae("tiny")
    norm = {"max_points": 64, "meta_vocab": {"instrument": ["a"]}, "datasets": DATASETS}
    spec = {"builder": "vitnirs.model.build_mae", "preset": "tiny", "kwargs": {"trunk": "transformer"}}
    config = {"training_strategy": {"use_targets_in_pretraining": False, "p_synth": 0.25}}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(run, 7, model, opt, None, config, norm, capture_rng_state(), model_spec=spec)
    summary = {
        "steps": 7,
        "seconds": 90.0,
        "final": {"mae": 0.123456, "total": 0.2},
        "heldout_mae_end": 0.0555,
    }
    (run / "pretrain_summary.json").write_text(json.dumps(summary))
    (run / "metrics.jsonl").write_text('{"step": 5, "mae": 0.5}\n{"step": 7, "mae": 0.3141, "total": 0.4}\n')
    return run


def ckpt(run: Path) -> Path:
    return run / "checkpoints" / "step_0000007"


def test_export_writes_exactly_three_files(run_dir, tmp_path):
    out = export_checkpoint(ckpt(run_dir), tmp_path / "portable", dtype="bfloat16")
    assert sorted(p.name for p in out.iterdir()) == sorted(PORTABLE_FILES)
    assert not (out / "trainer.pt").exists() and (ckpt(run_dir) / "trainer.pt").exists()
    meta = json.loads((out / "config.json").read_text())
    assert meta["portable"] is True and meta["dtype"] == "bfloat16" and meta["format_version"] == 1
    assert meta["normalization"]["datasets"] == DATASETS and meta["step"] == 7
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"BF16"}  # noqa: SIM118
    size = (out / "model.safetensors").stat().st_size
    assert size < 0.6 * (ckpt(run_dir) / "model.safetensors").stat().st_size  # half the bytes
    # the run directory resolves to its newest checkpoint; the card found the run's losses
    again = export_checkpoint(run_dir, tmp_path / "from_run", dtype="float32")
    assert "0.1235" in (again / "model_card.md").read_text()
    with pytest.raises(VitnirsError, match="not empty"):
        export_checkpoint(run_dir, out)
    with pytest.raises(VitnirsError, match="dtype"):
        export_checkpoint(run_dir, tmp_path / "x", dtype="float16")


def test_portable_embeddings_match_the_original(run_dir, tmp_path):
    X, w = spectra()
    original, _ = load_encoder(ckpt(run_dir))
    ref = embed_spectra(original, X, w)
    exact, info = load_encoder(export_checkpoint(ckpt(run_dir), tmp_path / "f32", dtype="float32"))
    assert info.portable and info.step == 7 and info.max_points == 64
    np.testing.assert_array_equal(embed_spectra(exact, X, w), ref)
    half, _ = load_encoder(export_checkpoint(ckpt(run_dir), tmp_path / "bf16", dtype="bfloat16"))
    assert {p.dtype for p in half.parameters()} == {torch.float32}  # cast back on load
    Z = embed_spectra(half, X, w)
    assert np.abs(Z - ref).max() > 0  # the weights were rounded ...
    np.testing.assert_allclose(Z, ref, atol=0.02 * np.abs(ref).max())  # ... to bf16 precision only
    cos = (Z * ref).sum(1) / np.linalg.norm(Z, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.999


def test_wrong_format_version_names_both_versions(run_dir, tmp_path):
    out = export_checkpoint(ckpt(run_dir), tmp_path / "p")
    meta = json.loads((out / "config.json").read_text())
    meta["format_version"] = 99
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(VitnirsError, match=r"format_version 99 is not supported.*format_version 1"):
        load_encoder(out)
    with pytest.raises(VitnirsError, match="format_version 99"):
        export_checkpoint(out, tmp_path / "again")


def downstream(win_alpha: bool, pls_corn: float, weights: str | None = None) -> dict:
    """A hand-made benchmarks/downstream.py result: 3 targets, transfer on one group; ``weights``:
    the sha256 of the weights it scored."""

    def row(dataset, classical, embedding):
        return {
            "dataset": dataset,
            "target": "y_a",
            "task": "regression",
            "protocol": "native",
            "best_classical": {"method": "pls_raw", "rmsep": classical},
            "best_embedding": {"method": "embedding+ridge", "rmsep": embedding},
            "embedding_vs_best_classical": round(embedding / classical, 3),
            "embedding_wins": embedding < classical,
        }

    rows = [
        row("alpha_real", 0.5, 0.4 if win_alpha else 0.6),
        row("beta_real", 1.0, 1.7),
        row("delta", 2.0, 2.5),
    ]
    transfer = [
        {"group": "corn", "k": 0, "method": "embedding+ridge", "median_rmsep": 0.9},
        {"group": "corn", "k": 0, "method": "embedding+pls", "median_rmsep": 0.75},
        {"group": "corn", "k": 0, "method": "pls_raw", "median_rmsep": pls_corn},
        {"group": "corn", "k": 0, "method": "pls_raw+pds", "median_rmsep": 0.2},
    ]
    banks = {"testbank": {"summary": rows, "transfer_medians": transfer}}
    return {"checkpoint": "runs/x", "weights_sha256": weights, "banks": banks}


def test_model_card_numbers_come_from_the_files(run_dir, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    records = [
        {"name": "alpha_real", "kind": "real", "n_rows": 1234, "file": "alpha_real.csv", "region": "NIR"},
        {"name": "beta_real", "kind": "real", "n_rows": 56, "file": "beta_real.csv", "region": "NIR"},
        {"name": "synth_gamma", "kind": "synthetic", "n_rows": 789, "source": "synthetic:nirs4all x"},
    ]
    (store / "manifest.json").write_text(json.dumps({"datasets": records}))
    bank = tmp_path / "bank_manifest.json"
    bank.write_text(
        json.dumps({"datasets": [{"file": "alpha_real.csv", "licence": "LIC-XYZ", "package": "pkg 1"}]})
    )
    results = tmp_path / "downstream.json"
    sha = weights_sha256(ckpt(run_dir))  # results of these weights (others: test_model_card_honesty)
    results.write_text(json.dumps(downstream(win_alpha=False, pls_corn=0.5, weights=sha)))
    inputs = CardInputs(
        run_dir=run_dir, downstream=results, store_dir=store, bank_manifests=(bank,), hardware="CPU test rig"
    )
    card = build_model_card(ckpt(run_dir), inputs)
    assert "loses to the best classical calibration on 3 of 3 testbank targets" in card
    assert "| corn | 0 | embedding+pls: 0.75 | 0.5 | pls_raw+pds: 0.2 | 1.5 |" in card  # 0.75 / 0.5
    assert "beats PLS (raw) in 0 of 1 (group, k) cells" in card
    assert "| alpha_real / y_a | native | pls_raw: 0.5 | embedding+ridge: 0.6 | 1.2 |" in card
    assert "2 real (1,290 spectra), 1 synthetic (789 spectra)" in card  # 1234 + 56
    assert "| alpha_real | real | 1,234 | NIR | pkg 1 | LIC-XYZ |" in card
    assert "| beta_real | real | 56 | NIR | unknown | unknown |" in card  # no licence anywhere: unknown
    assert "masked recon. MSE 0.1235" in card and "masked recon. MSE 0.3141" in card  # run summary and log
    assert "Held-out masked reconstruction MSE: unknown at the start → 0.0555" in card  # the old key is read
    assert "loss (MAE)" not in card and "mae 0." not in card  # MAE = masked autoencoder, not the metric
    assert "Trained on: CPU test rig; 7 steps" in card and "never used" in card and "p_synth = 0.25" in card

    results.write_text(json.dumps(downstream(win_alpha=True, pls_corn=1.5, weights=sha)))
    changed = build_model_card(ckpt(run_dir), inputs)
    assert (
        "loses to the best classical calibration on 2 of 3 testbank targets (it wins on alpha_real / y_a)"
        in changed
    )
    assert "beats PLS (raw) in 1 of 1 (group, k) cells" in changed and "| 0.5 |" in changed  # 0.75 / 1.5
    bare = build_model_card(ckpt(run_dir))
    assert "unknown (no `benchmarks/downstream.py` results" in bare and "unknown (no pretraining run" in bare


@pytest.mark.parametrize(
    ("name", "study_file", "hashed"),
    [("default", "ship_full_seed0.json", False), ("robust", "issue24ship_full.json", True)],
)  # hashed: exported since issue 24, the card names the weights it describes (the default predates it)
def test_shipped_models_load_and_embed(name, study_file, hashed):
    path = find_checkpoint(name)
    assert sorted(p.name for p in path.iterdir()) == sorted(PORTABLE_FILES)
    assert sum(p.stat().st_size for p in path.iterdir()) <= 12 * 2**20
    model, info = load_encoder(name)
    assert info.portable and Path(info.checkpoint) == path
    X, w = spectra(n=1, L=200)
    Z = embed_spectra(model, X, w, info=info)  # the checkpoint's own readout
    width = readout_dim(info.readout, model.encoder.d_model)
    assert Z.shape == (1, width) and np.isfinite(Z).all()
    card = (path / "model_card.md").read_text()
    meta = json.loads((path / "config.json").read_text())
    assert f"{meta['step']:,} steps" in card and "no GPU was lent" in card
    assert f"readout `{info.readout}`" in card
    # the card reports the repository's scorecard of this model, both controls included
    study = json.loads((ROOT / "benchmarks" / "results" / "representation" / study_file).read_text())
    entry = re.search(r"`([^`]+)` \(this model\)", card).group(1)
    glance = card.split("## Model")[0]
    for line in scorecard_verdicts(study, [entry]):
        assert f"- {line}" in glance
    assert (f"weights_sha256 `{weights_sha256(path)}`" in card) is hashed


def test_package_data_ships_the_default_model(monkeypatch, tmp_path):
    package_data = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    assert '"pretrained/default/*"' in package_data.split("[")[1]  # the vitnirs = [...] list
    assert '"pretrained/robust/*"' in package_data.split("[")[1]
    import vitnirs.pretrained

    monkeypatch.setattr(vitnirs.pretrained, "ROBUST_DIR", tmp_path / "gone")
    with pytest.raises(VitnirsError, match="shipped robust model is missing"):
        load_encoder("robust")
    monkeypatch.setattr(vitnirs.pretrained, "DEFAULT_DIR", tmp_path / "gone")
    with pytest.raises(VitnirsError, match="shipped default model is missing"):
        load_encoder("default")
