#!/usr/bin/env bash
# The vision benchmark, side by side in one run (docs/benchmarks.md):
#   bash tools/bench/run.sh [COUNT_PER_CLASS] [REPEAT] [THREADS]
# Generates the proxy models (buffalo_l's architectures, random weights) and
# 24 MP synthetic photos if missing, builds facepass-bench-vision (release),
# then measures insightface 0.7.3 (and its raw ONNX Runtime floor) and
# FacePass on the same photos with the same thread count, and prints the
# report. With 2+ threads it also measures both sides with that many photos
# in flight, one ORT thread each (python_concurrent.py; FacePass's
# "in flight" row). Results: .facepass/bench/{python,facepass,python_concurrent}.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
COUNT="${1:-4}" REPEAT="${2:-3}" THREADS="${3:-2}"
# shellcheck source=scripts/env.sh
source scripts/env.sh
# shellcheck source=tools/bench/inputs.sh
source tools/bench/inputs.sh
# FacePass on a GPU (the CUDA provider, with ONNX Runtime's GPU build) is
# tools/bench/gpu.sh, after this script on the same photos.
cargo build --release -p facepass-benchmarks --bin facepass-bench-vision
"$PY" tools/bench/python_baseline.py .facepass/models/proxy "$PHOTOS" --threads "$THREADS" --repeat "$REPEAT" --wait-idle 300 --retries 3 --out "$OUT/python.json"
"${CARGO_TARGET_DIR:-target}/release/facepass-bench-vision" .facepass/models/proxy "$PHOTOS" --threads "$THREADS" --repeat "$REPEAT" \
    --fast-models .facepass/models/proxy-int8 --out "$OUT/facepass.json"
CONCURRENT=()
if ((THREADS >= 2)); then
    # The original's Celery-like shape: THREADS processes of one ORT thread each.
    "$PY" tools/bench/python_concurrent.py .facepass/models/proxy "$PHOTOS" --procs "$THREADS" --threads "$THREADS" --repeat "$REPEAT" --out "$OUT/python_concurrent.json"
    CONCURRENT=("$OUT/python_concurrent.json")
fi
python3 tools/bench/report.py "$OUT/python.json" "$OUT/facepass.json" "${CONCURRENT[@]}" | tee "$OUT/report.md"
