"""The HTML report agrees with the console and shows the controls (issue 22): one function picks the
per-target figures for both (the untrained control = the mean over its seeds of each seed's best
head); the headline states each target against the best classical baseline and against the
untrained control; controls are never rivals; transfer verdicts use the median over instrument
pairs; every table scrolls inside its section; methods are named in words; the model-artefact
sections are left out where they cannot apply."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vitnirs.evaluate.names import BASELINE_WORDS, is_control, method_kind, method_label
from vitnirs.evaluate.summary import summary_rows, target_figures
from vitnirs.evaluate.text import evaluation_lines
from vitnirs.report import write_report

CKPT, BANK = "runs/x/pretrain/checkpoints/step_0000010", "runs/x/store"


def _rec(method: str, rmsep: float, dataset: str = "d", **kw) -> dict:
    return {"dataset": dataset, "target": "y_a", "method": method, "protocol": "kennard_stone", "n_train": 40,
            "n_test": 10, "metrics": {"rmsep": rmsep, "r2": 0.5}, "std": None, "checkpoint": CKPT, "bank": BANK,
            **kw}  # fmt: skip


def _evaluation() -> dict:
    """Two untrained seeds whose best heads differ: mean of each seed's best = (0.6 + 0.8) / 2 = 0.7,
    best of the seed-averaged heads = ridge (0.6 + 1.0) / 2 = 0.8, so the two aggregations differ."""
    baselines = [_rec("pls_raw", 1.0), _rec("snv_sg1_pls", 1.1), _rec("krr_snv_sg1", 0.85)]
    downstream = [_rec("embedding+ridge", 0.9), _rec("embedding+pls", 0.95)]
    controls = [
        _rec("untrained+ridge", 0.6, seed=0), _rec("untrained+pls", 1.0, seed=0),
        _rec("untrained+ridge", 1.0, seed=1), _rec("untrained+pls", 0.8, seed=1),
        _rec("snv_sg1+ridge", 0.5),  # better than everything: still never a rival
    ]  # fmt: skip
    ev = {
        "checkpoint": CKPT,
        "bank": BANK,
        "baselines": baselines,
        "downstream": downstream,
        "controls": controls,
    }
    return ev | {"summary": summary_rows(baselines, downstream, controls)}


def _run(root: Path, evaluation: dict) -> Path:
    (root / "evaluation").mkdir(parents=True)
    (root / "evaluation" / "metrics.json").write_text(json.dumps(evaluation))
    return root


def _section(text: str, name: str) -> str:
    return text.split(f'id="{name}"')[1].split("</section>")[0]


def _cells(row_html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row_html)]


def _headline_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The headline's per-target table: its headers and, per dataset, its cells."""
    run = _section(text, "run")
    table = [t for t in re.findall(r"<table>.*?</table>", run, re.S) if "best embedding head" in t][0]
    headers = _cells(table.split("</thead>")[0])
    rows = {
        cells[0]: cells
        for cells in map(_cells, re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("</thead>")[1]))
    }
    return headers, rows


def test_headline_and_console_give_the_same_untrained_figure(tmp_path):
    ev = _evaluation()
    console = evaluation_lines(ev)
    untrained = float(re.search(r"untrained control \([^)]*\) ([\d.]+)", console).group(1))
    ratio = float(re.search(r"pretrained/untrained ([\d.]+)", console).group(1))
    assert untrained == pytest.approx(0.7, abs=1e-9) and ratio == pytest.approx(0.9 / 0.7, abs=5e-4)
    text = write_report(_run(tmp_path / "run", ev)).read_text()
    headers, rows = _headline_table(text)
    row = dict(zip(headers, rows["d"], strict=True))
    assert float(row["untrained network (control, mean of 2 seeds)"]) == pytest.approx(untrained, abs=1e-9)
    assert float(row["pretrained ÷ untrained"]) == pytest.approx(ratio, abs=1e-9)  # 1.286, not 0.9 / 0.8
    assert row["pretraining"] == "did not help"
    # ... against the best classical baseline as well, with the same numbers as the console
    assert (
        row["best classical"] == "PLS on raw spectra: 1"
        and "best classical: PLS on raw spectra, RMSEP 1;" in console
    )
    assert (
        row["best embedding head"] == "embedding + ridge: 0.9"
        and float(row["embedding ÷ best classical"]) == 0.9
    )
    assert row["verdict"] == (
        "the encoder beats PLS on raw spectra by 10.0 %; the non-linear baseline kernel ridge on SNV + SG1 "
        "does better still (0.85)."
    )
    # the downstream table's control columns are the same figures
    down = _section(text, "downstream")
    heads = _cells(down.split("</thead>")[0])
    cells = _cells(re.search(r"<tbody[^>]*><tr>(.*?)</tr>", down).group(1))
    got = dict(zip(heads, cells, strict=True))
    assert float(got["untrained network (control, mean of 2 seeds)"]) == pytest.approx(untrained, abs=1e-9)
    assert float(got["pretrained ÷ untrained"]) == pytest.approx(ratio, abs=1e-9)


