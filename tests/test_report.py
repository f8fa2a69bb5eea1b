"""The HTML report and its model artefacts: one self-contained file, every section, escaping,
plain verdicts where the encoder loses (and only there, beyond the noise), missing outputs; the
embedding map and the masked reconstructions of a tiny store with an untrained tiny model.
Layout (table widths in a headless browser, heatmap colours) and layering: tests/test_report_layout.py."""

from __future__ import annotations

import base64
import io
import json
import re

import matplotlib
import numpy as np
import pytest
import torch
from conftest import absorbance_table, batch_settings
from PIL import Image

from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.data.table import SpectralTable
from vitnirs.evaluate.artefacts import embedding_map, reconstructions, write_artefacts
from vitnirs.model import build_mae
from vitnirs.report import SECTION_TITLES, write_report

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EVIL = "<script>alert(1)</script>"
CKPT, BANK = "runs/x/pretrain/checkpoints/step_0000010", "runs/x/store"
GRID = np.linspace(1000.0, 1600.0, 60)


# ----------------------------------------------------------------------------- a fake run dir
def _rec(dataset, method, rmsep, protocol="kennard_stone", target="y_a", **kw):
    return {"dataset": dataset, "target": target, "method": method, "protocol": protocol, "n_train": 40,
            "n_test": 10, "metrics": {"rmsep": rmsep, "r2": 0.5, "rpd": 1.5, "bias": 0.0}, "std": None,
            "checkpoint": CKPT, "bank": BANK, **kw}  # fmt: skip


def _cls(dataset, method, bacc):
    return {"dataset": dataset, "target": "class", "method": method, "protocol": "kennard_stone",
            "metrics": {"accuracy": bacc, "balanced_accuracy": bacc}, "std": None, "checkpoint": CKPT,
            "bank": BANK}  # fmt: skip


def _evaluation() -> dict:
    # ds_lose: repeated splits; embedding RMSEP 1.1 / 1.3 / 1.2 (mean 1.2) vs pls_raw 1.0: worse by 20 %
    base = [_rec("ds_lose", "pls_raw", 1.0, f"random_rep_{i}") for i in range(3)]
    down = [_rec("ds_lose", "embedding+ridge", v, f"random_rep_{i}") for i, v in enumerate((1.1, 1.3, 1.2))]
    # ds_win: the embedding (0.9) beats the best linear baseline (1.0) but not kernel ridge (0.8)
    base += [
        _rec("ds_win", "pls_raw", 1.0),
        _rec("ds_win", "snv_sg1_pls", 1.05),
        _rec("ds_win", "krr_raw", 0.8),
    ]
    down += [_rec("ds_win", "embedding+ridge", 0.9), _rec("ds_win", "embedding+pls", 0.95)]
    base += [_rec(EVIL, "pls_raw", 2.0)]
    down += [_rec(EVIL, "embedding+ridge", 2.2)]
    base += [_cls("ds_cls", "logreg_snv_sg1", 0.9)]
    down += [_cls("ds_cls", "embedding+logistic", 0.7)]
    transfer = [
        {"group": "corn", "source": a, "target_instrument": b, "target": "y_oil", "k": k, "method": m,
         "protocol": "within" if a == b else f"transfer_k{k}", "n_train": 40, "n_test": 20,
         "metrics": {"rmsep": v + (0.0 if a == b else 0.3) + 0.1 * (k == 0)}, "note": ""}
        for a in ("m5", "mp5") for b in ("m5", "mp5") for k in (0, 5)
        for m, v in (("embedding+ridge", 0.5), ("embedding+pls", 0.6), ("pls_raw", 0.2), ("pls_raw+slope_bias", 0.25))
        if not (a == b and k)
    ]  # fmt: skip
    lodo = [
        {**_rec("ds_win", m, v, p), "note": "planted"}
        for p, m, v in (("lodo_strict", "embedding+ridge", 1.4), ("lodo_downstream_only", "embedding+ridge", 0.9),
                        ("lodo_strict", "pls_raw", 1.0), ("lodo_downstream_only", "pls_raw", 1.0))
    ]  # fmt: skip
    robustness = [
        {**_rec("ds_win", m, base_v * (1 + s * slope), "robustness"), "perturbation": pert, "severity": s,
         "severity_unit": "AU", "metrics": {"rmsep": base_v * (1 + s * slope), "rmsep_ratio": 1 + s * slope}}
        for pert in ("drift", "noise") for s in (0.0, 0.5, 1.0)
        for m, base_v, slope in (("embedding+ridge", 0.9, 2.0), ("pls_raw", 1.0, 0.2))
    ]  # fmt: skip
    synthetic = [{"dataset": "all", "target": None, "method": "embedding_logistic_auc", "protocol": "cv5",
                  "metrics": {"auc": 0.81}, "note": "real vs synthetic", "skipped": None}]  # fmt: skip
    summary = [{"dataset": "ds_win", "target": "y_a", "protocol": "kennard_stone",
                "embedding_vs_best_classical": 0.9}]  # fmt: skip
    return {"checkpoint": CKPT, "bank": BANK, "embedding_dim": 32, "seconds": 1.0, "baselines": base,
            "downstream": down, "summary": summary, "transfer": transfer, "lodo": lodo,
            "robustness": robustness, "synthetic_checks": synthetic}  # fmt: skip


