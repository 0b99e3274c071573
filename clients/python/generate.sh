#!/usr/bin/env bash
# Generates the Python stubs of FacePass's public contracts (facepass.v1 and
# facepass.types.v1) into facepass_client/_gen/ with grpcio-tools from the
# project's venv. Run by scripts/lib/deps.sh (step python-client) and safe to
# run again: the stubs are rewritten only when a .proto is newer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${FACEPASS_PYTHON:-$root/.venv/bin/python}"
out="$here/facepass_client/_gen"
protos=(facepass/types/v1/types.proto facepass/v1/facepass.proto facepass/admin/v1/admin.proto)
stamp="$out/.stamp"
if [[ -f "$stamp" ]]; then
    newer=0
    for p in "${protos[@]}"; do [[ "$root/proto/$p" -nt "$stamp" ]] && newer=1; done
    [[ $newer == 0 ]] && { echo "[python-client] stubs up to date ($out)"; exit 0; }
fi
rm -rf "$out" && mkdir -p "$out"
"$python" -m grpc_tools.protoc -I "$root/proto" --python_out="$out" --grpc_python_out="$out" \
    "${protos[@]/#/$root/proto/}"
# Packages for the generated modules (they import each other as facepass.types.v1 ...).
find "$out" -type d -exec touch {}/__init__.py \;
touch "$stamp"
echo "[python-client] stubs generated in $out"
