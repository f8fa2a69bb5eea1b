"""A checkpoint carries the readout it is meant for; SpectralEmbedder, ``vitnirs embed`` and the
model card follow it, for both trunks (issue 15); checkpoints written before the tokenizer x trunk
split still load, with the same embeddings (issue 21)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vitnirs import SpectralEmbedder
from vitnirs.checkpoint import CONFIG_FILE, FORMAT_VERSION, write_checkpoint
from vitnirs.embedding import embed_spectra, load_encoder, with_readout
from vitnirs.errors import VitnirsError
from vitnirs.model import build_mae
from vitnirs.workflows.card_scorecard import scorecard_lines, scorecard_verdicts
from vitnirs.workflows.export import export_checkpoint
from vitnirs.workflows.model_card import CardInputs, build_model_card

PATCH = {"n_self_layers": 1, "channels": ["absorbance", "sg1"]}
PERCEIVER = {"trunk": "perceiver", "n_latents": 8, "n_cross_layers": 1, "n_self_layers": 1}


def checkpoint(tmp: Path, kwargs: dict, readout: str | None = None) -> Path:
    """An untrained tiny checkpoint (seed 0) with ``evaluation.readout`` when given."""
    torch.manual_seed(0)
    model = build_mae("tiny", **kwargs)
    config = {"model": {"preset": "tiny", **kwargs}, "evaluation": {"readout": readout} if readout else {}}
    meta = {
        "format_version": FORMAT_VERSION,
        "step": 0,
        "model": {"builder": "vitnirs.model.build_mae", "preset": "tiny", "kwargs": kwargs},
        "normalization": {"max_points": 512, "meta_vocab": {}, "datasets": []},
        "config": config,
    }
    return write_checkpoint(tmp / "ckpt", model.state_dict(), meta)


def spectra(n: int = 10, L: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    w = np.linspace(1100.0, 2500.0, L)
    X = np.exp(-(((w[None] - rng.uniform(1300, 2300, (n, 1))) / 80.0) ** 2)) + 0.01 * rng.normal(size=(n, L))
    return X, w


@pytest.mark.parametrize("kwargs", [PATCH, PERCEIVER], ids=["transformer", "perceiver"])
def test_the_embedder_follows_the_checkpoint_readout(tmp_path, kwargs):
    ckpt = checkpoint(tmp_path, kwargs, readout="groups8")
    X, w = spectra()
    auto = SpectralEmbedder(str(ckpt), wavelengths=list(w)).fit(X)
    assert auto.pooling_ == "groups8" and auto.embedding_dim_ == 8 * 32  # tiny: d_model 32
    model, info = load_encoder(ckpt)
    assert info.readout == "groups8"
    np.testing.assert_allclose(auto.transform(X), embed_spectra(model, X, w, info=info), rtol=1e-6, atol=1e-6)
    mean = SpectralEmbedder(str(ckpt), wavelengths=list(w), pooling="mean").fit(X)
    assert mean.pooling_ == "mean" and mean.transform(X).shape == (10, 32)
    np.testing.assert_allclose(
        mean.transform(X), embed_spectra(model, X, w, info=with_readout(info, "mean")), rtol=1e-6, atol=1e-6
    )
    assert auto.get_feature_names_out()[0] == "emb_g0_0" and len(auto.get_feature_names_out()) == 256


def test_a_checkpoint_without_a_readout_is_read_out_by_its_mean(tmp_path):
    ckpt = checkpoint(tmp_path, PATCH)
    X, w = spectra()
    emb = SpectralEmbedder(str(ckpt), wavelengths=list(w)).fit(X)
    assert emb.pooling_ == "mean" and emb.transform(X).shape == (10, 32)


def test_export_records_the_readout_and_refuses_an_unknown_one(tmp_path):
    src = checkpoint(tmp_path, PATCH)
    out = export_checkpoint(src, tmp_path / "portable", dtype="float32", readout="mean+std")
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["config"]["evaluation"]["readout"] == "mean+std"
    assert load_encoder(out)[1].readout == "mean+std"
    card = (out / "model_card.md").read_text()
    assert "readout `mean+std` of width-32 tokens, 64 values" in card
    assert (
        "patches of 8 points of one absolute log-λ lattice, channels absorbance, sg1, into a transformer"
        in card
    )
    perceiver = export_checkpoint(
        checkpoint(tmp_path / "p", PERCEIVER), tmp_path / "portable_p", dtype="float32"
    )
    assert "into a Perceiver (8 latents cross-attending to them)" in (perceiver / "model_card.md").read_text()
    with pytest.raises(VitnirsError, match="readout must be one of"):
        export_checkpoint(src, tmp_path / "bad", readout="median")


def study(gain: float) -> dict:
    """A study JSON as `vitnirs study` writes it: two seeds of a recipe, one readout."""

    def scores(ratio: float, g: float, corn: float) -> dict:
        return {
            "regression_ratio": ratio, "pretraining_gain": g, "untrained_ratio": 1.029,
            "classical_features_ratio": 1.013, "vs_classical_features": 0.99, "n_beats_classical": 6,
            "n_regression": 16, "effective_rank": 12.4, "untrained_effective_rank": 10.3,
            "classes": [{"dataset": "urban", "embedding": 0.939, "untrained": 0.93, "classical_features": 0.948,
                         "classical": 0.948}],
            "transfer": {"corn": {"embedding": corn, "embedding+align": 0.14, "untrained": 0.36,
                                  "untrained+align": 0.10, "snv_sg1": 0.18, "snv_sg1+align": 0.11,
                                  "pls_raw": 0.157, "pls_raw+align": 0.108}},
            "robustness": {"corn/drift": {"embedding": {"clean": 0.09, "perturbed": 0.38},
                                          "untrained": {"clean": 0.087, "perturbed": 0.36},
                                          "snv_sg1_pls": {"clean": 0.11, "perturbed": 0.14},
                                          "pls_raw": {"clean": 0.064, "perturbed": 0.69}}},
        }  # fmt: skip

    return {
        "scorecard": "full",
        "bank": "xbank",
        "entries": [
            {"name": "s0", "scores": {"groups8": scores(1.013, gain, 0.346)}},
            {"name": "s1", "scores": {"groups8": scores(1.025, 1.011, 0.120)}},
        ],
    }


def test_the_card_scorecard_reads_every_number_from_the_study():
    lines = "\n".join(scorecard_lines(study(1.005), ["s0", "s1"]))
    assert "| regression ratio | 1.013 | 1.025 | 1.029 | 1.013 | 1 |" in lines
    assert "| corn k = 0 | 0.346 | 0.12 | 0.36 | 0.18 | PLS raw 0.157 |" in lines
    assert "0.09 → 0.38" in lines and "SNV+SG1+PLS 0.11 → 0.14" in lines
    said = " ".join(scorecard_verdicts(study(1.005), ["s0"]))
    assert "did not beat the untrained network" in said and "corn 0.346 (above PLS raw's 0.157)" in said
    assert "the pretraining beat the untrained network" in " ".join(scorecard_verdicts(study(0.8), ["s0"]))
    with pytest.raises(VitnirsError, match="no entry 'nope'"):
        scorecard_lines(study(1.0), ["nope"])


def test_the_card_shows_the_four_axes_and_the_verdict_of_the_same_entry():
    s4 = study(0.97)
    axes = {
        "fewshot": {n: {"vs_classical": c, "vs_untrained": u}
                    for n, c, u in (("10", 1.04, 0.96), ("25", 1.11, 0.99), ("50", 1.13, 0.93))},
        "robustness": {"by_kind": {"drift": {"embedding": 1.01, "untrained": 1.19, "snv_sg1_pls": 1.66,
                                             "pls_raw": 2.06, "minirocket": 3.05}}},
    }  # fmt: skip
    s4["entries"][0]["scores"]["groups8"]["axes"] = axes
    lines = "\n".join(scorecard_lines(s4, ["s0", "s1"]))
    assert "| few-shot n = 10 / 25 / 50: ÷ untrained | 0.960 / 0.990 / 0.930 | – / – / – | 1 |" in lines
    assert "| robustness drift (RMSEP perturbed ÷ clean, median over datasets) | 1.01 | – | 1.19 |" in lines
    assert "SNV+SG1+PLS 1.66 | PLS raw 2.06; MiniRocket 3.05 |" in lines
    # within 1.013 / 1.029 better, few-shot 0.96, drift 1.01/1.19, corn 0.346/0.36: 4 of 4
    assert (
        "| pretraining pays? (issue 24's rule) | pays (better on 4/4) | does not pay (better on 2/2) |"
        in lines
    )
    said = " ".join(scorecard_verdicts(s4, ["s0"]))
    assert "within 0.984, fewshot 0.960, robustness 0.849 (worst kind 0.849)" in said
    s4["entries"][1]["scores"]["groups8"]["axes"] = axes
    pooled = " ".join(scorecard_verdicts(s4, ["s0", "s1"]))
    assert "Pooled over the 2 seeds shown" in pooled and "pretraining pays (better on 4/4)" in pooled
    s4["entries"][0]["scores"]["groups8"]["regression_ratio"] = 1.06  # 3 % worse than untrained
    assert "pretraining does not pay (better on 3/4; worse by > 2 % on within)" in " ".join(
        scorecard_verdicts(s4, ["s0"])
    )


def test_the_model_card_carries_the_scorecard(tmp_path):
    src = checkpoint(tmp_path, PATCH, readout="groups8")
    path = tmp_path / "study_full.json"
    path.write_text(json.dumps(study(1.005)))
    card = build_model_card(src, CardInputs(scorecard=path, scorecard_entries=("s0", "s1")))
    assert "## Scorecard, with its controls" in card
    assert "- Pretraining gain 1.005" in card.split("## Model")[0]  # in the first lines
    assert "`s0` (this model)" in card and "readout `groups8`" in card
    # a card names how to load its model: by path, or by its shipped name
    assert (
        'SpectralEmbedder(checkpoint="path/of/this/directory")' in card
        and 'load_encoder("default")' not in card
    )
    robust = build_model_card(src, CardInputs(shipped_name="robust"))
    assert 'load_encoder("robust")' in robust and 'SpectralEmbedder(checkpoint="robust")' in robust
    assert "SpectralEmbedder()" in build_model_card(src, CardInputs(shipped_name="default"))


def test_vitnirs_embed_names_its_columns_as_the_embedder_does(tmp_path):
    import pandas as pd

    from vitnirs.workflows.embed_csv import embed_csv

    ckpt = checkpoint(tmp_path, PATCH, readout="groups8")
    X, w = spectra()
    frame = pd.DataFrame(X, columns=[f"{v:.2f}" for v in w])
    frame["y_a"] = np.arange(len(frame), dtype=float)
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = pd.read_parquet(embed_csv(tmp_path / "in.csv", tmp_path / "out.parquet", checkpoint=str(ckpt)))
    names = list(SpectralEmbedder(str(ckpt), wavelengths=list(w)).fit(X).get_feature_names_out())
    assert [c for c in out.columns if c.startswith("emb_")] == names and len(names) == 256


def test_a_checkpoint_from_before_the_split_loads_with_the_same_embeddings(tmp_path):
    """Issue 21's one compatibility step: a patch-token checkpoint as it was written before (``tokens``,
    the Perceiver keys its model never read, the trunk's weights at ``encoder.blocks``) loads, and
    embeds as today's; a point-token one is refused with a message that says why and what reads it."""
    from vitnirs.checkpoint import load_model

    new = checkpoint(tmp_path / "new", PATCH)
    state = {
        (k.replace("encoder.trunk.", "encoder.") if k.startswith("encoder.trunk.") else k): v
        for k, v in load_model(new)[0].state_dict().items()
    }
    old_kwargs = {
        "tokens": "patch",
        "n_latents": 8,
        "n_cross_layers": 1,
        "d_model": 32,
        "n_heads": 2,
        **PATCH,
    }
    meta = json.loads((new / CONFIG_FILE).read_text())
    meta["model"]["kwargs"] = old_kwargs
    meta["config"]["model"] = {"preset": "tiny", **old_kwargs}
    old = write_checkpoint(tmp_path / "old", state, meta)
    X, w = spectra()
    np.testing.assert_allclose(
        SpectralEmbedder(str(old), wavelengths=list(w)).fit_transform(X),
        SpectralEmbedder(str(new), wavelengths=list(w)).fit_transform(X),
        rtol=0,
        atol=0,
    )  # the same weights in the same model: identical
    model, info = load_encoder(old)
    assert "tokens" not in info.config["model"] and info.config["model"]["trunk"] == "transformer"
    meta["model"]["kwargs"] = {"n_latents": 8, "n_cross_layers": 1, "d_model": 32}  # no tokens: point tokens
    point = write_checkpoint(tmp_path / "point", state, meta)
    with pytest.raises(VitnirsError, match="point-token checkpoint.*retired.*6f84626"):
        load_encoder(point)


def test_the_report_shows_the_evaluated_checkpoints_card_scorecard(tmp_path):
    from vitnirs.report.card import card_section, markdown_table

    src = checkpoint(tmp_path, PATCH, readout="groups8")
    path = tmp_path / "study_full.json"
    path.write_text(json.dumps(study(1.005)))
    portable = export_checkpoint(
        src, tmp_path / "portable", card_inputs=CardInputs(scorecard=path, scorecard_entries=("s0", "s1"))
    )
    html = str(card_section(portable))
    assert "<th>s0 (this model)</th>" in html and "<td>regression ratio</td><td>1.013</td>" in html
    assert "<li>Pretraining gain 1.005" in html
    assert card_section(src) is None  # a training checkpoint has no card
    assert card_section(tmp_path / "gone") is None and card_section(None) is None
    headers, rows = markdown_table(["| a | b |", "|---|---|", "| <x> | 1 |"])
    assert headers == ["a", "b"] and rows == [["<x>", "1"]]
    assert markdown_table(["no table"]) == ([], [])
