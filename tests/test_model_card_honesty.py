"""The model card says only what belongs to its checkpoint (issue 22): the weights hash that
results files record, downstream files of other weights ignored, no ``nan``, datasets with their
region, the pretraining regions and float32 weights by default."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import absorbance_table, tiny_checkpoint
from safetensors import safe_open

from vitnirs.checkpoint import latest_checkpoint, weights_sha256
from vitnirs.cli import build_parser, main
from vitnirs.config import load_config
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.signal import REGION_RANGES_NM
from vitnirs.workflows.card_sources import find_store
from vitnirs.workflows.evaluation import evaluate
from vitnirs.workflows.export import export_checkpoint
from vitnirs.workflows.model_card import CardInputs, build_model_card

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "model.preset=tiny", "training.batch_size=4", "training_strategy.steps_per_epoch=2", "training.epochs=1",
    "training.warmup_epochs=1", "training.num_workers=0", "training.log_every=1", "training.checkpoint_every=2",
    "training.probe_every=0", "training.probe_samples=20", "training.max_points=64", "masking.min_block_size=2",
    "masking.max_block_size=8", "training_strategy.p_synth=0", "data.regions=[NIR, vis-NIR]",
]  # fmt: skip


def _table(name: str, grid: np.ndarray, region: str, seed: int, n: int = 40):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, len(grid))[None, :]
    c = rng.uniform(0.2, 1.0, n)
    values = (
        0.5 + 0.2 * x + c[:, None] * np.exp(-(((x - 0.5) / 0.08) ** 2)) + rng.normal(0, 2e-3, (n, len(grid)))
    )
    return absorbance_table(name, values, grid, targets={"y_c": c}, region=region)


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory) -> Path:
    """``ROOT/store`` (a NIR and a vis-NIR dataset) and ``ROOT/pretrain``: a 2-step CLI pretraining,
    its summary stripped of its duration as `vitnirs demo` writes it (the layout of demo_run/)."""
    root = tmp_path_factory.mktemp("demo_like")
    tables = [_table("nir_a", np.linspace(1100, 2500, 50), "NIR", 0), _table("visnir_b", np.linspace(400, 2498, 70), "vis-NIR", 1)]  # fmt: skip
    prepare(table_jobs(tables, "real"), root / "store", progress=False)
    args = ["pretrain", "--out", str(root / "pretrain"), "--store", str(root / "store"), "--no-progress"]
    assert main(args + [x for s in TINY for x in ("--set", s)]) == 0
    summary_file = root / "pretrain" / "pretrain_summary.json"
    summary = json.loads(summary_file.read_text())
    summary.pop("seconds")  # the demo's summary has no duration: the card said "in nan min"
    summary.pop("store", None)  # a run from before the summary recorded its store: found beside the run
    summary_file.write_text(json.dumps(summary))
    return root


def _results(sha: str | None, checkpoint: str = "runs/old_model") -> dict:
    """A benchmarks/downstream.py result of weights ``sha``: one target, lost by the embedding."""
    row = {
        "dataset": "nir_a", "target": "y_c", "task": "regression", "protocol": "native",
        "best_classical": {"method": "pls_raw", "rmsep": 0.5}, "best_embedding": {"method": "embedding+ridge",
        "rmsep": 0.75}, "embedding_vs_best_classical": 1.5, "embedding_wins": False,
    }  # fmt: skip
    return {"checkpoint": checkpoint, "weights_sha256": sha, "banks": {"xbank": {"summary": [row]}}}


def test_metrics_and_pretrain_summary_carry_the_weights_hash(demo_like, tmp_path):
    ckpt = latest_checkpoint(demo_like / "pretrain")
    sha = weights_sha256(ckpt)
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    assert json.loads((demo_like / "pretrain" / "pretrain_summary.json").read_text())["weights_sha256"] == sha
    cfg = load_config(None, [
        "evaluation.baseline_methods=[pls_raw]", "evaluation.downstream_methods=[ridge]", "evaluation.repeats=0",
        "evaluation.transfer=false", "evaluation.robustness=false", "evaluation.synthetic_checks=false",
        "evaluation.untrained_control=false", "evaluation.classical_control=false", "evaluation.artefacts=false",
    ])  # fmt: skip
    evaluate(
        cfg, checkpoint=demo_like / "pretrain", store=demo_like / "store", out=tmp_path / "ev", progress=False
    )
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["weights_sha256"] == sha
    other = tiny_checkpoint(tmp_path / "other", seed=1)
    assert weights_sha256(other) != sha


def test_export_defaults_to_float32_with_the_same_weights_hash(demo_like, tmp_path):
    ckpt = latest_checkpoint(demo_like / "pretrain")
    assert build_parser().parse_args(["export", str(ckpt), "--out", "x"]).dtype == "float32"
    out = export_checkpoint(ckpt, tmp_path / "portable")
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F32"}  # noqa: SIM118
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert weights_sha256(out) == weights_sha256(ckpt)  # the same bytes: results of the run hold for it
    half = export_checkpoint(ckpt, tmp_path / "half", dtype="bfloat16")
    assert weights_sha256(half) != weights_sha256(ckpt)


def test_card_of_the_readme_command_has_regions_and_no_nan(demo_like, tmp_path, capsys):
    """`vitnirs export demo_run/pretrain --out my_model`, as the README runs it."""
    assert main(["export", str(demo_like / "pretrain"), "--out", str(tmp_path / "my_model")]) == 0
    card = (tmp_path / "my_model" / "model_card.md").read_text()
    assert not re.search(r"\bnan\b", card, re.IGNORECASE), card
    assert "2 steps (duration not recorded)" in card
    assert "| nir_a | real | 40 | NIR |" in card and "| visnir_b | real | 40 | vis-NIR |" in card
    assert "2 real (80 spectra); spectrum counts from the prepared store's manifest" in card
    nir, vis = REGION_RANGES_NM["NIR"], REGION_RANGES_NM["vis-NIR"]
    assert f"NIR ({nir[0]:,.0f}–{nir[1]:,.0f} nm), vis-NIR ({vis[0]:,.0f}–{vis[1]:,.0f} nm)" in card
    assert "of the lattice's 350 nm–25 µm" in card and "Not pretrained on: MIR" in card
    assert "the datasets it saw span 400–2,500 nm" in card
    assert "Pretrained on NIR, vis-NIR spectra" in card.split("## Model")[0]
    assert "F32" in card and "loader casts" not in card


def test_a_foreign_downstream_file_is_ignored_with_a_warning(demo_like, tmp_path, capsys):
    ckpt = latest_checkpoint(demo_like / "pretrain")
    other = tiny_checkpoint(tmp_path / "old_model")
    for i, sha in enumerate([weights_sha256(other), None]):  # another model's results; a file of no hash
        foreign = tmp_path / f"downstream_{i}.json"
        foreign.write_text(json.dumps(_results(sha, checkpoint=str(other))))
        capsys.readouterr()
        card = build_model_card(ckpt, CardInputs(run_dir=demo_like / "pretrain", downstream=foreign))
        err = capsys.readouterr().err
        assert f"warning: {foreign}: ignored for the model card" in err
        assert str(other) in err and str(ckpt) in err  # both checkpoints named ...
        assert weights_sha256(ckpt)[:12] in err and (sha is None or sha[:12] in err)  # ... and both hashes
        assert "loses to the best classical" not in card and "pls_raw: 0.5" not in card
        assert "scored other weights" in card


def test_the_same_checkpoints_downstream_file_is_used(demo_like, tmp_path, capsys):
    ckpt = latest_checkpoint(demo_like / "pretrain")
    own = tmp_path / "downstream.json"
    own.write_text(json.dumps(_results(weights_sha256(ckpt), checkpoint=str(ckpt))))
    args = ["export", str(demo_like / "pretrain"), "--downstream", str(own), "--out"]
    assert main([*args, str(tmp_path / "f32")]) == 0
    card = (tmp_path / "f32" / "model_card.md").read_text()
    assert "warning" not in capsys.readouterr().err
    assert "loses to the best classical calibration on 1 of 1 xbank targets" in card
    assert "| nir_a / y_c | native | pls_raw: 0.5 | embedding+ridge: 0.75 | 1.5 |" in card
    assert "it scored these weights" in card
    # a bfloat16 export shows the float32 source's results, saying they were measured before the cast
    assert main([*args, str(tmp_path / "bf16"), "--dtype", "bfloat16"]) == 0
    card = (tmp_path / "bf16" / "model_card.md").read_text()
    assert "1 of 1 xbank targets" in card and "before their rounding to bfloat16" in card


def test_the_store_is_the_one_the_run_recorded(tmp_path):
    """`--store` first, then the run's own record, the config's, RUN_DIR/store, RUN_DIR/../store."""
    run, recorded, beside = (
        tmp_path / "root" / "pretrain",
        tmp_path / "elsewhere",
        tmp_path / "root" / "store",
    )
    for d in (run, recorded, beside):
        d.mkdir(parents=True)
    for d in (recorded, beside):
        (d / "manifest.json").write_text('{"datasets": []}')
    assert find_store(None, run, summary={"store": str(recorded)}, config={}) == recorded
    assert find_store(None, run, summary={"store": str(tmp_path / "gone")}, config={}) == beside
    assert find_store("given", run, summary={"store": str(recorded)}, config={}) == Path("given")
    assert find_store(None, None, summary=None, config={"data": {"store_dir": str(beside)}}) == beside
    assert find_store(None, tmp_path / "x" / "y", summary=None, config={}) is None


def test_card_says_what_a_ridge_run_never_measured_and_never_sampled():
    from vitnirs.workflows.card_data import dataset_rows
    from vitnirs.workflows.model_card import pretraining_lines

    store = {"datasets": [{"name": "corn", "kind": "real", "n_rows": 80, "region": "NIR"},
                          {"name": "synth_a", "kind": "synthetic", "n_rows": 500, "region": "NIR",
                           "source": "synthetic:nirs4all"}]}  # fmt: skip
    table, summary = dataset_rows(["corn", "synth_a"], store, [], p_synth=0.0)
    assert "never sampled in pretraining (p_synth = 0)" in summary[0]
    assert "never sampled in pretraining: p_synth = 0" in table[-1]
    table, summary = dataset_rows(["corn", "synth_a"], store, [], p_synth=0.3)
    assert "never sampled" not in summary[0] + table[-1]
    lines = "\n".join(
        pretraining_lines(
            {"steps": 3200, "final": {"fewshot_ridge": 0.5, "fewshot_ridge_groups": 2.0, "total": 0.5}},
            {"step": 3200, "lr": 1e-4, "fewshot_ridge": 0.4, "fewshot_ridge_groups": 2.0, "total": 0.4},
        )
    )
    assert "masked reconstruction MSE: not measured" in lines and "probe AUC: not measured" in lines
    assert "groups" not in lines and "fewshot_ridge 0.4" in lines and "lr" not in lines
