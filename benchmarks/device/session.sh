#!/usr/bin/env bash
# One GPU session's measurements (issue 4). Run ON the device machine, from the repo root, with
# .carry carried (benchmarks/device/carry.sh), e.g. through the device tool:
#
#   run(command="bash benchmarks/device/session.sh throughput", carry=[".carry"])
#   run(command="RECIPE=patch_vicreg bash benchmarks/device/session.sh pretrain", carry=[".carry"])
#   run(command="bash benchmarks/device/session.sh resume", carry=[".carry"])
#
#   throughput  benchmarks/throughput.py --device cuda: full step and embedding, small + base,
#               L = 250 / 700 / 2,100, with the roadmap loop on the same GPU   (~4 min)
#   pretrain    a real pretraining on the carried store of RECIPE (a bundled config such as demo, or a
#               research recipe by name or path, e.g. patch_vicreg; default demo): PRESET (the
#               recipe's), BATCH (256), STEPS (4000, in epochs of 500 steps), WORKERS (8); the
#               final checkpoint comes back under $OUT/checkpoint                 (~3-6 min)
#   resume      benchmarks/resume_closeness.py: straight vs resumed vs a second straight run
#               (the GPU's own nondeterminism), 400 steps split at 200           (~3 min)
#
# Each writes JSON (and the run's loss curve) under $OUT, which the device tool brings back.
# Nothing here imports nirs4all: the image has none. DEVICE=cpu runs the same flow on a CPU
# (a dry run of the script; use tiny STEPS).
set -euo pipefail
what=${1:?usage: session.sh throughput|pretrain|resume}
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/vitnirs_out}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
if [ -d .carry/whl ] && ! python3 -c "import pydantic" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .carry/whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
python3 - <<'PY' | tee "$OUT/machine.txt"
import torch, vitnirs
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"vitnirs {vitnirs.__version__}, torch {torch.__version__}, {gpu}")
PY
store=${STORE:-.carry/store}
case $what in
throughput)
    python3 benchmarks/throughput.py --device "$DEVICE" --presets small,base --ref-sizes small,base \
        --workers 0,4 --out "$OUT/throughput_${DEVICE}.json"
    ;;
pretrain)
    steps=${STEPS:-4000}
    epochs=$(( (steps + 499) / 500 ))
    run=/tmp/vitnirs_pretrain
    rm -rf "$run"
    config=$(RECIPE="${RECIPE:-demo}" python3 - <<'PY'
import os
from pathlib import Path

import yaml
from vitnirs.config import save_config
from vitnirs.workflows.commands import bundled_config

name = os.environ["RECIPE"]
path = bundled_config(name) or Path(name)
if "base" not in (yaml.safe_load(path.read_text()) or {}):  # a config (demo, patch): as it is
    print(path)
else:  # a research recipe (base + overrides), resolved into one config file
    from vitnirs.research.ablate import load_variant
    save_config(load_variant(path).cfg, "/tmp/vitnirs_recipe.yaml")
    print("/tmp/vitnirs_recipe.yaml")
PY
)
    echo "pretrain: RECIPE=${RECIPE:-demo} -> --config $config"
    python3 -m vitnirs pretrain --config "$config" --store "$store" --out "$run" --max-steps "$steps" --no-progress \
        --set training.device="$DEVICE" ${PRESET:+--set model.preset="$PRESET"} \
        --set training.batch_size="${BATCH:-256}" --set training.num_workers="${WORKERS:-8}" \
        --set training_strategy.steps_per_epoch=$(( steps < 500 ? steps : 500 )) \
        --set training.epochs="$epochs" --set training.warmup_epochs=1 \
        --set training.checkpoint_every=1000 --set training.probe_every=500 --set training.log_every=50
    cp "$run/metrics.jsonl" "$run/pretrain_summary.json" "$run/loss_curve.png" "$OUT/"
    last=$(python3 -c "import sys; from vitnirs.checkpoint import latest_checkpoint; print(latest_checkpoint(sys.argv[1]))" "$run")
    mkdir -p "$OUT/checkpoint" && cp "$last"/* "$OUT/checkpoint/"  # weights + meta (a small model: < 2 MB)
    rm -f "$OUT/checkpoint/trainer.pt"  # the optimiser state is not needed to score it (and is larger)
    ;;
resume)
    python3 benchmarks/resume_closeness.py --store "$store" --steps "${STEPS:-400}" --split "${SPLIT:-200}" --twice \
        --set training.device="$DEVICE" --set training.batch_size="${BATCH:-256}" \
        --set training.num_workers="${WORKERS:-8}" --set training.log_every=50 --set training.probe_every=0 \
        --out "$OUT/resume_closeness_${DEVICE}.json"
    ;;
*)
    echo "unknown step '$what': throughput | pretrain | resume" >&2
    exit 2
    ;;
esac
ls -la "$OUT"
