#!/bin/bash
# bash benchmarks/gpu_check.sh [OUT]   (on a machine with a CUDA GPU; about 8 minutes on one H200)
#
# The device check in one command: tests/training/test_gpu.py (every method's GPU fit agrees with its CPU
# fit, the "Large" setting too, and reports its CUDA peak), then the three "Large" rows of the README on
# `attributes` over seeds 0-2 (PAL-A K=4, VPL, MiCRo; top 2 layers, 3 epochs), side by side, into OUT
# (default benchmarks/results/gpu); PAL-A's fits are judged under each of its few-shot rules (2-3 minutes
# more; not yet run as one command). Logs go beside the results.
set -u
out=${1:-benchmarks/results/gpu}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
for method in pal-a vpl micro; do
  extra=(); name=$method
  if [ "$method" = pal-a ]; then
    extra=(--set k=4 --few-shot map posterior-mean training-users); name=pal_k4_few_shot_rules
  fi
  OMP_NUM_THREADS=2 "$python" benchmarks/finetune_backbone.py --method "$method" "${extra[@]}" --layers 2 --epochs 3 \
    --seeds 0 1 2 --accelerator gpu --skip-tiny --out "$out/large_${name}_L2_E3.json" > "$out/large_${name}.log" 2>&1 &
done
"$python" -m pytest -q -p no:cacheprovider tests/training/test_gpu.py 2>&1 | tee "$out/test_gpu.log"
status=${PIPESTATUS[0]}
wait
for name in pal_k4_few_shot_rules vpl micro; do
  f=$out/large_${name}_L2_E3.json
  grep -q '"mean"' "$f" 2>/dev/null || { echo "$f: not every seed finished (see its .log)"; status=1; }
done
exit "$status"
