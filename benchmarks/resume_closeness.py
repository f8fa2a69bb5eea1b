"""How close a resumed pretraining ends to an uninterrupted one (issue 4, "exact resume").

    python benchmarks/resume_closeness.py --config demo --store STORE --steps 200 --split 100 \
        [--set training.device=cuda ...] [--out benchmarks/results/resume_closeness.json]

Runs ``vitnirs pretrain`` three times in a scratch folder: A straight to ``--steps``; B to
``--split``, then B again with ``--resume`` to ``--steps``. Then compares the final weights of A
and B tensor by tensor (largest absolute difference, relative L2 distance ``|A - B| / |A|``)
and the last logged losses.

On CPU every random draw derives from (seed, rank, step) and the kernels are deterministic, so
the weights must be identical (``max_abs_diff`` 0; the test suite checks that too). On a GPU,
attention backward and atomics in reductions are not deterministic: the same figures say how
far two runs drift, and ``--twice`` also compares A with a second straight run A', the noise
floor that resume has to be measured against.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from vitnirs.checkpoint import MODEL_FILE, latest_checkpoint

HERE = Path(__file__).resolve().parent


def pretrain(
    store: str, run: Path, config: str, steps: int, overrides: list[str], resume: bool = False
) -> float:
    cmd = [sys.executable, "-m", "vitnirs", "pretrain", "--config", config, "--store", store]
    cmd += ["--out", str(run), "--max-steps", str(steps), "--no-progress"]
    for item in overrides:
        cmd += ["--set", item]
    if resume:
        cmd.append("--resume")
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def last_losses(run: Path) -> dict:
    """The last loss line of the run's ``metrics.jsonl``.

    Its terms are running means since the previous log line, and a resumed run starts a new
    window: they differ after a resume even when the weights are identical. Compare weights.
    """
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    rows = [r for r in rows if "total" in r]
    return rows[-1] if rows else {}


def compare(a: Path, b: Path) -> dict:
    """Weights of two checkpoints: the largest |a - b|, the relative L2 distance, per tensor and overall."""
    wa, wb = load_file(str(a / MODEL_FILE)), load_file(str(b / MODEL_FILE))
    if wa.keys() != wb.keys():
        raise SystemExit(f"{a} and {b} hold different tensors")
    per_tensor, num, den, worst = {}, 0.0, 0.0, 0.0
    for key in sorted(wa):
        x, y = wa[key].double(), wb[key].double()
        diff = (x - y).abs()
        per_tensor[key] = {
            "max_abs_diff": float(diff.max()),
            "rel_l2": float(diff.norm() / x.norm().clamp_min(1e-30)),
        }
        num += float(diff.pow(2).sum())
        den += float(x.pow(2).sum())
        worst = max(worst, float(diff.max()))
    ranked = sorted(per_tensor.items(), key=lambda kv: -kv[1]["rel_l2"])
    return {
        "max_abs_diff": worst,
        "rel_l2": (num / den) ** 0.5 if den else 0.0,
        "identical": worst == 0.0,
        "worst_tensors": dict(ranked[:5]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="demo")
    parser.add_argument("--store", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--split", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--twice", action="store_true", help="also a second straight run: the noise floor")
    parser.add_argument("--work", help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", default=str(HERE / "results" / "resume_closeness.json"))
    args = parser.parse_args()
    if not 0 < args.split < args.steps:
        raise SystemExit("need 0 < --split < --steps")
    work = Path(args.work or tempfile.mkdtemp(prefix="resume_"))
    overrides = [f"training.checkpoint_every={args.split}", *args.set]
    seconds = {"straight": pretrain(args.store, work / "A", args.config, args.steps, overrides)}
    seconds["to_split"] = pretrain(args.store, work / "B", args.config, args.split, overrides)
    seconds["resumed"] = pretrain(args.store, work / "B", args.config, args.steps, overrides, resume=True)
    result = {
        "settings": {**vars(args), "work": str(work)},
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name()
            if torch.cuda.is_available()
            else platform.processor() or "cpu",
        },
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "resumed_vs_straight": compare(latest_checkpoint(work / "A"), latest_checkpoint(work / "B")),
        "last_losses": {"straight": last_losses(work / "A"), "resumed": last_losses(work / "B")},
    }
    if args.twice:
        seconds["straight_again"] = pretrain(args.store, work / "A2", args.config, args.steps, overrides)
        result["straight_vs_straight"] = compare(
            latest_checkpoint(work / "A"), latest_checkpoint(work / "A2")
        )
        result["last_losses"]["straight_again"] = last_losses(work / "A2")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    r = result["resumed_vs_straight"]
    print(
        f"resumed vs straight: max |diff| {r['max_abs_diff']:.3g}, relative L2 {r['rel_l2']:.3g} -> {args.out}"
    )
    if "straight_vs_straight" in result:
        s = result["straight_vs_straight"]
        print(
            f"straight vs straight (noise floor): max |diff| {s['max_abs_diff']:.3g}, relative L2 {s['rel_l2']:.3g}"
        )


if __name__ == "__main__":
    main()
