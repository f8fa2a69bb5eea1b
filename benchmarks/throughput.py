"""Pretraining and embedding throughput, ours vs the roadmap's per-sample loop (issue 4, "Performance").

    python benchmarks/throughput.py [--out benchmarks/results/throughput.json] [--device cpu|cuda]
        [--preset small] [--steps N] [--threads T]

Measures, for spectra of L = 250, 700 and 2,100 points (regular grid, 1000-2500 nm):

1. **Pretraining, full step**: a small prepared store per L (synthetic smooth spectra written by
   ``vitnirs.data.prepare`` with their AsLS baselines) → ``PretrainData`` batches (sampling,
   augmentation, crop, collate, normalisation, block masking) through ``make_loader`` with
   ``num_workers`` 0 and 2 → ``PretrainObjective`` (MAE + baseline consistency, the demo
   config's weights) → backward → grad clip → AdamW, as ``vitnirs.train.loop`` does. Batch 64,
   ``max_points`` = L. Reports spectra/s, ms/step and the fraction of the step spent blocked on
   ``next(loader)`` (plus the host → device copy).
2. **Embedding**: ``model.embed`` (eval, no grad), batch 256.
3. **Reference**: the roadmap's ``train_epoch`` as written (``benchmarks/roadmap_reference.py``)
   on in-memory batches of 64, at our ``small`` and ``base`` sizes; ratio ours / roadmap per L.

Each figure is the best of ``--windows`` (3) timed windows of at least ``--window-s`` seconds
(or ``--steps`` steps) after a warm-up, so a busy machine disturbs it less; the load average
is recorded. ``--device cuda`` runs bf16 autocast with ``torch.cuda.synchronize`` around the
timings. nirs4all is not needed (building the store uses only numpy/scipy/pandas code paths).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import vitnirs
from vitnirs.batching.collate import BatchSettings
from vitnirs.batching.loader import PretrainData, make_loader
from vitnirs.config import load_config
from vitnirs.data.prepare import prepare, table_jobs
from vitnirs.data.table import SpectralTable
from vitnirs.model import count_parameters
from vitnirs.train.loop import build_model, build_objective, param_groups
from vitnirs.train.probe import to_device

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import roadmap_reference as ref  # noqa: E402 (a sibling script, not a package)

DEMO_CONFIG = Path(vitnirs.__file__).resolve().parent / "configs" / "demo.yaml"
LENGTHS = (250, 700, 2100)
ROWS_PER_DATASET = 256


# ----------------------------------------------------------------------------- helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_info(device: torch.device) -> dict:
    cpu_model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "numpy": np.__version__,
        "vitnirs": vitnirs.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model,
    }
    try:
        import nirs4all  # noqa: F401

        info["nirs4all_installed"] = True
    except ImportError:
        info["nirs4all_installed"] = False
    return info


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def best_of(windows: list[dict], key: str = "spectra_per_s") -> dict:
    best = max(windows, key=lambda w: w[key])
    return {**best, "windows": windows}


def timed_windows(
    run: Callable[[int], dict], *, warmup: int, windows: int, window_s: float, steps: int | None
) -> dict:
    """Warm up, pick a window length (``steps`` or enough for ``window_s``), time ``windows`` windows.

    ``run(n)`` does ``n`` steps and returns ``{"seconds", "spectra", ...}``.
    """
    warm = run(warmup)
    per_step = warm["seconds"] / max(warmup, 1)
    n = steps or max(1, min(200, math.ceil(window_s / max(per_step, 1e-6))))
    out = []
    for _ in range(windows):
        w = run(n)
        w["steps"] = n
        w["spectra_per_s"] = w["spectra"] / w["seconds"]
        w["ms_per_step"] = 1000.0 * w["seconds"] / n
        out.append({k: round(v, 4) if isinstance(v, float) else v for k, v in w.items()})
    return best_of(out)


# ----------------------------------------------------------------------------- store
def build_store(root: Path, length: int) -> Path:
    """A prepared store of 2 real-kind + 1 synthetic-kind NIR datasets of ``length`` points each."""
    tables = []
    for k, kind in enumerate(("real", "real", "synthetic")):
        values, wl, _ = ref.smooth_spectra(ROWS_PER_DATASET, length, seed=100 * length + k)
        tables.append(
            (
                kind,
                SpectralTable(
                    name=f"bench_{kind}_{k}_L{length}",
                    source=f"synthetic:benchmark/{k}",
                    values=values.astype(np.float32),
                    wavelengths_nm=wl,
                    native_unit="nm",
                    native_axis_first=float(wl[0]),
                    native_axis_last=float(wl[-1]),
                    signal_type_original="absorbance",
                    signal_type_stored="absorbance",
                    region="NIR",
                    extra={"instrument": f"bench-{k}", "measurement_mode": "reflectance"},
                ),
            )
        )
    store = root / f"store_L{length}"
    jobs = [job for kind, t in tables for job in table_jobs([t], kind)]
    prepare(jobs, store, workers=1, progress=False)
    return store


# ----------------------------------------------------------------------------- ours: full step
def pretrain_config(
    preset: str, length: int, batch_size: int, dropout: float | None = None, extra: tuple[str, ...] = ()
):
    """The demo config at ``preset``, batch ``batch_size``, ``max_points`` = L (and ``dropout``),
    then the ``--set`` overrides ``extra``."""
    overrides = [
        f"model.preset={preset}",
        f"training.batch_size={batch_size}",
        f"training.max_points={length}",
    ]
    if dropout is not None:
        overrides.append(f"model.dropout={dropout}")
    return load_config(DEMO_CONFIG, [*overrides, *extra])


def measure_full_step(
    store: Path,
    preset: str,
    length: int,
    workers: int,
    device: torch.device,
    args,
    dropout: float | None = None,
) -> dict:
    cfg = pretrain_config(preset, length, args.batch_size, dropout, tuple(args.set))
    t = cfg.training
    torch.manual_seed(0)
    data = PretrainData(store, settings=BatchSettings.from_config(cfg), regions=list(cfg.data.regions))
    model = build_model(cfg).to(device)
    objective = build_objective(cfg, model)
    optimizer = torch.optim.AdamW(param_groups(model, t.weight_decay), lr=t.lr)
    amp = torch.bfloat16 if device.type == "cuda" else None
    loader = make_loader(data, 0, 10**7, num_workers=workers, pin_memory=device.type == "cuda")
    live = [iter(loader)]  # emptied at the end: stops the workers
    shape = {"points": [], "width": []}

    def run(n: int) -> dict:
        waited, spectra = 0.0, 0
        sync(device)
        start = time.perf_counter()
        for _ in range(n):
            tic = time.perf_counter()
            batch = to_device(next(live[0]), device)
            waited += time.perf_counter() - tic
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss, terms = objective(batch)
            torch.stack(list(terms.values())).tolist()  # the loop's one host transfer per step
            loss.backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            spectra += batch["values"].shape[0]
            shape["points"].append(float(batch["valid"].sum(1).float().mean()))
            shape["width"].append(int(batch["values"].shape[1]))
        sync(device)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "spectra": spectra, "data_wait_fraction": waited / seconds}

    result = timed_windows(run, warmup=3, windows=args.windows, window_s=args.window_s, steps=args.steps)
    live.clear()
    return {
        "preset": preset,
        "L": length,
        "num_workers": workers,
        "dropout": cfg.model.dropout,
        "batch_size": args.batch_size,
        "parameters": count_parameters(model),
        "mean_real_points_per_spectrum": round(float(np.mean(shape["points"])), 1),
        "mean_padded_width": round(float(np.mean(shape["width"])), 1),
        "mask_ratio": cfg.masking.mask_ratio,
        "trunk": cfg.model.trunk,
        **result,
    }


# ----------------------------------------------------------------------------- ours: embedding
def measure_embedding(preset: str, length: int, device: torch.device, args) -> dict:
    cfg = pretrain_config(preset, length, args.batch_size, extra=tuple(args.set))
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    B = args.embed_batch
    values, wl, _ = ref.smooth_spectra(B, length, seed=length)
    mean, std = values.mean(1, keepdims=True), values.std(1, keepdims=True)
    x = torch.from_numpy((values - mean) / std).float().to(device)
    wavelengths = torch.from_numpy(np.broadcast_to(wl, (B, length)).copy()).float().to(device)
    valid = torch.ones(B, length, dtype=torch.bool, device=device)
    level = torch.from_numpy(np.concatenate([mean, np.log(std)], 1)).float().to(device)
    amp = torch.bfloat16 if device.type == "cuda" else None

    def run(n: int) -> dict:
        sync(device)
        start = time.perf_counter()
        for _ in range(n):
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                emb = model.embed(x, wavelengths, valid, level)
            emb.float().sum().item()
        sync(device)
        return {"seconds": time.perf_counter() - start, "spectra": n * B}

    result = timed_windows(run, warmup=2, windows=args.windows, window_s=args.window_s, steps=None)
    return {"preset": preset, "L": length, "batch_size": B, "parameters": count_parameters(model), **result}


# ----------------------------------------------------------------------------- roadmap reference
def measure_reference(size: str, length: int, device: torch.device, args) -> dict:
    """The roadmap loop at the thread count that is fastest right now (1 or ``--threads``).

    On a loaded machine, two OpenMP threads on per-sample tiny kernels can be many times slower
    than one; a short probe picks the faster so the reference is never handicapped.
    """
    torch.manual_seed(0)
    np.random.seed(0)
    model, decoder, optimizer, masker, config = ref.build_reference(size, device)
    batches = ref.make_batches(1, args.batch_size, length, seed=length)
    probe_batch = [{k: v[:8] for k, v in batches[0].items()}]
    threads = sorted({1, args.threads}) if device.type == "cpu" else [torch.get_num_threads()]
    probe = {}
    for nt in threads:
        torch.set_num_threads(nt)
        ref.train_epoch(model, decoder, probe_batch, optimizer, masker, config, device)  # warm-up
        sync(device)
        tic = time.perf_counter()
        ref.train_epoch(model, decoder, probe_batch, optimizer, masker, config, device)
        sync(device)
        probe[nt] = round(8 / (time.perf_counter() - tic), 2)
    chosen = max(probe, key=probe.get)
    torch.set_num_threads(chosen)

    def run(n: int) -> dict:
        sync(device)
        start = time.perf_counter()
        ref.train_epoch(model, decoder, batches * n, optimizer, masker, config, device)
        sync(device)
        return {"seconds": time.perf_counter() - start, "spectra": n * args.batch_size}

    try:
        result = timed_windows(run, warmup=1, windows=args.windows, window_s=args.window_s, steps=None)
    finally:
        torch.set_num_threads(args.threads)
    n_params = count_parameters(model) + count_parameters(decoder)
    return {
        "size": size,
        "L": length,
        "batch_size": args.batch_size,
        "parameters": n_params,
        "threads_used": chosen,
        "probe_spectra_per_s_by_threads": probe,
        **result,
    }


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "throughput.json")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--preset", default="small", help="our preset compared with the reference")
    parser.add_argument("--presets", default="tiny,small", help="our presets measured (full step, embedding)")
    parser.add_argument("--ref-sizes", default="small,base", help="reference sizes (small, base)")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--workers", default="0,2", help="DataLoader num_workers to measure")
    parser.add_argument("--steps", type=int, default=None, help="steps per window (default: --window-s)")
    parser.add_argument("--window-s", type=float, default=2.0, help="seconds per timed window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--embed-batch", type=int, default=256)
    parser.add_argument(
        "--dropout0",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also time --preset with model.dropout=0 (not in the ratios)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="config override for our runs, e.g. model.channels=[absorbance,sg1,sg2]",
    )  # fmt: skip
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    presets = list(dict.fromkeys([*args.presets.split(","), args.preset]))
    workers = [int(x) for x in args.workers.split(",")]
    ref_sizes = [s for s in args.ref_sizes.split(",") if s]  # "" = no roadmap reference
    # full-step runs: presets x workers; a reference size we do not measure gets one run (most
    # workers) for its ratio; with --dropout0, the compared preset once more without dropout
    extra = [s for s in ref_sizes if s not in presets]
    runs = [(p, w, None) for p in presets for w in workers] + [(s, max(workers), None) for s in extra]
    if args.dropout0:
        runs.append((args.preset, max(workers), 0.0))
    started = time.perf_counter()
    report: dict = {
        "machine": machine_info(device),
        "loadavg_start": loadavg(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "config": str(DEMO_CONFIG),
        "full_step": [],
        "embedding": [],
        "reference": [],
    }

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s load {loadavg()}] {msg}", flush=True)

    with tempfile.TemporaryDirectory(prefix="vitnirs-bench-") as tmp:
        for L in lengths:
            tic = time.perf_counter()
            store = build_store(Path(tmp), L)
            log(f"store L={L}: {time.perf_counter() - tic:.1f}s")
            for preset, w, dropout in runs:
                r = measure_full_step(store, preset, L, w, device, args, dropout)
                r["loadavg"] = loadavg()
                r["variant"] = "config" if dropout is None else "dropout_override"
                report["full_step"].append(r)
                log(
                    f"full step {preset:5s} L={L:5d} workers={w} dropout={r['dropout']}: "
                    f"{r['spectra_per_s']:8.1f} spectra/s {r['ms_per_step']:8.1f} ms/step, "
                    f"data wait {r['data_wait_fraction']:.2f}"
                )
            for preset in [*presets, *extra]:
                r = measure_embedding(preset, L, device, args)
                r["loadavg"] = loadavg()
                report["embedding"].append(r)
                log(f"embed     {preset:5s} L={L:5d}: {r['spectra_per_s']:8.1f} spectra/s")
            for size in ref_sizes:
                r = measure_reference(size, L, device, args)
                r["loadavg"] = loadavg()
                report["reference"].append(r)
                log(
                    f"roadmap   {size:5s} L={L:5d}: {r['spectra_per_s']:8.1f} spectra/s "
                    f"(threads {r['threads_used']}, probe {r['probe_spectra_per_s_by_threads']})"
                )

    # ratios: ours (full step, incl. loading) / roadmap, same size, per L and num_workers
    ratios = []
    for r in report["reference"]:
        for o in report["full_step"]:
            if o["preset"] == r["size"] and o["L"] == r["L"] and o["variant"] == "config":
                ratios.append(
                    {
                        "size": r["size"],
                        "L": r["L"],
                        "num_workers": o["num_workers"],
                        "ours_spectra_per_s": o["spectra_per_s"],
                        "roadmap_spectra_per_s": r["spectra_per_s"],
                        "ratio": round(o["spectra_per_s"] / r["spectra_per_s"], 2),
                    }
                )
    report["ratios"] = ratios
    target_ratio = 100.0 if device.type == "cuda" else 5.0
    main_ratios = [x for x in ratios if x["size"] == args.preset]
    emb700 = {e["preset"]: e["spectra_per_s"] for e in report["embedding"] if e["L"] == 700}
    report["targets"] = {
        "ratio_target": target_ratio,
        "ratio_min_over_L_and_workers": min((x["ratio"] for x in main_ratios), default=None),
        "ratio_met": bool(main_ratios) and all(x["ratio"] >= target_ratio for x in main_ratios),
        "embedding_target_spectra_per_s_at_L700": 1000.0,
        "embedding_at_L700_by_preset": emb700,
        "embedding_met_by_preset": {p: v >= 1000.0 for p, v in emb700.items()},
    }
    report["loadavg_end"] = loadavg()
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    report["notes"] = [
        "Full step = what vitnirs.train.loop does per step, minus logging/checkpoints: next(loader) "
        "(sampling, augmentation incl. the demo config's random crop, collate, normalisation, block "
        "masking, built from a prepared store of memory-mapped .npy files) + host->device copy, "
        "PretrainObjective (MAE + baseline consistency 0.1), one host transfer of the loss terms, "
        "backward, grad clip, AdamW. data_wait_fraction = time blocked on next(loader) + copy / total.",
        "Different work, ours vs roadmap: our MAE encoder sees only the unmasked ~30 % of the points "
        "(MAE-style token dropping) and our decoder predicts only the masked ~70 %; the roadmap's encoder "
        "embeds and projects all L points with masked values zeroed (they are excluded as attention keys "
        "through key_padding_mask) and its stand-in decoder predicts all L. Our baseline-consistency loss "
        "runs the encoder on all points of x and of x - baseline (2 x B full-length spectra, one batched "
        "call); the roadmap's re-runs it once per sample on x - baseline only (it reuses the masked "
        "embedding of x). Ours also adds a level token and a metadata token, and a 2-layer MLP "
        "wavelength encoding; the roadmap's is a fixed sinusoid.",
        "The roadmap loop runs on in-memory tensors (no loading, no augmentation; its masker runs per "
        "sample in numpy), fp32 as written, with the thread count (1 or --threads) that was faster in a "
        "short probe: on a loaded 2-core machine two OpenMP threads on its tiny per-sample kernels can be "
        "far slower than one. Ours always runs at --threads.",
        "The random crop (p_crop 0.3 in the default augmentation) shortens some spectra: see "
        "mean_real_points_per_spectrum vs L; batches are padded to the longest (mean_padded_width).",
        "Dropout: the compared runs use the demo config's model.dropout (0.0 since the MAE convention "
        "was adopted; with 0.1, the attention-probability dropout cost about a third of a CPU step). "
        "The roadmap reference keeps its own default dropout 0.1 (nn.MultiheadAttention / "
        "TransformerEncoderLayer), as written.",
        "Each figure is the best of the timed windows (all windows are kept); the machine may be shared "
        "(see loadavg fields).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    log(f"wrote {args.out}")
    for x in ratios:
        print(
            f"ratio {x['size']} L={x['L']} workers={x['num_workers']}: {x['ratio']:.1f}x "
            f"({x['ours_spectra_per_s']:.0f} vs {x['roadmap_spectra_per_s']:.1f} spectra/s)"
        )


if __name__ == "__main__":
    main()