def test_one_function_behind_both(tmp_path):
    ev = _evaluation()
    fig = target_figures([*ev["baselines"], *ev["downstream"]], ev["controls"], higher=False)
    (row,) = ev["summary"]
    assert fig["best_untrained"]["metrics"]["rmsep"] == row["best_untrained"]["rmsep"] == pytest.approx(0.7)
    assert row["best_untrained"]["seeds"] == {"0": 0.6, "1": 0.8}
    assert fig["best_classical"]["method"] == "pls_raw" and fig["best_overall"]["method"] == "krr_snv_sg1"
    # a control among the records is never a baseline's or the embedding's best
    fig = target_figures([*ev["baselines"], *ev["downstream"], _rec("untrained+ridge", 0.1)], higher=False)
    assert (
        fig["best_overall"]["method"] == "krr_snv_sg1"
        and fig["best_embedding"]["method"] == "embedding+ridge"
    )


def _transfer() -> list[dict]:
    """Off-diagonal pairs: embedding 0.1, 0.1, 1.0 (median 0.1, mean 0.4) vs PLS 0.2 everywhere; the
    untrained network is best of all (0.05) and must not become the rival."""
    pairs = [("a", "b"), ("b", "a"), ("a", "c")]
    out = []
    for (src, tgt), e in zip(pairs, (0.1, 0.1, 1.0), strict=True):
        for method, v, extra in (("embedding+ridge", e, {}), ("pls_raw", 0.2, {}),
                                 ("untrained+ridge", 0.05, {"seed": 0}), ("snv_sg1+ridge", 0.04, {})):  # fmt: skip
            out.append({"group": "g", "target": "y_a", "source": src, "target_instrument": tgt, "k": 0,
                        "method": method, "protocol": "transfer_k0", "metrics": {"rmsep": v}, **extra})  # fmt: skip
    return out


def test_controls_are_never_rivals_and_transfer_uses_the_median(tmp_path):
    robustness = [
        {**_rec(m, v, "d", seed=s), "perturbation": "drift", "severity": 1.0, "severity_unit": "AU",
         "metrics": {"rmsep": v, "rmsep_ratio": 1.5}}
        for m, v, s in (("embedding+ridge", 1.0, None), ("pls_raw", 1.2, None), ("untrained+ridge", 0.3, 0))
    ]  # fmt: skip
    ev = _evaluation() | {"transfer": _transfer(), "robustness": robustness}
    text = write_report(_run(tmp_path / "run", ev)).read_text()
    transfer = _section(text, "transfer")
    assert (
        "k = 0, median RMSEP over the instrument pairs: the encoder (embedding + ridge, 0.1) is better than "
        "PLS on raw spectra (0.2)" in transfer
    )  # the mean (0.4) would have said worse
    assert "median" in transfer.split("<caption>")[1].split("</caption>")[0]
    assert "untrained network (control, not a rival) reaches 0.05" in transfer
    visible = re.sub(r"<[^>]+>", "", text)
    for rival in ("than untrained", "than SNV + SG1 features", "than the untrained"):
        assert rival not in visible
    robust = _section(text, "robustness")
    assert "(embedding + ridge, 1) is better than PLS on raw spectra (1.2)" in robust
    # the ★ of a transfer row never marks a control
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", transfer.split("</thead>")[1]):
        starred = [i for i, c in enumerate(_cells(row)) if "★" in c]
        heads = _cells(transfer.split("</thead>")[0])
        assert starred and all(not is_control(_method_of(heads[i])) for i in starred)
    # the downstream table: SNV + SG1 features (0.5) beat everything, yet the row's ★ is a rival's
    row = re.search(r"<tbody[^>]*><tr>(.*?)</tr>", _section(text, "downstream")).group(1)
    controls = re.findall(r'<td class="control">(.*?)</td>', row)
    assert len(controls) == 3 and "0.5" in controls[2] and not any("★" in c for c in controls)
    assert "★&nbsp;0.85" in row  # kernel ridge on SNV + SG1, the best rival