def _fake_run(root, evaluation: dict | None = None):
    (root / "evaluation").mkdir(parents=True)
    (root / "evaluation" / "metrics.json").write_text(json.dumps(evaluation or _evaluation()))
    (root / "pretrain").mkdir()
    rows = [{"step": s, "epoch": s / 10, "lr": 1e-4, "mae": 1.0 / s, "baseline": 0.01, "total": 1.0 / s + 0.01,
             "spectra_per_s": 100.0, "data_wait_fraction": 0.1} for s in range(1, 11)]  # fmt: skip
    (root / "pretrain" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "summary.json").write_text(json.dumps({"checkpoint": CKPT, "datasets": 3, "spectra": 99}))
    ab = root / "ablate"
    ab.mkdir()
    (ab / "ablation.json").write_text(
        json.dumps([{"variant": "no_synthetic", "rmsep_ratio": {"mean": 1.07}}])
    )
    ab2 = root / "ablate2"
    ab2.mkdir()
    (ab2 / "ablation.md").write_text("# Ablation\n\n| variant | mean ratio |\n|---|---|\n| B_mae | 1.12 |\n")
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(ab2 / "ablation.png")
    plt.close(fig)
    # as benchmarks/lodo.py writes it: {"records": [...]}, a classical reference per split family
    lodo_only = [
        {**_rec("ds_lose", "embedding+ridge", 1.9, "lodo_strict"), "split": "random_rep"},
        {**_rec("ds_cl", "embedding+ridge", 0.5, "lodo_strict"), "split": "kennard_stone"},
        {**_rec("ds_cl", "snv_sg1_pls", 0.6, "lodo_classical"), "split": "kennard_stone"},
        {**_rec("ds_cl", "embedding+ridge", 0.7, "lodo_strict"), "split": "random_rep"},
        {**_rec("ds_cl", "snv_sg1_pls", 0.6, "lodo_classical"), "split": "random_rep"},
        {"dataset": "ds_err", "target": None, "method": None, "protocol": "lodo_strict", "metrics": None,
         "error": "RuntimeError: planted failure"},
    ]  # fmt: skip
    (root / "lodo_runs").mkdir()
    (root / "lodo_runs" / "lodo.json").write_text(json.dumps({"records": lodo_only, "table": []}))
    return root


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)]


def _row(text: str, dataset: str) -> str:
    """The downstream-table row of a dataset: its ``<tbody>`` (scores, then the verdict line)."""
    section = text.split('id="downstream"')[1].split("</section>")[0]
    found = re.findall(r'<tbody class="[^"]*">.*?</tbody>', section.replace("<wbr>", ""))
    rows = [r for r in found if f"<td>{dataset}</td>" in r]
    if not rows:  # the summary-only table: plain rows
        rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", section) if f"<td>{dataset}</td>" in r]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    root = _fake_run(tmp_path_factory.mktemp("run"))
    out = tmp_path_factory.mktemp("out") / "r.html"
    path = write_report(root, out)
    assert path == out and [p.name for p in out.parent.iterdir()] == ["r.html"]  # one file, nothing beside
    return out.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- the report
def test_one_self_contained_file_with_every_section(report):
    # every section but the model card's (only a portable checkpoint has one: test_shipped_readout.py)
    positions = [report.find(f">{t}</h2>") for k, t in SECTION_TITLES.items() if k != "model-card"]
    assert f">{SECTION_TITLES['model-card']}</h2>" not in report
    assert all(p > 0 for p in positions) and positions == sorted(positions)
    images = _images(report)
    assert len(images) == 5  # loss, LODO, transfer, robustness, one ablation PNG (no artefacts here)
    for png in images:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        Image.open(io.BytesIO(png)).verify()
    for external in ('src="http', 'href="http', "<link", "url(", "@import", "<script"):
        assert external not in report


