"""Fine-tuning on a tiny store: a planted two-target problem is learnt, the split is the suite's,
no test row is used for early stopping, and a frozen encoder does not move."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import absorbance_table, tiny_checkpoint
from safetensors.torch import load_file

from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.store import PreparedStore
from vitnirs.errors import VitnirsError
from vitnirs.workflows.finetune import finetune

pytestmark = pytest.mark.usefixtures("one_thread")
GRID = np.arange(1100.0, 1700.0, 10.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    rng = np.random.default_rng(0)
    n = 80
    c = rng.uniform(0.2, 1.0, (n, 2))
    band = lambda mu: np.exp(-0.5 * ((GRID - mu) / 30) ** 2)  # noqa: E731
    X = 0.3 + c[:, :1] * band(1300) + c[:, 1:] * band(1500) + rng.normal(0, 1e-3, (n, len(GRID)))
    part = ["cal"] * 60 + ["test"] * 20
    y_b = c[:, 1].copy()
    y_b[:5] = np.nan  # missing values: left out of that target's loss only
    table = absorbance_table(
        "toy", X, GRID, targets={"y_a": c[:, 0], "y_b": y_b}, metadata={"partition": part}
    )
    prepare(table_jobs([table], "real"), root / "store", progress=False)
    ckpt = tiny_checkpoint(root / "run")
    return PreparedStore(root / "store"), ckpt, root


def test_two_targets_are_learnt_on_the_native_split(setup):
    store, ckpt, root = setup
    res = finetune(
        ckpt, store, "toy", ["y_a", "y_b"], out=root / "ft", epochs=150, patience=150, progress=False
    )
    assert (res["protocol"], res["n_train"] + res["n_val"], res["n_test"]) == ("native", 60, 20)
    for t in res["targets"]:
        # the target's spread is ~0.23: a learnt model is far below it
        assert t["finetuned"]["rmsep"] < 0.1, t
        assert t["finetuned_vs_frozen_ridge"] == pytest.approx(
            t["finetuned"]["rmsep"] / t["frozen_ridge"]["rmsep"], abs=1e-3
        )
    saved = json.loads((root / "ft" / "finetune.json").read_text())
    assert saved["targets"][0]["target"] == "y_a" and len(saved["target_mean"]) == 2
    assert saved["finetuned_checkpoint"] == str(root / "ft" / "model")


def test_a_finetuned_checkpoint_loads_with_the_common_loader(setup):
    """Its encoder feeds SpectralEmbedder; its head, kept beside it, reproduces the test predictions."""
    from vitnirs.embedder import SpectralEmbedder
    from vitnirs.embedding import embed_spectra, load_encoder
    from vitnirs.workflows.finetune import load_finetuned

    store, ckpt, root = setup
    res = finetune(ckpt, store, "toy", ["y_a"], out=root / "ft1", epochs=8, patience=8, progress=False)
    model, info, head = load_finetuned(root / "ft1" / "model")
    assert info.finetuned["targets"] == ["y_a"] and info.finetuned["dataset"] == "toy"
    X, w = np.asarray(store.values("toy"), dtype=np.float64), store.wavelengths_nm("toy")
    test = np.arange(60, 80)
    with torch.no_grad():
        z = torch.from_numpy(embed_spectra(model, X[test], w, info=info))
        pred = head(z).numpy()[:, 0] * info.finetuned["target_std"][0] + info.finetuned["target_mean"][0]
    y = store.targets("toy")["y_a"].to_numpy()[test]
    rmsep = float(np.sqrt(np.mean((pred - y) ** 2)))
    assert rmsep == pytest.approx(res["targets"][0]["finetuned"]["rmsep"], rel=1e-3)
    plain, _ = load_encoder(root / "ft1" / "model")
    Z = SpectralEmbedder(checkpoint=str(root / "ft1" / "model"), wavelengths=list(w)).fit_transform(X)
    np.testing.assert_allclose(Z, embed_spectra(plain, X, w, info=info), atol=1e-6)
    with pytest.raises(VitnirsError, match="not a fine-tuned checkpoint"):
        load_finetuned(ckpt)


def test_frozen_encoder_does_not_move_and_test_rows_never_choose(setup, monkeypatch):
    store, ckpt, root = setup
    import vitnirs.workflows.finetune as ft

    seen = []
    real = ft._predict

    def spy(model, head, inputs, rows, batch_size):
        seen.append(np.asarray(rows).copy())
        return real(model, head, inputs, rows, batch_size)

    monkeypatch.setattr(ft, "_predict", spy)
    res = finetune(
        ckpt, store, "toy", ["y_a"], out=root / "frozen", epochs=3, freeze_encoder=True, progress=False
    )
    test_rows = set(range(60, 80))
    # every call but the last (the final test prediction) is training or validation: no test row
    assert all(not (set(r.tolist()) & test_rows) for r in seen[:-1])
    assert set(seen[-1].tolist()) == test_rows
    weights = load_file(str(root / "frozen" / "model" / "model.safetensors"))
    from vitnirs.embedding import load_encoder

    original, _ = load_encoder(ckpt)
    for k, v in original.state_dict().items():
        assert torch.equal(weights[k], v), k
    assert res["settings"]["freeze_encoder"] is True


def test_unknown_target_is_a_clear_error(setup):
    store, ckpt, root = setup
    with pytest.raises(VitnirsError, match="y_nope"):
        finetune(ckpt, store, "toy", ["y_nope"], out=root / "x", progress=False)


def test_cli_finetune_on_a_csv(setup, tmp_path, capsys):
    from vitnirs.cli import main

    store, ckpt, _ = setup
    X = np.asarray(store.values("toy"))
    y = store.targets("toy")["y_a"].to_numpy()
    header = "sample_id,partition,y_a," + ",".join(f"{w:g}" for w in GRID)
    rows = [
        f"s{i},{'cal' if i < 60 else 'test'},{y[i]:.6f}," + ",".join(f"{v:.6f}" for v in X[i])
        for i in range(len(y))
    ]
    csv = tmp_path / "mine.csv"
    csv.write_text("\n".join([header, *rows]) + "\n")
    code = main(["finetune", "--checkpoint", str(ckpt), "--bank", str(csv), "--target", "y_a",
                 "--out", str(tmp_path / "o"), "--epochs", "5", "--freeze-encoder", "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "mine/y_a [native]" in out and "ridge on the frozen embedding" in out
    assert json.loads((tmp_path / "o" / "finetune.json").read_text())["n_test"] == 20
