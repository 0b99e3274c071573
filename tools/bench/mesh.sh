#!/usr/bin/env bash
# The whole mesh and a guest's wait (docs/benchmarks.md, "The whole mesh",
# "How soon a photo is searchable", "A guest's wait"):
#   bash tools/bench/mesh.sh [COUNT_PER_CLASS] [indexing|guests|both] [-- extra flags]
# Builds the five services and facepass-bench-mesh in release mode, makes
# the proxy models (buffalo_l's architectures), the 24 MP benchmark photos
# and the 12 MP selfies if missing, then starts the services with their
# defaults on a fresh database and namespace and measures them through the
# public REST API. Results: .facepass/bench/{mesh,guests}.json; the printed
# lines are what docs/benchmarks.md quotes. About 15 minutes on 2 cores
# with the defaults (COUNT 4, a backlog of 500, 50,000 stored faces).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
COUNT="${1:-4}"
shift $(( $# < 1 ? $# : 1 ))
WHAT=both
if [[ -n "${1:-}" && "${1:-}" != "--" ]]; then WHAT="$1"; shift; fi
[[ "${1:-}" == "--" ]] && shift
case "$WHAT" in indexing|guests|both) ;; *) echo "mesh.sh: $WHAT is not indexing, guests or both" >&2; exit 2 ;; esac
bash scripts/lib/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
# shellcheck source=tools/bench/inputs.sh
source tools/bench/inputs.sh
SELFIES="$OUT/selfies"
if [[ ! -f "$SELFIES/selfie-page.jpg" ]]; then
    "$PY" -c 'import pillow_heif' 2>/dev/null || "$PY" -m pip install -q pillow-heif==1.1.1
    "$PY" tools/bench/make_selfies.py "$SELFIES"
fi
echo "[mesh] building the services and the benchmark (release)"
cargo build --release --bins -p facepass-gateway -p facepass-detector -p facepass-embedder \
    -p facepass-search -p facepass-indexer -p facepass-cli -p facepass-benchmarks
BENCH="${CARGO_TARGET_DIR:-target}/release/facepass-bench-mesh"
if [[ "$WHAT" == indexing || "$WHAT" == both ]]; then
    echo "[mesh] indexing: throughput, memory, upload to indexed (idle, behind a bulk import)"
    # Beside the in-process and the original's figures when tools/bench/run.sh
    # measured the same photos.
    "$BENCH" indexing .facepass/models/proxy "$PHOTOS" --out "$OUT/mesh.json" \
        --compare "$OUT/facepass.json" --compare "$OUT/python_concurrent.json" "$@"
fi
if [[ "$WHAT" == guests || "$WHAT" == both ]]; then
    echo "[mesh] guests: 12 MP selfies, 1/8/32 at once, indexing beside them"
    "$BENCH" guests .facepass/models/proxy "$SELFIES" --out "$OUT/guests.json" "$@"
fi
