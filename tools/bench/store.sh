#!/usr/bin/env bash
# The face-store benchmark (docs/benchmarks.md, "Face store"):
#   bash tools/bench/store.sh [FACES] [-- extra facepass-bench-store flags]
# Installs/starts what it needs (scripts/lib/deps.sh), builds
# facepass-bench-store (release), loads FACES synthetic faces (default
# 1,000,000, ~200 events) into a scratch database `facepass_bench_store`
# through the search service's bulk upsert, builds the per-event HNSW
# indexes and a naive global one, and prints latency, throughput, recall,
# insert rate and index figures. The report is also written to
# .facepass/bench/store.md. Pass --reuse to keep an earlier load.
# Takes ~20-30 minutes at 1M faces on 2 cores; needs ~8 GB of disk.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
FACES="${1:-1000000}"
shift || true
[[ "${1:-}" == "--" ]] && shift
bash scripts/lib/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
mkdir -p .facepass/bench
cargo build --release -p facepass-benchmarks --bin facepass-bench-store
"${CARGO_TARGET_DIR:-target}/release/facepass-bench-store" --faces "$FACES" --out .facepass/bench/store.md "$@"
