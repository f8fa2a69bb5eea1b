"""The pretraining loop on a tiny store: exact resume, non-finite stop, CLI, loss goes down."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import absorbance_table

from vitnirs.checkpoint import latest_checkpoint, load_model
from vitnirs.cli import main
from vitnirs.config import MODEL_PRESETS, load_config
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.table import SpectralTable
from vitnirs.errors import VitnirsError
from vitnirs.train.loop import pretrain

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

TINY = [
    "model.preset=tiny", "training.batch_size=4", "training_strategy.steps_per_epoch=3",
    "training.epochs=2", "training.warmup_epochs=1", "training.num_workers=0", "training.log_every=1",
    "training.checkpoint_every=2", "training.probe_every=0", "training.probe_samples=20",
    "training.max_points=64", "masking.min_block_size=2", "masking.max_block_size=8",
    "training_strategy.p_synth=0.3", "data.regions=[NIR, vis-NIR]",
]  # fmt: skip


def _table(name: str, n: int, grid: np.ndarray, region: str, seed: int) -> SpectralTable:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, len(grid))[None, :]
    centre = rng.uniform(0.3, 0.7, (n, 1))
    values = (
        0.5
        + rng.uniform(0, 0.3, (n, 1)) * x
        + rng.uniform(0.1, 0.6, (n, 1)) * np.exp(-(((x - centre) / 0.08) ** 2))
    )
    values = values + rng.normal(0, 0.002, values.shape)
    return absorbance_table(name, values, grid, targets={"y": rng.normal(size=n)}, region=region)


def make_tiny_store(path: Path) -> Path:
    """Two real datasets (NIR 50 points, vis-NIR 70 points) and one synthetic one (60 points)."""
    real = [
        _table("nir_a", 60, np.linspace(1100, 2500, 50), "NIR", 0),
        _table("visnir_b", 40, np.linspace(400, 2500, 70), "vis-NIR", 1),
    ]
    synth = [_table("synth_c", 80, np.linspace(900, 1700, 60), "NIR", 2)]
    prepare(table_jobs(real, "real") + table_jobs(synth, "synthetic"), path, progress=False)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_tiny_store(tmp_path_factory.mktemp("store") / "store")


def cfg_with(*extra: str):
    return load_config(overrides=[*TINY, *extra])


def test_config_presets_match_the_model_presets():
    from vitnirs.model import PRESETS

    for name, sizes in MODEL_PRESETS.items():
        assert {k: PRESETS[name][k] for k in sizes} == sizes


def test_resume_gives_identical_weights(store, tmp_path):
    cfg = cfg_with("losses.contrastive_weight=0.1", "training.checkpoint_every=2")
    straight = pretrain(cfg, store=store, run_dir=tmp_path / "a", progress=False)
    assert straight["steps"] == 6
    pretrain(cfg, store=store, run_dir=tmp_path / "b", max_steps=3, progress=False)
    assert latest_checkpoint(tmp_path / "b").name == "step_0000003"
    resumed = pretrain(cfg, store=store, run_dir=tmp_path / "b", resume=True, progress=False)
    assert resumed["start_step"] == 3 and resumed["steps"] == 6
    a, _ = load_model(latest_checkpoint(tmp_path / "a"))
    b, info = load_model(latest_checkpoint(tmp_path / "b"))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert info.step == 6 and info.normalization["datasets"] == ["nir_a", "synth_c", "visnir_b"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))  # one clean curve across the resume
    terms = json.loads((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"mae", "baseline", "contrastive", "total", "lr", "spectra_per_s", "data_wait_fraction"} <= set(
        terms
    )


def test_refuses_to_overwrite_and_resume_needs_a_checkpoint(store, tmp_path):
    cfg = cfg_with("training.epochs=1", "training_strategy.steps_per_epoch=2")
    pretrain(cfg, store=store, run_dir=tmp_path / "run", progress=False)
    with pytest.raises(VitnirsError, match="--resume"):
        pretrain(cfg, store=store, run_dir=tmp_path / "run", progress=False)
    with pytest.raises(VitnirsError, match="no checkpoint"):
        pretrain(cfg, store=store, run_dir=tmp_path / "empty", resume=True, progress=False)
    with pytest.raises(VitnirsError, match="differs"):
        pretrain(
            cfg_with("model.d_model=64"), store=store, run_dir=tmp_path / "run", resume=True, progress=False
        )


def test_non_finite_loss_stops_with_step_and_terms(store, tmp_path, monkeypatch):
    from vitnirs.train.objectives import PretrainObjective

    original = PretrainObjective.forward
    calls = {"n": 0}

    def poisoned(self, batch):
        total, terms = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 3:  # the third training step (step 2)
            total, terms = total * float("nan"), {**terms, "mae": terms["mae"] * float("nan")}
        return total, terms

    monkeypatch.setattr(PretrainObjective, "forward", poisoned)
    cfg = cfg_with("training.checkpoint_every=100")
    with pytest.raises(VitnirsError, match=r"non-finite loss at step 2 \(.*\bmae=nan"):
        pretrain(cfg, store=store, run_dir=tmp_path / "run", progress=False)
    assert latest_checkpoint(tmp_path / "run") is None  # nothing saved


@pytest.mark.filterwarnings("ignore:synthetic vs real embeddings are separable")
def test_cli_pretrain_writes_the_run(store, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pretrain", "--out", str(out), "--store", str(store), "--no-progress"]
    sets = [*TINY, "training.epochs=1", "training_strategy.steps_per_epoch=2", "training.batch_size=4"]
    sets.append("training.probe_samples=60")  # enough held-out real and synthetic spectra for the probe AUC
    code = main(args + [x for s in [*sets, "training.probe_every=2"] for x in ("--set", s)])
    assert code == 0, capsys.readouterr().err
    assert (out / "metrics.jsonl").is_file() and (out / "loss_curve.png").stat().st_size > 1000
    assert (out / "config.yaml").is_file() and (out / "pretrain_summary.json").is_file()
    assert latest_checkpoint(out).name == "step_0000002"
    assert "pretrained to step 2/2" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / "pretrain_summary.json").read_text())
    assert isinstance(rows[-1]["probe_auc"], float) and rows[-1]["probe_auc"] == summary["probe_auc"]
    assert rows[-1]["heldout_recon_mse"] > 0
    assert (
        1.0 <= rows[-1]["embedding_effective_rank"] <= 32 and rows[-1]["embedding_dim_std"] > 0
    )  # tiny: D = 32
    assert main(["pretrain", "--out", str(out), "--store", str(tmp_path / "nope")]) == 2


def test_cli_pretrain_on_a_bank_folder(csvs, tmp_path, capsys):
    """`pretrain --bank DIR` prepares the folder into RUN_DIR/store, as `prepare --bank` does."""
    bank = tmp_path / "bank"
    csvs.good("a.csv", n=30, folder=bank)
    csvs.good("b.csv", n=30, seed=1, folder=bank)
    out = tmp_path / "run"
    sets = [*TINY, "training.epochs=1", "training_strategy.steps_per_epoch=2", "training.batch_size=4",
            "data.synth_samples=0", "training_strategy.p_synth=0", "training.probe_every=0"]  # fmt: skip
    args = ["pretrain", "--out", str(out), "--bank", str(bank), "--no-progress"]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0, capsys.readouterr().err
    assert sorted(
        json.loads((out / "store" / "manifest.json").read_text())["datasets"][i]["name"] for i in (0, 1)
    ) == [
        "a",
        "b",
    ]
    assert latest_checkpoint(out).name == "step_0000002"
    assert main(["pretrain", "--out", str(tmp_path / "r2"), "--bank", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.slow
def test_pretraining_reduces_the_heldout_recon_mse(store, tmp_path):
    cfg = cfg_with(
        "training.epochs=6", "training_strategy.steps_per_epoch=20", "training.lr=2e-3",
        "training.batch_size=16", "training.checkpoint_every=1000", "training.probe_samples=64",
        "training.log_every=20", "model.dropout=0.0",
    )  # fmt: skip
    summary = pretrain(cfg, store=store, run_dir=tmp_path / "run", progress=False)
    assert summary["heldout_recon_mse_end"] < 0.8 * summary["heldout_recon_mse_start"], summary


# ----------------------------------------------------------------------------- the probe
class _ProbeData:
    """Held-out batches of 8 (half synthetic); synthetic spectra offset by ``shift``."""

    def __init__(self, shift: float, synthetic_every: int = 2):
        self.shift, self.synthetic_every = shift, synthetic_every

    def batch(self, step: int) -> dict:
        g = torch.Generator().manual_seed(step % 1000)
        is_synthetic = torch.arange(8) % self.synthetic_every == 0
        values = torch.randn(8, 16, generator=g) + self.shift * is_synthetic[:, None]
        return {"values": values, "wavelengths": torch.zeros(8, 16), "valid": torch.ones(8, 16, dtype=torch.bool),
                "level": torch.zeros(8), "is_synthetic": is_synthetic, "view2": {}}  # fmt: skip


class _Encoder(torch.nn.Module):
    """Embeds a spectrum as itself; its loss is the mean value."""

    def encode(self, values, wavelengths, valid, level, meta):
        return SimpleNamespace(embedding=values)  # an EncoderOutput's embedding

    def forward(self, batch):
        return (batch["values"].mean(),)


def test_probe_auc_high_when_separable_near_half_when_not():
    from vitnirs.train.probe import AUC_WARNING, Probe

    model = _Encoder().train()
    with pytest.warns(UserWarning, match="separable"):
        far = Probe(_ProbeData(shift=3.0), 200, None, torch.device("cpu"))(model)
    assert far["probe_auc"] > AUC_WARNING and model.training  # train mode restored
    same_probe = Probe(_ProbeData(shift=0.0), 200, None, torch.device("cpu"))
    same = same_probe(model)
    assert 0.3 < same["probe_auc"] < 0.7 and same_probe.last_auc == same["probe_auc"]
    expected_mae = np.mean([float(b["values"].mean()) for b in same_probe.batches])
    assert same["heldout_recon_mse"] == pytest.approx(expected_mae)
    assert len(same_probe.batches) == 25 and "view2" not in same_probe.batches[0]


def test_probe_auc_is_none_with_too_few_synthetic_spectra():
    from vitnirs.train.probe import Probe

    probe = Probe(_ProbeData(shift=3.0, synthetic_every=8), 64, None, torch.device("cpu"))  # 8 of 64
    assert probe(_Encoder())["probe_auc"] is None and probe.last_auc is None