def test_text_is_escaped(report):
    assert EVIL not in report and html_escape(EVIL) in report


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


def test_worse_only_where_the_encoder_loses(report):
    lose = _row(report, "ds_lose")
    assert "worse than PLS on raw spectra by 20.0 %." in lose  # the mean over the 3 repeats, not one split
    assert '1.2 <span class="sd">± 0.1</span>' in lose and "random_rep" in lose
    win = _row(report, "ds_win")
    assert "worse" not in win and "beats PLS on raw spectra by 10.0 %" in win  # best *linear* baseline
    assert "kernel ridge on raw spectra does better still" in win  # ... the kernel baseline wins
    assert "★&nbsp;0.8" in win  # the winner of the row is marked
    assert f"checkpoint: {CKPT}" in report and f"bank: {BANK}" in report
    assert "split protocol: random_rep, kennard_stone</caption>" in report  # repeats named once


def test_class_lodo_transfer_robustness_synthetic_ablation(report):
    cls = report.split('id="class"')[1].split("</section>")[0]
    assert "worse than logistic regression on SNV + SG1 by 20.0 points" in cls
    lodo = report.split('id="lodo"')[1].split("</section>")[0]
    assert "strict LODO (encoder pretrained without this dataset)" in lodo and "downstream-only LODO" in lodo
    assert "ds_cl" in lodo and "planted failure" in lodo  # records of a separate lodo.json are merged
    # the lodo_classical reference of the same split family, not of the other one
    assert (
        "ds_cl / y_a (kennard_stone split), strict LODO (encoder pretrained without this dataset): "
        "the encoder (embedding + ridge, 0.5) is better than SNV + SG1 + PLS (0.6) by 16.7 %" in lodo
    )
    assert (
        "ds_cl / y_a (random_rep split), strict LODO (encoder pretrained without this dataset): "
        "the encoder (embedding + ridge, 0.7) is worse than SNV + SG1 + PLS (0.6) by 16.7 %" in lodo
    )
    # ds_lose has no classical LODO record: compared with the downstream table's best classical
    assert (
        "protocol random_rep): the encoder (embedding + ridge, 1.9) is worse than PLS on raw spectra (1) by 90.0 %"
        in lodo
    )
    assert re.search(
        r"strict LODO[^<]*: the encoder \(embedding \+ ridge, 1\.4\) is worse than PLS on raw", lodo
    )
    transfer = report.split('id="transfer"')[1].split("</section>")[0]
    assert (
        "k = 5" in transfer and "is worse than PLS on raw spectra" in transfer and len(_images(transfer)) == 1
    )
    robust = report.split('id="robustness"')[1].split("</section>")[0]
    # at severity 1: embedding 0.9 * 3 = 2.7 vs pls 1.0 * 1.2 = 1.2 → worse by 125 %
    assert (
        "drift at severity 1 AU: the encoder (embedding + ridge, 2.7) is worse than PLS on raw spectra (1.2) by 125.0 %"
        in robust
    )
    synthetic = report.split('id="synthetic"')[1].split("</section>")[0]
    assert "<td>all</td><td>—</td><td>0.81</td>" in synthetic  # comparison, n train/test, one AUC per cell
    ablations = report.split('id="ablations"')[1].split("</section>")[0]
    assert "no_synthetic" in ablations and "rmsep_ratio.mean" in ablations  # JSON rows (no Markdown)
    assert "<td>B_mae</td><td>1.12</td>" in ablations and len(_images(ablations)) == 1  # Markdown + PNG


