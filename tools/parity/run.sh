#!/usr/bin/env bash
# Parity of FacePass's vision pipeline with insightface 0.7.3 on the same
# model files and images (see tools/parity/README.md):
#   bash tools/parity/run.sh MODEL_DIR [WORK_DIR]
#   bash tools/parity/run.sh --venv-only      (just create .venv-parity)
#   bash tools/parity/run.sh --real [WORK_DIR] (the real model pack on real photos:
#       .facepass/models/real and the images tools/parity/real_images.py makes from
#       .facepass/photos/real; both from tools/models/real_pack.py)
# Creates .venv-parity (insightface, OpenCV 4) when missing or when
# tools/parity/requirements.txt changed, writes the synthetic test images,
# runs the insightface reference and target/debug/facepass-parity, and
# compares them (boxes and landmarks within 1 px, crops within 1 grey level
# mean absolute difference, embeddings cosine >= 0.999). Exit 1 on failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VENV="$ROOT/.venv-parity"
REQ="$ROOT/tools/parity/requirements.txt"
cd "$ROOT"

stamp="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "[parity] creating .venv-parity (insightface 0.7.3)" >&2
    # insightface 0.7.3 is an sdist with a Cython extension: it needs Python's headers.
    if ! python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        echo "[parity] installing python3-dev (Python headers for insightface's build)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-dev >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-dev >&2; }
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check Cython numpy
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
    echo "$stamp" >"$VENV/.stamp"
fi
PY="$VENV/bin/python"
[[ "${1:-}" == "--venv-only" ]] && exit 0
if [[ "${1:-}" == "--real" ]]; then
    for need in .facepass/models/real/manifest.toml .facepass/photos/real/SOURCES.txt; do
        [[ -f "$need" ]] || { echo "[parity] $need is missing: run python3 tools/models/real_pack.py" >&2; exit 2; }
    done
    MODELS="$ROOT/.facepass/models/real"
    WORK="${2:-$ROOT/.facepass/parity/real}"
    mkdir -p "$WORK"
    # Rebuilt each run (a second): the photos may have been re-fetched.
    "$PY" tools/parity/real_images.py .facepass/photos/real "$WORK/images" | tail -1
else
    MODELS="$(cd "$1" && pwd -P)"
    WORK="${2:-$ROOT/.facepass/parity/$(basename "$MODELS")}"
    mkdir -p "$WORK"
    if [[ ! -f "$WORK/images/truth.json" ]]; then
        "$PY" tools/parity/make_images.py "$WORK/images" | tail -1
    fi
fi
"$PY" tools/parity/reference.py "$MODELS" "$WORK/images" "$WORK/reference.json" | tail -1
"${CARGO_TARGET_DIR:-$ROOT/target}/debug/facepass-parity" "$MODELS" "$WORK/images" "$WORK/facepass.json"
"$PY" tools/parity/compare.py "$WORK/reference.json" "$WORK/facepass.json" --quiet --summary "$WORK/summary.json" | tail -6
