#!/usr/bin/env bash
# Measures the guest page as a guest's phone meets it: Lighthouse scores (mobile,
# simulated slow 4G) and the time from choosing a 12 MP camera selfie to seeing the
# photos on Chrome's "Slow 4G" profile, as the page sends it and sent whole
# (tools/web/measure.mjs). Runs against the real-faces stack that scripts/setup.sh
# starts (port 8081), with the Obama selfie of the demo. Figures only.
#
#   bash scripts/setup.sh          # once: the stacks and the demo events
#   bash scripts/measure-web.sh    # figures to the terminal and target/web-measure/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/lib/deps.sh web browser lighthouse
base="${1:-http://127.0.0.1:8081}"
[[ -f .facepass/demo/real-api-key ]] || { echo "run bash scripts/setup.sh first" >&2; exit 1; }
key="$(cat .facepass/demo/real-api-key)"
token="$(curl -fsS -H "authorization: Bearer $key" "$base/api/v1/events" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["events"][0]["share_token"])')" ||
    { echo "no gateway at $base: run bash scripts/setup.sh" >&2; exit 1; }
mkdir -p target/web-measure
node tools/web/measure.mjs "$base/e/$token" .facepass/demo/selfie-obama.jpg target/web-measure |
    tee target/web-measure/figures.txt
echo "Lighthouse's report: target/web-measure/lighthouse-guest.html"
