"""The loss curve of a pretraining run and the name of its reconstruction error: a series with
one point shows (markers), the AUC axis is 0–1 on a step axis from 0, the MSE term is called
"masked recon. MSE" (not MAE) everywhere, and the old summary keys stay readable."""

from __future__ import annotations

import json

import matplotlib
import pytest

from vitnirs.evaluate.text import pretrain_line
from vitnirs.pretrain_log import draw_loss_curve, heldout_recon_mse, plot_loss_curve, term_label
from vitnirs.train.plots import plot_loss_curve as trainer_plot

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_one_logged_point_is_visible_and_the_auc_axis_is_0_to_1():
    rows = [{"step": 20, "epoch": 0.4, "lr": 1e-4, "mae": 0.9, "baseline": 0.01, "total": 0.91,
             "heldout_mae": 0.95, "probe_auc": 0.88}]  # fmt: skip
    fig = draw_loss_curve(rows)
    losses, auc = fig.axes
    assert losses.lines and all(line.get_marker() not in (None, "None", "") for line in losses.lines)
    assert all(
        line.get_marker() not in (None, "None", "") for line in auc.lines if len(line.get_xdata()) == 1
    )
    assert auc.get_ylim() == pytest.approx((0.0, 1.02))
    assert [f"{y:.1f}" for y in auc.get_yticks()] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    for ax in (losses, auc):  # the step axis starts at 0 and has whole steps, not 19.00–21.00
        lo, hi = ax.get_xlim()
        assert lo == 0 and hi >= 20
        assert all(float(x).is_integer() for x in ax.get_xticks())
    assert _labels(losses) == ["masked recon. MSE", "baseline consistency", "total (weighted sum)",
                               "held-out masked recon. MSE"]  # fmt: skip
    plt.close(fig)


def test_long_series_have_no_markers_but_the_sparse_heldout_one_does():
    rows = [{"step": s, "mae": 1.0 / s, "total": 1.0 / s} for s in range(1, 101)]
    for r in rows[24::25]:
        r["heldout_recon_mse"] = 0.5  # the new name of the probe's key
    fig = draw_loss_curve(rows)
    (ax,) = fig.axes
    markers = {line.get_label(): line.get_marker() for line in ax.lines}
    assert markers["masked recon. MSE"] in (None, "None", "") and markers["held-out masked recon. MSE"] == "s"
    assert "mae" not in _labels(ax) and "heldout_recon_mse" not in _labels(ax)
    plt.close(fig)


def test_plot_loss_curve_writes_a_png_from_the_trainer_path_too(tmp_path):
    jsonl = tmp_path / "metrics.jsonl"
    jsonl.write_text(json.dumps({"step": 5, "mae": 0.5, "total": 0.5}) + "\n")
    assert trainer_plot is plot_loss_curve
    out = trainer_plot(jsonl, tmp_path / "loss_curve.png")
    assert out.read_bytes().startswith(b"\x89PNG")
    assert plot_loss_curve(tmp_path / "missing.jsonl", tmp_path / "x.png") is None


def test_reconstruction_mse_names_and_old_keys():
    assert term_label("mae") == "masked recon. MSE" and term_label("contrastive") == "contrastive"
    old = {"heldout_mae_start": 1.05, "heldout_mae_end": 0.66}
    new = {"heldout_recon_mse_start": 1.0, "heldout_recon_mse_end": 0.5, "heldout_mae_end": 9.0}
    assert (heldout_recon_mse(old, "start"), heldout_recon_mse(old, "end")) == (1.05, 0.66)
    assert heldout_recon_mse(new, "end") == 0.5 and heldout_recon_mse({}, "end") is None
    line = pretrain_line({"steps": 10, "total_steps": 10, "final": {"total": 0.7}, **old})
    assert "held-out masked recon. MSE 1.0500 → 0.6600" in line and "MAE" not in line