def test_only_metrics_json_and_broken_files(tmp_path):
    ev = {"checkpoint": CKPT, "bank": BANK, "baselines": [_rec("ds", "pls_raw", 1.0)]}
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "metrics.json").write_text(json.dumps(ev))
    (tmp_path / "evaluation" / "reconstructions.json").write_text("{not json")
    text = write_report(tmp_path).read_text()
    assert (tmp_path / "report.html").is_file()
    assert text.count("not run in this output") >= 8
    assert "no embedding head was scored" in text and "unreadable" in text
    # an evaluated checkpoint whose reconstructions could not be read: the section says how to get them
    assert "evaluation.artefacts=true" in text.split('id="reconstructions"')[1].split("</section>")[0]
    only_summary = tmp_path / "s"
    (only_summary / "evaluation").mkdir(parents=True)
    rows = [{"dataset": d, "target": "y", "protocol": "native", "best_classical": {"method": "aom_pls", "rmsep": 1.0},
             "best_embedding": {"method": "embedding+ridge", "rmsep": r}, "embedding_vs_best_classical": r}
            for d, r in (("s_lose", 1.3), ("s_win", 0.7))]  # fmt: skip
    (only_summary / "evaluation" / "metrics.json").write_text(json.dumps({"summary": rows}))
    text = write_report(only_summary).read_text()
    assert "worse than AOM-PLS by 30.0 %" in _row(text, "s_lose") and "worse" not in _row(text, "s_win")
    assert 'id="reconstructions"' not in text  # no checkpoint evaluated: the artefacts cannot apply
    empty = tmp_path / "empty"
    empty.mkdir()
    text = write_report(empty).read_text()
    model_figures = (
        "reconstructions",
        "embedding-map",
        "model-card",
    )  # nothing evaluated: left out, not "not run"
    assert all(f">{t}</h2>" in text for k, t in SECTION_TITLES.items() if k not in model_figures)
    assert not any(f'id="{k}"' in text or f'href="#{k}"' in text for k in model_figures)


# ----------------------------------------------------------------------------- artefacts
def _table(name: str, n: int, kind_shift: float, instrument: str | None) -> SpectralTable:
    rng = np.random.default_rng(len(name))
    x = (GRID - GRID[0]) / np.ptp(GRID)
    X = (
        0.4
        + kind_shift
        + rng.uniform(0, 0.2, (n, 1))
        + rng.uniform(0.1, 0.4, (n, 1)) * np.exp(-(((x - 0.5) / 0.1) ** 2))
    )
    meta = {"sample_id": [f"s{i}" for i in range(n)]} | (
        {"instrument": [instrument] * n} if instrument else {}
    )
    return absorbance_table(name, X, GRID, targets={"y_a": X[:, 30]}, metadata=meta)


@pytest.fixture(scope="module")
def store_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    prepare(
        table_jobs([_table("alpha", 12, 0.0, "foss"), _table("beta", 3, 0.5, None)], "real"),
        path,
        progress=False,
    )
    prepare(table_jobs([_table("synth_a", 20, 0.2, None)], "synthetic"), path, progress=False)
    torch.manual_seed(0)
    return PreparedStore(path), build_mae("tiny").eval()


def test_embedding_map_points_and_labels(store_model):
    store, model = store_model
    emap = embedding_map(store, model, max_per_dataset=5, seed=1)
    pts = emap["points"]
    per_synth = round(5 * 0.25)
    assert emap["n_points"] == len(pts["x"]) == len(pts["y"]) == 5 + 3 + per_synth
    assert pts["dataset"].count("alpha") == 5 and pts["dataset"].count("beta") == 3
    assert pts["dataset"].count("synth_a") == per_synth
    assert {i for d, i in zip(pts["dataset"], pts["instrument"], strict=True) if d == "alpha"} == {"foss"}
    assert {i for d, i in zip(pts["dataset"], pts["instrument"], strict=True) if d == "beta"} == {"beta"}
    assert pts["kind"].count("synthetic") == per_synth and emap["method"] == "pca"
    assert np.isfinite(pts["x"]).all() and len(emap["explained_variance"]) == 2
    # given embeddings are used (not recomputed): a planted offset of alpha shows on the first axis
    D = 32
    planted = {"alpha": np.zeros((12, D)), "beta": np.zeros((3, D)), "synth_a": np.zeros((20, D))}
    planted["alpha"][:, 0] = 10.0
    for z in planted.values():
        z += np.random.default_rng(0).normal(0, 0.01, z.shape)
    pts = embedding_map(store, model, max_per_dataset=5, embeddings=planted)["points"]
    x = np.array(pts["x"])
    is_alpha = np.array(pts["dataset"]) == "alpha"
    assert np.abs(x[is_alpha].mean() - x[~is_alpha].mean()) > 9.0


