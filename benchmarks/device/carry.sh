#!/usr/bin/env bash
# What a GPU session carries to the device machine. Run HERE, from the repo root:
#
#   bash benchmarks/device/carry.sh STORE
#
#   .carry/store  `vitnirs pack STORE`: NIR + vis-NIR only, float16 (the xbank's: ~30 MiB)
#   .carry/whl    wheels of what the device image lacks for pretraining (pydantic and its
#                 needs, for its Python 3.12); torch, numpy, pandas, pyarrow, scipy, yaml,
#                 safetensors, tqdm and matplotlib are there already (library/device/KINDS.md)
#
# .carry is ignored by git (.gitignore) and travels with run(carry=[".carry"]); the
# device takes at most 64 MiB in all. Then, on the device: benchmarks/device/session.sh.
set -euo pipefail
store=${1:?usage: bash benchmarks/device/carry.sh STORE}
python=${PYTHON:-python}
mkdir -p .carry
vitnirs pack "$store" --out .carry/store --no-progress
rm -rf .carry/whl
# the versions this machine runs (pydantic-core must match pydantic exactly)
versions=$("$python" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in ("pydantic", "pydantic-core", "annotated-types", "typing-inspection")))
PY
)
# shellcheck disable=SC2086
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .carry/whl $versions
du -sh .carry/store .carry/whl
