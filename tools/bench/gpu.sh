#!/usr/bin/env bash
# The vision benchmark on an NVIDIA GPU (docs/benchmarks.md, "On a GPU"):
#   bash tools/bench/gpu.sh [COUNT_PER_CLASS] [REPEAT] [IN_FLIGHT]
# FacePass's side of tools/bench/run.sh on ONNX Runtime's CUDA provider, on
# the same proxy models (buffalo_l's architectures) and 24 MP photos:
#   1. the services' defaults: one photo at a time, IN_FLIGHT photos in
#      flight (default 4), the embedder's batching, and the recogniser alone
#      at batch sizes 1 to 256;
#   2. 8 photos in flight;
#   3. the CUDA provider's convolution search, heuristic and exhaustive
#      (ort.cuda_conv_search), for both services, and the embedder's with
#      NHWC convolutions (ort.cuda_prefer_nhwc);
#   4. the same binary on all of this machine's CPU cores, for the ratio.
# insightface stays on the CPU: its figures are run.sh's, on the same photos.
#
# Needs an NVIDIA driver for CUDA 13 (580 or later; nvidia-smi). ONNX
# Runtime's GPU build (onnxruntime-gpu 1.31.1, CUDA 13) and NVIDIA's CUDA 13,
# cuBLAS and cuDNN 9 libraries come from PyPI into .venv-gpu. On a machine
# without PyPI, point FACEPASS_ORT_GPU_LIB at an onnxruntime-gpu
# libonnxruntime.so (its providers beside it) and put the CUDA libraries on
# LD_LIBRARY_PATH yourself. Results: .facepass/bench/facepass-cuda*.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
COUNT="${1:-4}" REPEAT="${2:-3}" THREADS="${3:-4}"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L; then
    echo "gpu.sh: no NVIDIA GPU here (nvidia-smi finds none); this benchmark needs one" >&2
    exit 2
fi
# shellcheck source=scripts/env.sh
source scripts/env.sh
# shellcheck source=tools/bench/inputs.sh
source tools/bench/inputs.sh

if [[ -n "${FACEPASS_ORT_GPU_LIB:-}" ]]; then
    ORT_GPU="$FACEPASS_ORT_GPU_LIB"
else
    GPU_VENV="$ROOT/.venv-gpu"
    echo "[gpu] onnxruntime-gpu 1.31.1 with CUDA 13, cuBLAS and cuDNN 9 into $GPU_VENV"
    [[ -x "$GPU_VENV/bin/pip" ]] || "${FACEPASS_PYTHON:-python3}" -m venv "$GPU_VENV"
    "$GPU_VENV/bin/pip" install -q "onnxruntime-gpu[cuda,cudnn]==1.31.1" "nvidia-cublas~=13.0"
    ORT_GPU="$(ls "$GPU_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1)"
    # The CUDA provider finds cuBLAS, cuDNN, cuFFT, cuRAND and the CUDA
    # runtime by the loader's search path; the wheels keep each in its lib/.
    for lib in "$GPU_VENV"/lib/python3*/site-packages/nvidia/*/lib; do
        LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    export LD_LIBRARY_PATH
fi
[[ -f "$(dirname "$ORT_GPU")/libonnxruntime_providers_cuda.so" ]] ||
    { echo "gpu.sh: no libonnxruntime_providers_cuda.so beside $ORT_GPU" >&2; exit 2; }
export ORT_DYLIB_PATH="$ORT_GPU"
echo "[gpu] ORT_DYLIB_PATH=$ORT_DYLIB_PATH"

echo "[gpu] building facepass-bench-vision with the cuda feature (release)"
cargo build --release -p facepass-benchmarks --bin facepass-bench-vision --features facepass-inference/cuda
BENCH="${CARGO_TARGET_DIR:-target}/release/facepass-bench-vision"
measure() {
    local name="$1"
    shift
    echo "[gpu] $name: $*"
    "$BENCH" .facepass/models/proxy "$PHOTOS" --repeat "$REPEAT" --out "$OUT/$name.json" "$@"
}
PIPELINE='in-process (defaults)|in flight x 1 thread, defaults)'
echo "[gpu] 1/4 the defaults ($COUNT photos a class, $REPEAT repeats, $THREADS in flight)"
measure facepass-cuda --provider cuda --threads "$THREADS" --only "$PIPELINE|embedding"
echo "[gpu] 2/4 8 photos in flight"
measure facepass-cuda-8 --provider cuda --threads 8 --only 'in flight x 1 thread, defaults)'
echo "[gpu] 3/4 the convolution search (ort.cuda_conv_search), both services alike"
for search in heuristic exhaustive; do
    measure "facepass-cuda-$search" --provider cuda --threads "$THREADS" \
        --cuda-conv-search "$search" --cuda-nhwc false --only "$PIPELINE|embedding"
done
measure facepass-cuda-heuristic-nhwc --provider cuda --threads "$THREADS" \
    --cuda-conv-search heuristic --cuda-nhwc true --only embedding
echo "[gpu] 4/4 the same binary on all $(nproc) CPU cores"
measure facepass-cpu-all --provider cpu --threads "$(nproc)" --only 'in flight x 1 thread, defaults)'
if [[ -f "$OUT/python.json" ]]; then
    # Beside insightface on the CPU, when run.sh measured the same photos.
    CONCURRENT=()
    [[ -f "$OUT/python_concurrent.json" ]] && CONCURRENT=("$OUT/python_concurrent.json")
    python3 tools/bench/report.py "$OUT/python.json" "$OUT/facepass-cuda.json" "${CONCURRENT[@]}" |
        tee "$OUT/report-cuda.md"
fi
