"""PDS components per window on the real transfer pairs: why the evaluation uses one.

    python benchmarks/pds_components.py [--store STORE] [--out benchmarks/results/pds_components.json]

Median test RMSEP of ``pls_raw+pds`` (and ``pls_raw+slope_bias`` for reference) over the ordered
instrument pairs of corn (3 instruments) and tablets (2), for k = 5 and 10 transfer standards,
with window 5 and 1 or 2 PLS components per window. The store is the embedded demo bank
(prepared into ``benchmarks/.cache/store_demo`` when not given). No encoder is involved.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pds_components.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from vitnirs.config import load_config
    from vitnirs.data.store import PreparedStore
    from vitnirs.evaluate.transfer import INSTRUMENT_GROUPS, transfer_pairs
    from vitnirs.workflows.sources import prepare_sources

    store = args.store
    if store is None:
        store = HERE / ".cache" / "store_demo"
        prepare_sources(load_config(None, []), store, synth=0, progress=False)
    st = PreparedStore(store)
    rows = []
    for group, names in INSTRUMENT_GROUPS.items():
        for n_components in (1, 2):
            recs = transfer_pairs(
                st, None, groups={group: names}, heads=(), baselines=("pls_raw",), k_values=(5, 10),
                engine="sklearn", pds={"window": 5, "n_components": n_components},
            )  # fmt: skip
            for k in (5, 10):
                for method in ("pls_raw+pds", "pls_raw+slope_bias"):
                    v = [
                        r["metrics"]["rmsep"]
                        for r in recs
                        if r["method"] == method and r["k"] == k and r["source"] != r["target_instrument"]
                    ]
                    rows.append({"group": group, "k": k, "method": method, "pds_n_components": n_components,
                                 "median_rmsep": float(np.median(v)), "n_pairs": len(v)})  # fmt: skip
                    print(rows[-1], flush=True)
    args.out.write_text(json.dumps({"store": str(store), "window": 5, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
