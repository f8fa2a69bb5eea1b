"""collate (padding, normalisation, crops) and PretrainData / make_loader on a tiny prepared store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import absorbance_table, batch_settings

from vitnirs.batching.collate import PAD_WAVELENGTH, BatchSettings, collate
from vitnirs.batching.loader import PretrainData, make_loader
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.table import SpectralTable


def table(name: str, n: int, grid: np.ndarray, seed: int, region: str = "NIR", **extra) -> SpectralTable:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, len(grid))[None]
    values = 0.5 + rng.uniform(0, 0.5, (n, 1)) + 0.2 * np.sin(6 * x + rng.uniform(0, 3, (n, 1)))
    meta = {"instrument": [f"inst_{name}"] * n, "measurement_mode": ["reflectance"] * n}
    return absorbance_table(name, values, grid, metadata=meta, region=region, extra=extra)


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    real = [
        table("big", 300, np.linspace(1000, 2400, 700), 0),
        table("small", 12, np.linspace(1100, 2500, 250), 1),
        table("visnir", 40, np.linspace(400, 2400, 1000), 2, region="vis-NIR"),
    ]
    synth = [
        table("pair_a", 30, np.linspace(900, 1700, 256), 3, paired_with="pair_b"),
        table("pair_b", 30, np.linspace(1350, 2550, 228), 4, paired_with="pair_a"),
        table("solo", 20, np.linspace(1000, 2500, 900), 5),
    ]
    prepare(table_jobs(real, "real") + table_jobs(synth, "synthetic"), path, progress=False)
    return path


def spectrum(n: int, start: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    v = rng.normal(1.0, 0.2, n).astype(np.float32)
    return {
        "values": v,
        "wavelengths": np.linspace(start, start + 1000, n),
        "baseline": np.full(n, 0.5),
        "dataset_id": seed,
        "is_synthetic": False,
        "meta": np.array([seed, 0]),
    }


def test_collate_pads_normalises_and_keeps_levels():
    items = [spectrum(n, 1000 + 10 * i, i) for i, n in enumerate((50, 203, 7, 120))]
    items.append({**spectrum(30, 1200, 9), "values": np.full(30, 3.0, np.float32)})  # flat: std floored
    b = collate(items, settings=batch_settings(mask_ratio=0.0))
    B, L = b["values"].shape
    assert (B, L) == (5, 208) and L % 8 == 0 and b["meta"].shape == (5, 2)
    assert b["valid"].sum(1).tolist() == [50, 203, 7, 120, 30]
    assert (b["values"][~b["valid"]] == 0).all() and (b["wavelengths"][~b["valid"]] == PAD_WAVELENGTH).all()
    assert b["values"].dtype == torch.float32 and b["level"].dtype == torch.float32
    ok = b["valid"]
    n = ok.sum(1)
    mean = b["values"].sum(1) / n
    std = ((b["values"] ** 2).sum(1) / n - mean**2).sqrt()
    assert torch.allclose(mean, torch.zeros(5), atol=1e-5) and torch.allclose(
        std[:4], torch.ones(4), atol=1e-4
    )
    for i, s in enumerate(items[:4]):
        assert np.isclose(b["level"][i, 0], s["values"].mean(), atol=1e-5)
        assert np.isclose(b["level"][i, 1], np.log(s["values"].std()), atol=1e-4)
        corrected = s["values"] - 0.5
        assert np.isclose(b["corrected_level"][i, 0], corrected.mean(), atol=1e-5)
        assert np.allclose(b["wavelengths"][i, : len(s["values"])], s["wavelengths"], atol=1e-3)
    assert torch.isfinite(b["values"]).all() and b["level"][4, 1] == pytest.approx(np.log(1e-6), rel=1e-3)
    assert (b["values"][4] == 0).all()


def test_crops_subsample_and_cap_keep_true_wavelengths():
    items = [spectrum(n, 1000.0, i) for i, n in enumerate((400, 300, 350, 280))]
    settings = batch_settings(
        p_crop=1.0, crop_min_fraction=0.3, p_subsample=1.0, max_points=100, mask_ratio=0.0
    )
    b = collate(items, settings=settings, step=3)
    assert b["valid"].sum(1).max() <= 100 and b["values"].shape[1] % 8 == 0
    for i, s in enumerate(items):
        w = b["wavelengths"][i][b["valid"][i]].double().numpy()
        assert (np.diff(w) > 0).all()  # ascending, a subset of the true grid
        assert np.abs(s["wavelengths"][np.searchsorted(s["wavelengths"], w - 1e-3)] - w).max() < 1e-3
    same = collate(items, settings=settings, step=3)
    assert torch.equal(b["wavelengths"], same["wavelengths"])
    assert not torch.equal(b["valid"], collate(items, settings=settings, step=4)["valid"])


def settings(**kw) -> BatchSettings:
    return batch_settings(**{"batch_size": 16, "p_synth": 0.4, "seed": 3, "p_crop": 0.3, **kw})


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert_same(a[k], b[k]) if isinstance(a[k], dict) else torch.equal(a[k], b[k]) or pytest.fail(k)


def test_batch_contract_and_determinism(store):
    data = PretrainData(store, settings=settings(), regions=("NIR", "vis-NIR"))
    assert set(data.names) == {"big", "small", "visnir", "pair_a", "pair_b", "solo"}
    assert data.meta_vocab["measurement_mode"] == ["reflectance"]
    b = data.batch(5)
    assert b["values"].dtype == torch.float32 and b["valid"].dtype == torch.bool and b["meta"].shape[1] == 3
    assert not (b["mask"] & ~b["valid"]).any() and (b["meta"][:, 0] > 0).all()
    assert_same(b, PretrainData(store, settings=settings()).batch(5))
    assert not torch.equal(b["dataset_id"], data.batch(6)["dataset_id"]) or not torch.equal(
        b["values"], data.batch(6)["values"]
    )
    other_rank = PretrainData(store, settings=settings(), rank=1, world_size=2).batch(5)
    assert not (
        other_rank["values"].shape == b["values"].shape and torch.equal(other_rank["values"], b["values"])
    )


def test_token_budget(store):
    data = PretrainData(store, settings=settings(batch_size=64, token_budget=8000, p_crop=0.0))
    for step in range(10):
        b = data.batch(step)
        assert b["values"].shape[0] * b["valid"].sum(1).max() <= 8000


def test_view2_differs_and_paired_view_comes_from_the_paired_table(store):
    data = PretrainData(store, settings=settings(p_synth=0.9, p_crop=0.0))
    a, bb = data.names.index("pair_a"), data.names.index("pair_b")
    seen = 0
    for step in range(12):
        b = data.batch(step)
        v2 = b["view2"]
        assert v2["values"].shape[0] == b["values"].shape[0]
        assert not torch.equal(v2["values"], b["values"])
        for i in np.flatnonzero(b["dataset_id"].numpy() == a):
            seen += 1
            assert v2["dataset_id"][i] == bb
            grid = v2["wavelengths"][i][v2["valid"][i]]
            assert len(grid) == 228 and abs(float(grid[0]) - 1350) < 1e-3
        real = ~b["is_synthetic"]
        assert torch.equal(v2["dataset_id"][real], b["dataset_id"][real])
    assert seen > 0


def test_loader_order_same_for_0_and_2_workers(store):
    data = PretrainData(store, settings=settings())
    direct = [data.batch(s) for s in range(3, 8)]
    for workers in (0, 2):
        got = list(make_loader(data, 3, 8, num_workers=workers, pin_memory=False))
        assert len(got) == 5
        for x, y in zip(direct, got, strict=True):
            assert_same(x, y)


@pytest.mark.parametrize("sampling", ["uniform_by_dataset", "proportional"])
def test_sampling_modes(store, sampling):
    """uniform_by_dataset: each real dataset equally often, whatever its size; proportional: by
    its number of spectra (big 300, small 12, visnir 40)."""
    data = PretrainData(store, settings=batch_settings(batch_size=32, p_synth=0.0, sampling=sampling))
    # one length bucket per step (here one dataset per bucket): 2,000 steps for ±0.01 shares
    drawn = np.concatenate([data.sampler.draw(step)[0] for step in range(2000)])
    share = {n: float(np.mean(drawn == i)) for i, n in enumerate(data.names)}
    sizes = {"big": 300, "small": 12, "visnir": 40}
    for name, size in sizes.items():
        expected = 1 / 3 if sampling == "uniform_by_dataset" else size / sum(sizes.values())
        assert share[name] == pytest.approx(expected, abs=0.03), (name, share)


def test_metadata_ids_go_unknown_in_the_asked_share_of_rows(store):
    plain = PretrainData(store, settings=settings(batch_size=64, p_synth=0.0), regions=("NIR", "vis-NIR"))
    half = PretrainData(store, settings=settings(batch_size=64, p_synth=0.0, p_meta_unknown=0.5),
                        regions=("NIR", "vis-NIR"))  # fmt: skip
    b0, b1 = plain.batch(3), half.batch(3)
    assert torch.equal(b0["values"], b1["values"])  # only the ids change, not the spectra or the mask
    assert torch.equal(b0["mask"], b1["mask"])
    assert (b0["meta"][:, 0] > 0).all()
    unknown = (b1["meta"] == 0).all(dim=1)  # a dropped row loses every id at once
    kept = ~unknown
    assert 16 <= int(unknown.sum()) <= 48 and torch.equal(b1["meta"][kept], b0["meta"][kept])
    assert torch.equal(b1["meta"], half.batch(3)["meta"])  # deterministic in (seed, rank, step)
