#!/usr/bin/env bash
# What one GPU lease runs (device tool, image python3 with its own jax; flowjax and paramax
# carried as wheels in .whl/): an environment check, NPE's cost on the GPU
# (benchmarks/npe_scaling.py, reduced sizes), and the GPU-sized PFNs trained within fixed time
# budgets (benchmarks/train_pfn.py --budget). Everything lands in $OUT.
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SBI_KIT_CACHE_DIR=/tmp/sbi_kit_xla
{
    date -u; nvidia-smi -L
    python3 -m pip show jax jaxlib equinox numpyro optax diffrax flowjax paramax 2>/dev/null \
        | grep -E "^(Name|Version)" | paste - -
    python3 -c "import jax, sbi_kit; print(jax.devices())"
} >>"$LOG" 2>&1
NPE_S=${NPE_S:-110}
PFN_S=${PFN_S:-105}
echo "== npe_scaling (timeout $NPE_S s)" >>"$LOG"
timeout "$NPE_S" python3 benchmarks/npe_scaling.py --tasks two_moons --sizes 10000,1000000 \
    --draws 10000,1000000 --epochs 1 --out "$OUT/npe_scaling_gpu" >>"$LOG" 2>&1
echo "rc $?" >>"$LOG"
for name in gp_large lc_large gp_hyper_large; do
    echo "== $name (budget $PFN_S s)" >>"$LOG"
    timeout $((PFN_S + 20)) python3 benchmarks/train_pfn.py "$name" --budget "$PFN_S" >>"$LOG" 2>&1
    echo "rc $?" >>"$LOG"
    python3 benchmarks/train_pfn.py "$name" --ship >>"$LOG" 2>&1 \
        && cp "sbi_kit/pfn/data/$name.pfn" "$OUT/"
done
date -u >>"$LOG"