def _method_of(label: str) -> str:
    """The identifier of a column label (the inverse of method_label on this test's methods)."""
    names = ("embedding+ridge", "pls_raw", "untrained(seed 0)+ridge", "snv_sg1+ridge")
    return next(m for m in names if method_label(m) == label)


class _ScrollCheck(HTMLParser):
    """Every <table> inside a <div class="scroll">."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.tables = self.unwrapped = 0

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            self.stack.append("scroll" in (dict(attrs).get("class") or "").split())
        elif tag == "table":
            self.tables += 1
            self.unwrapped += not any(self.stack)

    def handle_endtag(self, tag):
        if tag == "div" and self.stack:
            self.stack.pop()


def test_every_table_scrolls_inside_its_section(tmp_path):
    from test_report import _evaluation as full_evaluation
    from test_report import _fake_run

    text = write_report(
        _fake_run(tmp_path / "run", full_evaluation() | {"controls": _evaluation()["controls"]})
    )
    html = text.read_text()
    check = _ScrollCheck()
    check.feed(html)
    assert check.tables >= 10 and check.unwrapped == 0
    assert re.search(r"\.scroll\{overflow-x:auto", html)


def test_methods_are_named_in_words(tmp_path):
    assert [method_label(m) for m in ("krr_snv_sg1", "pls_raw", "aom_pls", "snv_sg1_pls", "asls_snv_pls",
                                      "pca_ridge", "aom_ridge", "embedding+ridge", "untrained+ridge")] == [
        "kernel ridge on SNV + SG1", "PLS on raw spectra", "AOM-PLS", "SNV + SG1 + PLS", "AsLS + SNV + PLS",
        "PCA + ridge", "AOM + ridge", "embedding + ridge", "untrained network + ridge"]  # fmt: skip
    assert method_label("untrained(seed 1)+pls+align") == "untrained network (seed 1) + PLS, aligned"
    assert (
        method_label("pls_raw+pds") == "PLS on raw spectra + PDS" and method_label("odd_name") == "odd_name"
    )
    assert [method_kind(m) for m in ("embedding+pls", "snv_sg1+pls", "snv_sg1_pls", "untrained(seed 0)+pls")] == [
        "embedding", "control", "classical", "control"]  # fmt: skip
    ev = _evaluation() | {"transfer": _transfer()}
    text = write_report(_run(tmp_path / "run", ev)).read_text()
    visible = re.sub(r"<[^>]+>", " ", text.split("</style>")[1])  # tag attributes (tooltips) aside
    for ident in (*BASELINE_WORDS, "embedding+", "untrained+", "snv_sg1+"):
        assert ident not in visible, ident
    assert "kernel ridge on SNV + SG1" in visible and "SNV + SG1 features + ridge" in visible
    assert "untrained control" in evaluation_lines(ev) and "krr_snv_sg1" not in evaluation_lines(ev)


def test_reconstructions_left_out_where_they_cannot_apply(tmp_path):
    no_checkpoint = {k: v for k, v in _evaluation().items() if k != "checkpoint"}
    for r in [*no_checkpoint["baselines"], *no_checkpoint["downstream"]]:
        r.pop("checkpoint")
    text = write_report(_run(tmp_path / "a", no_checkpoint)).read_text()
    assert 'id="reconstructions"' not in text and "Reconstructions of masked spectra" not in text
    empty = _run(tmp_path / "b", _evaluation())  # evaluated, but no real spectrum to reconstruct
    (empty / "evaluation" / "reconstructions.json").write_text("[]")
    assert 'id="reconstructions"' not in write_report(empty).read_text()
    missing = write_report(_run(tmp_path / "c", _evaluation())).read_text()  # evaluated, file absent
    section = _section(missing, "reconstructions")
    assert "not run in this output" in section and "evaluation.artefacts=true" in section
