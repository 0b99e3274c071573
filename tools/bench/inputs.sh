# What the vision and mesh benchmarks both need, sourced by run.sh and
# mesh.sh (with ROOT and COUNT set, in ROOT, after scripts/env.sh): the
# parity venv (insightface, OpenCV), the proxy models with buffalo_l's
# architectures and their INT8 variant, and COUNT 24 MP photos a class.
# Sets PY, OUT and PHOTOS.
bash tools/parity/run.sh --venv-only
PY="$ROOT/.venv-parity/bin/python"
OUT="$ROOT/.facepass/bench"
mkdir -p "$OUT"
if [[ ! -f .facepass/models/proxy/manifest.toml ]]; then
    python tools/bench/make_proxy_models.py .facepass/models/proxy --no-timing
fi
PHOTOS="$OUT/photos-c$COUNT"
[[ -f "$PHOTOS/manifest.json" ]] || "$PY" tools/bench/make_photos.py "$PHOTOS" --count "$COUNT"
# The INT8 tier's pack: the proxies' heavy branch (buffalo_l's architectures)
# quantised, calibrated on the benchmark photos; the fixture part that finds
# the synthetic faces stays exact (tools/models/quantize.py --only-prefix).
if [[ ! -f .facepass/models/proxy-int8/manifest.toml ]]; then
    "$PY" tools/models/quantize.py .facepass/models/proxy .facepass/models/proxy-int8 \
        --photos "$PHOTOS" --only-prefix proxy_ --max-faces 64 2>&1 | grep -v '^WARNING'
fi
