"""The CLI as a new user meets it (issue 22): every help text free of internal jargon and of
"(default: None)", `embed --readout`, and `finetune --unit/--signal-type` declaring the bank's
files instead of a guess."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from test_embedder import D_TINY, tiny_checkpoint

from vitnirs.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _help(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_help().split())  # wrapped to the terminal width: one line


# ----------------------------------------------------------------------------- help texts
def test_every_help_text_reads_without_jargon_or_empty_defaults():
    texts = {"vitnirs": _help(build_parser())} | {name: _help(p) for name, p in _subparsers().items()}
    assert len(texts) == 15  # the top level and its 14 commands
    for name, text in texts.items():
        assert "(default: None)" not in text, name  # required options and run-time defaults
        assert "(default: False)" not in text, name  # flags
        assert "(default: [])" not in text, name
        assert "Phase 0" not in text, name  # the roadmap's name: "the classical baselines"
        assert "emb_0" not in text, name  # the shipped readout's columns are emb_g0_0 …
        assert "xbank" not in text, name  # the development bank is not the user's
    assert "Perceiver" not in texts["pretrain"]  # a transformer on patch tokens unless the config says so
    assert "the classical baselines" in texts["evaluate"].lower()
    assert "emb_g0_0" in texts["embed"] and "level_mean" in texts["embed"]


def test_every_option_says_what_it_does():
    for name, parser in _subparsers().items():
        silent = [a.dest for a in parser._actions if not a.help and a.dest != "help"]
        assert silent == [], (name, silent)


def test_set_has_one_wording_and_one_metavar():
    found = {
        name: next(a for a in p._actions if "--set" in a.option_strings)
        for name, p in _subparsers().items()
        if any("--set" in a.option_strings for a in p._actions)
    }
    assert {"prepare", "pretrain", "evaluate", "ablate", "study", "lodo", "config"} <= set(found)
    assert {a.metavar for a in found.values()} == {"SECTION.KEY=VALUE"}
    for name, action in found.items():
        assert action.help.startswith("override one config key"), name
        assert action.help.endswith("(repeatable), e.g. --set training.epochs=1"), name


def test_readout_options_offer_every_readout():
    from vitnirs.model.readout import READOUTS
    from vitnirs.workflows.commands import READOUT_CHOICES

    assert READOUT_CHOICES == READOUTS  # the CLI's copy, kept so that `vitnirs --help` does not import torch
    commands = _subparsers()
    for name in ("embed", "export", "study"):
        action = next(a for a in commands[name]._actions if "--readout" in a.option_strings)
        assert tuple(action.choices) == READOUTS, name
    embed = next(a for a in commands["embed"]._actions if "--readout" in a.option_strings)
    assert embed.default is None  # the checkpoint's readout


def test_unit_and_signal_type_have_one_wording_in_every_command():
    from vitnirs.data.signal import SIGNAL_TYPES

    commands = _subparsers()
    options = {
        name: {a.option_strings[0]: a for a in commands[name]._actions if a.option_strings}
        for name in ("prepare", "embed", "finetune")
    }
    for name, by_flag in options.items():
        signal = by_flag["--signal-type"].help.replace("%%", "%")
        assert all(t in signal for t in SIGNAL_TYPES), name  # unknown included
        assert by_flag["--unit"].metavar == "UNIT" and by_flag["--signal-type"].metavar == "TYPE"
    # one helper: the same sentence after the files it names
    tails = {n: o["--signal-type"].help.split(":", 1)[1] for n, o in options.items()}
    assert len(set(tails.values())) == 1, tails


# ----------------------------------------------------------------------------- embed --readout
GRID = np.arange(1100.0, 2300.0, 30.0)


def _bank_csv(path, n: int = 12, seed: int = 0, reflectance: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, len(GRID))[None, :]
    values = (
        0.4 + rng.uniform(0, 0.3, (n, 1)) + 0.3 * np.exp(-(((x - rng.uniform(0.3, 0.7, (n, 1))) / 0.1) ** 2))
    )
    if reflectance:
        values = 10.0**-values  # R = 10^-A: 0.2-0.4
    frame = pd.DataFrame(np.round(values, 6), columns=[f"{w:g}" for w in GRID])
    frame.insert(0, "y_a", np.round(rng.uniform(0, 1, n), 4))
    frame.insert(0, "partition", ["cal"] * (n - 4) + ["test"] * 4)
    frame.insert(0, "sample_id", [f"s{i}" for i in range(n)])
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.usefixtures("one_thread")
def test_embed_readout_chooses_the_columns(tmp_path, capsys):
    ckpt = str(tiny_checkpoint(tmp_path / "run"))
    _bank_csv(tmp_path / "in.csv")
    common = ["embed", str(tmp_path / "in.csv"), "--checkpoint", ckpt, "--unit", "nm"]
    common += ["--signal-type", "absorbance", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "mean.csv")]) == 0  # the checkpoint's readout: mean
    assert main([*common, "--out", str(tmp_path / "g4.csv"), "--readout", "groups4"]) == 0
    mean, g4 = pd.read_csv(tmp_path / "mean.csv"), pd.read_csv(tmp_path / "g4.csv")
    emb = lambda f: [c for c in f.columns if c.startswith("emb_")]  # noqa: E731
    assert emb(mean) == [f"emb_{i}" for i in range(D_TINY)]
    assert emb(g4) == [f"emb_g{g}_{i}" for g in range(4) for i in range(D_TINY)]
    assert list(g4.columns[:3]) == ["sample_id", "partition", "y_a"]  # metadata and targets kept


def test_embed_refuses_an_unknown_readout(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["embed", "in.csv", "--out", str(tmp_path / "o.csv"), "--readout", "max"])
    assert info.value.code == 2
    assert "invalid choice: 'max'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- finetune declarations
def _stub_finetune(monkeypatch) -> list[dict]:
    """Replace the training by a stub: these tests are about what is prepared and said."""
    calls: list[dict] = []

    def fake(checkpoint, store, dataset, targets, **kw):
        calls.append({"store": store, "dataset": dataset, "targets": targets})
        return {"targets": [], "protocol": "native", "finetuned_checkpoint": str(kw["out"])}

    monkeypatch.setattr("vitnirs.workflows.finetune.finetune", fake)
    return calls


@pytest.mark.parametrize("declared", [True, False])
def test_finetune_uses_the_declared_unit_and_signal_type(tmp_path, capsys, monkeypatch, declared):
    calls = _stub_finetune(monkeypatch)
    frame = _bank_csv(tmp_path / "mine.csv", reflectance=True)
    args = ["finetune", "--checkpoint", "default", "--bank", str(tmp_path / "mine.csv"), "--target", "y_a"]
    args += ["--out", str(tmp_path / "ft"), "--no-progress"]
    if declared:
        args += ["--unit", "nm", "--signal-type", "reflectance"]
    assert main(args) == 0
    err = capsys.readouterr().err
    record = calls[0]["store"].records["mine"]
    if not declared:  # the guess, and the warning that says to declare it (shown since this issue)
        assert "signal type not declared" in err and "--signal-type" in err, err
        return
    assert "guess" not in err and "not declared" not in err, err
    assert record["signal_type_original"] == "reflectance" and record["signal_type_stored"] == "absorbance"
    stored = np.asarray(calls[0]["store"].values("mine"))
    R = frame[[f"{w:g}" for w in GRID]].to_numpy()
    np.testing.assert_allclose(stored, np.log10(1.0 / R), rtol=1e-5)  # log10(1/R), float32 store


def test_finetune_refuses_declarations_for_a_prepared_store(tmp_path, capsys):
    code = main(["finetune", "--checkpoint", "default", "--store", str(tmp_path), "--target", "y_a",
                 "--out", str(tmp_path / "ft"), "--signal-type", "absorbance"])  # fmt: skip
    assert code == 2
    assert "--store is already prepared" in capsys.readouterr().err


def test_finetune_takes_the_aliases_prepare_takes(tmp_path, capsys, monkeypatch):
    _stub_finetune(monkeypatch)
    _bank_csv(tmp_path / "mine.csv")
    assert main(["finetune", "--checkpoint", "default", "--bank", str(tmp_path / "mine.csv"), "--target", "y_a",
                 "--out", str(tmp_path / "ft"), "--unit", "nm", "--signal-type", "A", "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"results: {tmp_path / 'ft' / 'finetune.json'}" in out
    manifest = json.loads((tmp_path / "ft" / "store" / "manifest.json").read_text())
    assert manifest["datasets"][0]["signal_type_original"] == "absorbance"  # the alias A, declared
