"""A pretraining run's warnings are vitnirs's own (issue 22): none comes from torch, the probe's
warnings name the training loop (not torch's decorator wrapper) and come once per run, and the
CLI prints our own warnings as ``warning: …`` lines."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from test_train import TINY, make_tiny_store

from vitnirs.config import load_config
from vitnirs.train.loop import pretrain

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_tiny_pretraining_emits_no_warning_from_torch(tmp_path, monkeypatch):
    # both probe warnings made to fire at every probe: the run must still say each once
    monkeypatch.setattr("vitnirs.train.probe.AUC_WARNING", -1.0)
    monkeypatch.setattr("vitnirs.train.probe.RANK_WARNING", 1e9)
    store = make_tiny_store(tmp_path / "store")
    cfg = load_config(overrides=[*TINY, "training.probe_every=1", "training.probe_samples=64"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = pretrain(cfg, store=store, run_dir=tmp_path / "run", progress=False)
    assert summary["steps"] == 6 and summary["probe_auc"] is not None  # six probes, each with an AUC
    where = [(Path(w.filename).as_posix(), str(w.message)[:60]) for w in caught]
    assert not [w for w in where if "/torch/" in w[0]], where
    probe = [w for w in where if "separable" in w[1] or "effective rank" in w[1]]
    assert len(probe) == 2, where  # once per run and kind
    assert all(f.endswith("vitnirs/train/loop.py") for f, _ in probe), probe  # where the probe is called


def test_the_cli_prints_our_own_warnings_as_lines():
    import vitnirs.train.loop
    from vitnirs.cli import _own_warnings_as_lines

    ours, theirs = vitnirs.train.loop.__file__, "/site-packages/torch/utils/_contextlib.py"
    with _own_warnings_as_lines():
        assert (
            warnings.formatwarning("probe AUC 1.000", UserWarning, ours, 133) == "warning: probe AUC 1.000\n"
        )
        other = warnings.formatwarning("deprecated", UserWarning, theirs, 124, line="x")
    assert other.startswith(f"{theirs}:124: UserWarning: deprecated")  # other libraries: Python's format
    assert warnings.formatwarning("m", UserWarning, ours, 1, line="x").startswith(ours)  # restored after
