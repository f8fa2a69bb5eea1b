"""Two processes with DDP on CPU (gloo), as ``torchrun --nproc_per_node=2`` would run them."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from vitnirs.checkpoint import latest_checkpoint, load_model
from vitnirs.config import load_config
from vitnirs.train.loop import pretrain

SETS = [
    "model.preset=tiny", "training.batch_size=4", "training_strategy.steps_per_epoch=3",
    "training.epochs=1", "training.warmup_epochs=0", "training.num_workers=0", "training.log_every=1",
    "training.checkpoint_every=3", "training.probe_every=0", "training.probe_samples=20",
    "training.max_points=64", "masking.min_block_size=2", "masking.max_block_size=8",
    "training.device=cpu",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, store: str, run_dir: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    import vitnirs.train.loop as loop

    captured = {}
    original = loop.build_model

    def build_and_keep(cfg):
        captured["model"] = original(cfg)
        return captured["model"]

    loop.build_model = build_and_keep
    summary = pretrain(load_config(overrides=SETS), store=store, run_dir=run_dir, progress=False)
    torch.save(captured["model"].state_dict(), Path(out) / f"rank{rank}.pt")
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({"steps": summary.get("steps")}))


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    from test_train import make_tiny_store

    store = make_tiny_store(tmp_path / "store")
    run_dir, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(store), str(run_dir), str(out)), nprocs=2, join=True)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key, value in ranks[0].items():  # DDP kept the replicas identical
        assert torch.equal(value, ranks[1][key]), key
    assert json.loads((out / "rank0.json").read_text())["steps"] == 3
    assert json.loads((out / "rank1.json").read_text())["steps"] is None  # rank 1 does not report
    saved, info = load_model(latest_checkpoint(run_dir))
    assert info.step == 3
    for key, value in saved.state_dict().items():
        assert torch.equal(value, ranks[0][key]), key
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3]  # written by rank 0 only
    # Each rank drew its own batches: 2 x 4 spectra per step.
    assert json.loads(rows[-1])["spectra_per_s"] > 0
