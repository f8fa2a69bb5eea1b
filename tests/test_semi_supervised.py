"""The optional semi-supervised head: off by default (targets never read), on only with both
switches, its term logged, its state resumed exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_train import _table, cfg_with

from vitnirs.batching.collate import BatchSettings
from vitnirs.batching.loader import PretrainData
from vitnirs.checkpoint import latest_checkpoint, load_model
from vitnirs.config import ConfigError
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.train.checkpoint import load_trainer_state
from vitnirs.train.loop import pretrain
from vitnirs.train.objectives.semi_supervised import TargetHead

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

ON = ["training_strategy.use_targets_in_pretraining=true", "losses.semi_supervised_weight=0.5"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """As test_train's tiny store, with its targets named as a bank's (``y_*``)."""
    tables = [
        _table("nir_a", 60, np.linspace(1100, 2500, 50), "NIR", 0),
        _table("visnir_b", 40, np.linspace(400, 2500, 70), "vis-NIR", 1),
        _table("synth_c", 80, np.linspace(900, 1700, 60), "NIR", 2),
    ]
    for t in tables:
        t.targets = t.targets.rename(columns={"y": "y_a"})
    path = tmp_path_factory.mktemp("store") / "store"
    prepare(table_jobs(tables[:2], "real") + table_jobs(tables[2:], "synthetic"), path, progress=False)
    return path


def test_off_by_default_batches_carry_no_target(store, monkeypatch):
    cfg = cfg_with()
    assert cfg.losses.semi_supervised_weight == 0 and not cfg.training_strategy.use_targets_in_pretraining
    monkeypatch.setattr(PreparedStore, "targets", lambda self, name: pytest.fail("targets read while off"))
    data = PretrainData(store, settings=BatchSettings.from_config(cfg))
    assert "target" not in data.batch(0)


def test_one_switch_alone_is_refused():
    with pytest.raises(ConfigError, match="use_targets_in_pretraining"):
        cfg_with("losses.semi_supervised_weight=0.1")
    with pytest.raises(ConfigError, match="semi_supervised_weight"):
        cfg_with("training_strategy.use_targets_in_pretraining=true")


def test_targets_are_standardised_per_dataset_and_nan_for_synthetic(store):
    cfg = cfg_with(*ON, "training.batch_size=64")
    data = PretrainData(store, settings=BatchSettings.from_config(cfg), use_targets=True)
    st = PreparedStore(store)
    seen = {}
    for step in range(6):
        b = data.batch(step)
        for ds, t in zip(b["dataset_id"].tolist(), b["target"].tolist(), strict=True):
            seen.setdefault(data.names[ds], []).append(t)
    assert all(np.isnan(seen["synth_c"]))
    for name in ("nir_a", "visnir_b"):
        y = st.targets(name)["y_a"].to_numpy()
        expected = set(np.round((y - y.mean()) / y.std(), 4))
        assert set(np.round(seen[name], 4)) <= expected


def test_head_learns_a_planted_linear_target():
    torch.manual_seed(0)
    head = TargetHead(2, 8)
    emb = torch.randn(256, 8)
    ds = torch.randint(0, 2, (256,))
    w = torch.randn(2, 8)
    target = (emb * w[ds]).sum(-1)
    target[ds == 1] = float("nan")  # dataset 1 has no target: never in the loss
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        head(emb, ds, target).backward()
        opt.step()
    assert head(emb, ds, target).item() < 1e-3
    assert torch.allclose(head.weight[1], torch.zeros(8))  # no gradient ever reached it
    empty = head(emb, ds, torch.full((256,), float("nan")))
    assert empty.item() == 0.0 and empty.requires_grad


def test_term_is_logged_and_resume_is_exact(store, tmp_path):
    cfg = cfg_with(*ON)
    straight = pretrain(cfg, store=store, run_dir=tmp_path / "a", progress=False)
    pretrain(cfg, store=store, run_dir=tmp_path / "b", max_steps=3, progress=False)
    pretrain(cfg, store=store, run_dir=tmp_path / "b", resume=True, progress=False)
    assert straight["steps"] == 6
    a, _ = load_model(latest_checkpoint(tmp_path / "a"))
    b, _ = load_model(latest_checkpoint(tmp_path / "b"))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    ha = load_trainer_state(latest_checkpoint(tmp_path / "a"))["extra"]
    hb = load_trainer_state(latest_checkpoint(tmp_path / "b"))["extra"]
    # the objective's term state: the head's two tensors, keyed by the term's place among the terms
    assert {k.split(".", 1)[1] for k in ha} == {"head.weight", "head.bias"} and set(ha) == set(hb)
    (weight,) = (k for k in ha if k.endswith("head.weight"))
    assert ha[weight].shape == (3, a.encoder.d_model)
    assert torch.equal(ha[weight], hb[weight]) and ha[weight].abs().sum() > 0
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert all("semi_supervised" in line for line in lines)
