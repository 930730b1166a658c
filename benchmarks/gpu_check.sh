#!/usr/bin/env bash
# Every GPU check of issue 17 in one run, under 4 minutes on one GPU (each step has its own time limit):
#   1. the CUDA tests (the whole-chain kernel and the per-layer kernels on the device, and their C twins),
#   2. agreement with torch CUDA float64 autograd for every catalogue activation (bench_gpu.py --agree),
#   3. the benchmark (bench_gpu.py: N = 20 and 100 sigmoid, M = 10^7, float32/float64, shared/per-sample).
# Where CuPy or a CUDA device is missing it prints one line and exits 0: nothing checked, no number claimed.
# Usage: benchmarks/gpu_check.sh [python]      (default: python; run from anywhere)
set -u
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-python}}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import cupy, sys; sys.exit(0 if cupy.cuda.runtime.getDeviceCount() > 0 else 1)" >/dev/null 2>&1; then
    echo "gpu_check: no CUDA device usable by CuPy here: nothing checked, no GPU number claimed"
    exit 0
fi
date -u "+gpu_check: %Y-%m-%d %H:%M UTC"
nvidia-smi -L 2>/dev/null || true
status=0
echo "== 1. CUDA tests"
timeout 60 "$PY" -m pytest -q -p no:randomly -p no:cacheprovider tests/test_cuda_chain.py tests/test_cuda_source.py \
    tests/test_philox.py "tests/test_numeric.py::test_cupy_equals_numpy" \
    "tests/test_sampling.py::test_networks_drawn_in_the_cuda_kernel_are_the_reference_draws" \
    "tests/test_sampling.py::test_reductions_on_cupy_equal_numpy_on_the_same_gradients" || status=1
echo "== 2. agreement with torch CUDA float64 autograd"
timeout 50 "$PY" benchmarks/bench_gpu.py --agree || status=1
echo "== 3. benchmark"
timeout 120 "$PY" benchmarks/bench_gpu.py || status=1
echo "gpu_check: $([ $status = 0 ] && echo 'all steps passed' || echo 'a step FAILED or timed out (see above)')"
exit $status