class WavelengthDecoder(torch.nn.Module):
    """Predicts centre / 1000 for every value of each queried patch: shows where predictions land."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.out_dim = out_dim

    def forward(self, latents, centres, valid, latent_valid=None):
        return (centres / 1000.0)[..., None].expand(-1, -1, self.out_dim)


def test_reconstructions_predict_exactly_at_masked_patches(store_model):
    store, model = store_model
    recs = reconstructions(store, model, settings=batch_settings(), n=3, mask_ratio=0.5, seed=2)
    tokenizer = model.encoder.tokenizer
    assert len(recs) == 3 and {r["dataset"] for r in recs} <= {"alpha", "beta"}
    for r in recs:
        v, m, w = np.array(r["values"]), np.array(r["mask"]), np.array(r["wavelengths_nm"])
        p = np.array(r["prediction"], dtype=float)  # None → NaN
        assert len(v) == len(m) == len(p) == len(w) and len(w) % tokenizer.patch_size == 0
        assert GRID[0] <= w.min() and w.max() <= GRID[-1]  # lattice points inside the spectrum's range
        np.testing.assert_allclose(
            w, tokenizer.lattice.numpy()[np.searchsorted(tokenizer.lattice.numpy(), w)], rtol=1e-6
        )
        assert np.isfinite(p[m]).all() and np.isnan(p[~m]).all()
        assert (
            0 < m.sum() < len(m)
            and m.reshape(-1, tokenizer.patch_size).all(1).sum() == m.sum() / tokenizer.patch_size
        )
        assert abs(v.mean()) < 0.2 and abs(v.std() - 1) < 0.2  # the standardised absorbance channel
    decoder, model.decoder = model.decoder, WavelengthDecoder(tokenizer.content_dim)
    try:
        for r in reconstructions(store, model, settings=batch_settings(), n=2, seed=3):
            m, w = np.array(r["mask"]), np.array(r["wavelengths_nm"]).reshape(-1, tokenizer.patch_size)
            centres = np.exp(np.log(w).mean(1)).repeat(tokenizer.patch_size)  # each patch's centre
            np.testing.assert_allclose(
                np.array(r["prediction"], dtype=float)[m], centres[m] / 1000.0, rtol=1e-5
            )
    finally:
        model.decoder = decoder


def test_artefacts_feed_the_report(store_model, tmp_path):
    store, model = store_model
    root = _fake_run(tmp_path / "run")
    paths = write_artefacts(store, model, root / "evaluation", settings=batch_settings(), seed=0)
    assert json.loads(paths["embedding_map"].read_text())["n_points"] > 0
    assert len(json.loads(paths["reconstructions"].read_text())) == 4
    text = write_report(root).read_text()
    for section in ("reconstructions", "embedding-map"):
        part = text.split(f'id="{section}"')[1].split("</section>")[0]
        assert len(_images(part)) == 1 and "not run" not in part
    assert "evaluation/embedding_map.json" in text.split('id="files"')[1]


def test_the_downstream_table_states_the_untrained_control(tmp_path):
    ev = _evaluation()
    ev["controls"] = [
        {**r, "method": r["method"].replace("embedding+", "untrained+"), "seed": 0,
         "metrics": {k: v * (0.5 if k == "rmsep" else 1.0) for k, v in r["metrics"].items()}}
        for r in ev["downstream"]
    ]  # fmt: skip
    ev["controls"] += [
        {**r, "method": r["method"].replace("embedding+", "snv_sg1+")} for r in ev["downstream"]
    ]
    html = write_report(_fake_run(tmp_path / "run", ev)).read_text()
    head = html.split('id="downstream"')[1].split("</thead>")[0]
    names = re.findall(r"<th[^>]*>(.*?)</th>", head)
    i = names.index("embedding ÷ best classical")  # the controls right after the embedding's columns
    assert names[i + 1 : i + 4] == ["untrained network (control)", "pretrained ÷ untrained",
                                    "SNV + SG1 features (control)"]  # fmt: skip
    win = _row(html, "ds_win")  # embedding+ridge 0.9 / untrained+ridge 0.45 = 2.0; SNV + SG1 features 0.9
    cells = re.findall(r"<td[^>]*>(.*?)</td>", win.split('<tr class="verdict">')[0])
    assert [re.sub(r"<[^>]+>", "", c) for c in cells[i + 1 : i + 4]] == ["0.45", "2", "0.9"]
    said = re.search(r'<tr class="verdict"><td colspan="\d+">(.*?)</td>', win).group(1)
    assert (
        said.endswith(".") and "untrained" not in said
    )  # a sentence with its full stop; controls are columns
    run = html.split('id="run"')[1].split("</section>")[0]
    assert "untrained network (control)" in run and "did not help" in run  # the headline states it too
    assert "untrained network (control)" not in write_report(_fake_run(tmp_path / "plain")).read_text()
