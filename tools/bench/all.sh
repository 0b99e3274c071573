#!/usr/bin/env bash
# Every benchmark docs/benchmarks.md leads with, in one run (about an hour on
# 2 cores; each step prints its progress):
#   bash tools/bench/all.sh [COUNT_PER_CLASS]
# 1. tools/bench/run.sh: the vision pipeline, FacePass's defaults against
#    insightface in both of its shapes (report.md);
# 2. tools/bench/mesh.sh: the five release services through the public API:
#    throughput beside step 1's figures, resident memory, upload to indexed
#    (idle and behind a bulk import of 500), and a guest's wait (1, 8, 32
#    guests, the guest page's 1280 px selfie, 12 MP JPEG and HEIC selfies,
#    50,000 stored faces);
# 3. tools/bench/gpu.sh, where nvidia-smi finds a GPU: FacePass on the CUDA
#    provider (report-cuda.md).
# The face store has its own, longer benchmark: tools/bench/store.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
COUNT="${1:-4}"
step() { echo; echo "==== [$(date +%H:%M:%S)] $*"; }
step "1/3 vision: FacePass's defaults against insightface (about 20 minutes)"
bash tools/bench/run.sh "$COUNT" 3 2
step "2/3 the mesh and a guest's wait (about 20 minutes)"
bash tools/bench/mesh.sh "$COUNT" both
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    step "3/3 vision on the GPU (CUDA provider)"
    bash tools/bench/gpu.sh "$COUNT" 3 4
else
    step "no NVIDIA GPU here: tools/bench/gpu.sh skipped"
fi
step "done: .facepass/bench/{report.md,mesh.json,guests.json}"
