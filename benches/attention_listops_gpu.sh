#!/usr/bin/env bash
# Full-length ListOps on one GPU in about eight minutes (the device check of
# issue 16): a CUDA smoke run (seconds), then FP training for FP_BUDGET seconds,
# chip evaluations, hardware-aware fine-tuning for HWA_BUDGET seconds and chip
# evaluations again. Results (listops.md/.json/.png, model.pt, log) go to $OUT.
# Run from the repository root with the built extension importable.
set -o pipefail
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:-benches/out/attention}
FP_BUDGET=${FP_BUDGET:-170}
HWA_BUDGET=${HWA_BUDGET:-50}
SEEDS=${SEEDS:-3}
WORKERS=${WORKERS:-14}
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
  python3 -m analogkernels.cli attention listops --full --device cuda --trees 64,16,32 \
    --batch 16 --max-steps 5 --hwa-steps 2 --seeds 1 --workers 2 \
    --cache-dir /tmp/ak-smoke --out /tmp/ak-smoke-out || exit 1
  python3 -m analogkernels.cli attention listops --full --device cuda \
    --time-budget "$FP_BUDGET" --hwa-time-budget "$HWA_BUDGET" --seeds "$SEEDS" \
    --workers "$WORKERS" --cache-dir /tmp/ak-listops --out "$OUT"
} 2>&1 | tee "$OUT/log"
