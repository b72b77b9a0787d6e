#!/usr/bin/env bash
# Everything GPU-related in one go (under 8 minutes on one H100/H200); figures go to
# $OUT/gpu_figures.txt (or ./gpu-out/). Run from the repository root on a CUDA machine
# with torch, transformers and opacus installed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-gpu-out}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RUN=$(mktemp -d)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers, opacus; print('torch', torch.__version__, 'transformers', transformers.__version__, 'opacus', opacus.__version__)"
  echo "== DP overhead, base preset (>=100M), bf16 autocast, batch 32 x 256 tokens"
  timeout 150 python3 benchmarks/train_overhead.py --device cuda --preset base --batch 32 --seq 256 --steps 10 --bf16
  echo "== DP overhead, large preset, bf16 autocast, batch 32 x 256 tokens"
  timeout 150 python3 benchmarks/train_overhead.py --device cuda --preset large --batch 32 --seq 256 --steps 8 --bf16
  echo "== end to end on CUDA: demo data, base preset, 2 epochs at epsilon 8, generate 2400 rows"
  /usr/bin/time -f "train: %e s" timeout 200 python3 -m auditor train auditor/data/demo.csv \
    --schema auditor/data/demo_schema.yaml --out "$RUN/r" --model base --epochs 2 --lr 3e-4 --seed 0 --device cuda -q
  /usr/bin/time -f "generate: %e s" timeout 120 python3 -m auditor generate "$RUN/r" -n 2400 --device cuda -q
  python3 -c "import json,sys; p=json.load(open(sys.argv[1])); print({k: p[k] for k in ('epsilon','steps','clipping','clipping_layers','train_seconds')})" "$RUN/r/model/privacy.json"
  echo "== model audits on CUDA (exposure, mia, dp_audit)"
  /usr/bin/time -f "audit: %e s" timeout 150 python3 -m auditor audit "$RUN/r" --only exposure,mia,dp_audit --device cuda -q
  python3 - "$RUN/r" <<'PY'
import json, sys, pathlib
r = pathlib.Path(sys.argv[1]) / "audit"
e = json.loads((r / "exposure.json").read_text())
print("exposure by repetitions:", [(b["repetitions"], round(b["exposure_mean"], 2)) for b in e["by_repetition"]])
m = json.loads((r / "mia.json").read_text())
print("mia best", m["best_signal"], {k: round(v["auc"], 3) for k, v in m["signals"].items()})
print("dp_audit", json.loads((r / "dp_audit.json").read_text())["max_lower_bound"])
PY
} 2>&1 | grep -v -E "Warning|warn\(|backward\(\)" | tee "$OUTDIR/gpu_figures.txt"
