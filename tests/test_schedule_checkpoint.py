"""LR schedule (pure function of the step) and checkpoints (atomic, safe to load, resumable)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from vitnirs.checkpoint import TRAINER_FILE, checkpoint_dir, latest_checkpoint, load_model, read_meta
from vitnirs.errors import VitnirsError
from vitnirs.train.checkpoint import capture_rng_state, load_trainer_state, restore_rng_state, save_checkpoint
from vitnirs.train.schedule import lr_at, warmup_and_total_steps


# ----------------------------------------------------------------------------- schedule
def test_warmup_is_linear_then_cosine_to_min():
    kw = {"base_lr": 1.0, "warmup_steps": 10, "total_steps": 110, "min_lr_ratio": 0.1}
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(4, **kw) == pytest.approx(0.5)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)  # half-way through the cosine
    assert lr_at(110, **kw) == pytest.approx(0.1)
    assert lr_at(500, **kw) == pytest.approx(0.1)
    lrs = [lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_schedule_edge_cases():
    assert lr_at(0, base_lr=2.0, warmup_steps=0, total_steps=10) == pytest.approx(2.0)
    assert lr_at(3, base_lr=2.0, warmup_steps=5, total_steps=5) == pytest.approx(2.0 * 4 / 5)
    assert lr_at(7, base_lr=2.0, warmup_steps=5, total_steps=5) == pytest.approx(2.0)
    assert warmup_and_total_steps(epochs=3, warmup_epochs=10, steps_per_epoch=4) == (12, 12)
    with pytest.raises(ValueError):
        lr_at(-1, base_lr=1.0, warmup_steps=0, total_steps=1)


# ----------------------------------------------------------------------------- checkpoints
class Tiny(torch.nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.width = width
        self.lin = torch.nn.Linear(width, width)
        self.register_buffer("count", torch.zeros(1))


def builder(preset: str, **kwargs):
    assert preset == "tiny"
    return Tiny(**kwargs)


CONFIG = {"model": {"preset": "tiny", "width": 4}, "training": {"lr": 0.1}}


def trained(seed: int = 0):
    torch.manual_seed(seed)
    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model.lin(torch.randn(3, 4)).square().mean().backward()
    opt.step()
    return model, opt


def save(run: Path, step: int, model, opt, **kw) -> Path:
    return save_checkpoint(
        run, step, model, opt, torch.amp.GradScaler("cpu", enabled=False), CONFIG,
        {"values": "per-spectrum"}, capture_rng_state(), **kw,
    )  # fmt: skip


def test_round_trip_rebuilds_model_and_optimizer(tmp_path):
    model, opt = trained()
    path = save(tmp_path, 12, model, opt)
    assert path == checkpoint_dir(tmp_path, 12) == tmp_path / "checkpoints" / "step_0000012"
    assert latest_checkpoint(tmp_path) == path
    loaded, info = load_model(path, builder=builder)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert info.config == CONFIG and info.step == 12 and info.checkpoint == str(path)
    assert read_meta(path)["model"]["kwargs"] == {"width": 4}
    assert info.normalization == {"values": "per-spectrum"}
    fresh = torch.optim.AdamW(Tiny().parameters(), lr=0.1)
    state = load_trainer_state(path, fresh)
    assert state["step"] == 12
    exp = opt.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], exp)


def test_trainer_state_loads_with_weights_only(tmp_path):
    model, opt = trained()
    path = save(tmp_path, 1, model, opt)
    state = torch.load(path / TRAINER_FILE, weights_only=True)
    assert set(state) >= {"optimizer", "scaler", "step", "rng"}


def test_rng_state_round_trip():
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    restore_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


def test_keep_last_n_and_tmp_dirs_never_picked(tmp_path):
    model, opt = trained()
    for step in (1, 2, 3, 4):
        save(tmp_path, step, model, opt, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_0000003", "step_0000004"]
    # A half-written checkpoint (what a kill during a save leaves) is never picked up.
    (tmp_path / "checkpoints" / ".tmp_step_0000009.x").mkdir()
    half = tmp_path / "checkpoints" / "step_0000010"
    half.mkdir()
    (half / "config.json").write_text("{}")
    assert latest_checkpoint(tmp_path).name == "step_0000004"
    # Re-saving an existing step replaces it.
    save(tmp_path, 4, model, opt, keep=2)
    assert latest_checkpoint(tmp_path).name == "step_0000004"
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    model, opt = trained()
    save(tmp_path, 1, model, opt)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, 2, model, opt)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000001"]


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(VitnirsError, match="no such checkpoint"):
        load_model(tmp_path / "missing", builder=builder)
    model, opt = trained()
    path = save(tmp_path, 1, model, opt)
    meta = json.loads((path / "config.json").read_text())
    meta["format_version"] = 99
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(VitnirsError, match="format_version 99"):
        load_model(path, builder=builder)
    os.remove(path / "model.safetensors")
    with pytest.raises(VitnirsError, match="missing model.safetensors"):
        load_model(path, builder=builder)


def test_a_checkpoint_of_another_builder_is_refused(tmp_path):
    model, opt = trained()
    path = save(tmp_path, 1, model, opt)
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["builder"] = "somewhere.else"
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(VitnirsError, match="somewhere.else"):
        load_model(path, builder=builder)
