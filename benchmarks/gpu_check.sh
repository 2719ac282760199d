#!/usr/bin/env bash
# The GPU targets of the runners issue in one device run (the device tool: 15 minutes of
# device time a session, a machine start included). Prepared and carried from here:
#
#   python -m benchmarks.gpu_kit build          # .gpu/: wheels for Python 3.12 + fp16 model
#   device run, carry [".gpu"], timeout_s 540:  bash benchmarks/gpu_check.sh
#
# The GPU machine has torch and transformers but no registry and no BentoML: the kit's
# wheels go to /tmp/site (--no-deps: the image's own torch, numpy and transformers stay),
# the model back to fp32 into a BentoML store in /tmp/mlops. Each measurement has its own
# time limit and failing one does not stop the next; everything lands in $OUT (JSON and
# the servers' log tails). QUICK=1 runs the same steps small (the CPU dry run of the README).
set -uo pipefail
PY=${PYTHON:-python3}
KIT=${KIT:-.gpu}
H=${GPU_CHECK_HOME:-/tmp/mlops}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT" "$H"
set -e
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$KIT"/wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
TAG=$("$PY" -m benchmarks.gpu_kit restore --kit "$KIT" --home "$H")
"$PY" -c "import bentoml, torch; print('bentoml', bentoml.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
set +e

# Time limits per step: 510 s in all, under a 540 s device run.
if [ "${QUICK:-0}" = 1 ]; then
  N=256; LEVELS=8,64; SPLIT=64; T1=600; T2=300; T3=300
else
  N=8000; LEVELS=64,256; SPLIT=64,256,512; T1=240; T2=150; T3=120
fi
B="$PY -m benchmarks.text_serving --home $H --model-tag $TAG --warmup 128"

# 1. fp32: the raw model (batch 1-256), one single-process worker, and the split topology
#    (front workers + one GPU runner, as TOPOLOGY=split defaults them on this machine).
timeout $T1 $B --runs raw,service,split --levels $LEVELS --split-levels $SPLIT \
  --requests $N --output "$OUT/text_serving_gpu_fp32.json"
echo "step 1 rc=$?"
# 2. bf16 autocast in the split topology (refused at load if it loses over 0.3 points;
#    refused on a CPU, where the runner would never turn ready: skipped there).
if [ "$CUDA" = 1 ]; then
  MLOPS_TEXT_SERVE_PRECISION=bf16 timeout $T2 $B --runs split --split-levels $SPLIT \
    --requests $N --output "$OUT/text_serving_gpu_bf16_split.json"
  echo "step 2 rc=$?"
fi
# 3. 32 texts per request, one worker, batches of up to 256 texts.
MLOPS_TEXT_SERVE_MAX_BATCH_SIZE=256 MLOPS_TEXT_SERVE_WARMUP_BATCH_SIZES='[1,32,64,256]' \
  timeout $T3 $B --runs raw,service --levels 64 --requests $((N / 4)) \
  --texts-per-request 32 --output "$OUT/text_serving_gpu_32_per_request.json"
echo "step 3 rc=$?"
for log in "$H"/bentoml-*.log; do
  [ -f "$log" ] && tail -30 "$log" > "$OUT/tail_$(basename "$log")"
done
ls -la "$OUT"
