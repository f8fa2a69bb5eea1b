"""One study JSON from entries of several (e.g. the seeds of one recipe, each scored in its own run).

    python benchmarks/merge_studies.py OUT.json s0=benchmarks/results/representation/A_seed0.json:ENTRY \
        s1=benchmarks/results/representation/A_seed1.json:ENTRY

Each ``NAME=FILE:ENTRY`` copies entry ``ENTRY`` of ``FILE`` under the name ``NAME`` (its scores,
controls and checkpoint untouched). The files must share the scorecard, its settings and the
bank — the controls are then the same untrained networks and classical fits — or the merge is
refused. ``vitnirs export --scorecard OUT.json --scorecard-entry s0 --scorecard-entry s1`` then
shows the published seed with the other beside it, as the model card of issue 15 did.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHARED = ("scorecard", "settings", "bank")


def merge(specs: list[str]) -> dict:
    out: dict | None = None
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, entry = rest.rpartition(":")
        study = json.loads(Path(path).read_text())
        found = [e for e in study["entries"] if e["name"] == entry]
        if not name or not found:
            raise SystemExit(
                f"{spec}: expected NAME=FILE:ENTRY with ENTRY among {[e['name'] for e in study['entries']]}"
            )
        if out is None:
            out = {k: study[k] for k in (*SHARED, "overrides", "readouts")} | {
                "entries": [],
                "merged_from": [],
            }
        differs = [k for k in SHARED if study[k] != out[k]]
        if differs:
            raise SystemExit(f"{path}: its {', '.join(differs)} differ from the first file's; not merged")
        out["entries"].append(found[0] | {"name": name, "merged_from": f"{path}:{entry}"})
        out["merged_from"].append(f"{path}:{entry}")
    return out or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("entries", nargs="+", metavar="NAME=FILE:ENTRY")
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(merge(args.entries), indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
