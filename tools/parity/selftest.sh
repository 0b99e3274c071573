#!/usr/bin/env bash
# Self-test of the Python half of the parity harness (no Rust involved):
#   1. images + ground truth, 2. the insightface reference twice (must be
#   byte-identical and compare clean), 3. the reference against the ground
#   truth, 4. compare.py against perturbed copies (each must fail; "within"
#   must pass).
# Usage: PYTHON=/tmp/venv-parity/bin/python tools/parity/selftest.sh [MODEL_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
MODELS=${1:-.facepass/models/fixture}
WORK=${2:-$(mktemp -d /tmp/facepass-parity.XXXXXX)}
mkdir -p "$WORK"
T=tools/parity

"$PY" $T/make_images.py "$WORK/images" | tail -1
"$PY" $T/reference.py "$MODELS" "$WORK/images" "$WORK/ref_a.json" --check-scrfd | tail -1
"$PY" $T/reference.py "$MODELS" "$WORK/images" "$WORK/ref_b.json" | tail -1
cmp "$WORK/ref_a.json" "$WORK/ref_b.json" && echo "reference runs byte-identical"
"$PY" $T/compare.py "$WORK/ref_a.json" "$WORK/ref_b.json" --quiet --summary "$WORK/summary_ab.json" | tail -6
"$PY" $T/check_truth.py "$WORK/images/truth.json" "$WORK/ref_a.json"

fail=0
for mode in box landmark crop embedding drop extra all within; do
    "$PY" $T/perturb.py "$WORK/ref_a.json" "$WORK/perturbed_$mode.json" "$mode"
    set +e
    "$PY" $T/compare.py "$WORK/ref_a.json" "$WORK/perturbed_$mode.json" --quiet \
        --summary "$WORK/summary_$mode.json" > "$WORK/compare_$mode.txt"
    rc=$?
    set -e
    want=1; [ "$mode" = within ] && want=0
    verdict=ok; [ "$rc" -eq "$want" ] || { verdict=WRONG; fail=1; }
    printf '  perturbed %-9s compare exit %d (want %d) %s: %s\n' "$mode" "$rc" "$want" "$verdict" \
        "$(grep -m1 -E '^  FAIL|^PASS' "$WORK/compare_$mode.txt" | sed 's/^ *//')"
done
[ "$fail" -eq 0 ] && echo "selftest PASS ($WORK)" || { echo "selftest FAIL ($WORK)"; exit 1; }
