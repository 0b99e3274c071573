#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, through the libfuzzer-sys crate) of the
# entry points hostile input reaches first (issue 15, point 6):
#   image_decode   the detector's image decoder (every photo and selfie)
#   rest_request   the gateway's REST router: routing, path/query parsing,
#                  limits, CSRF and guest-link checks (no database behind it)
#   rest_bodies    the REST request bodies and query strings, as the handlers
#                  parse them, with the text checks
#
#   bash scripts/fuzz.sh            # 60 s per target (what scripts/test.sh runs)
#   bash scripts/fuzz.sh 3600       # an hour per target
#   bash scripts/fuzz.sh 600 rest_request
#
# Stable Rust, no cargo-fuzz needed: the fuzz/ crate is built with the
# sanitizer-coverage flags cargo-fuzz would pass (without AddressSanitizer,
# which needs nightly; Rust's own bounds and overflow checks are on). The corpus
# grows in target/fuzz/corpus/<target> across runs; a crash is written to
# target/fuzz/artifacts/<target>/ and fails the run. The figures (executions,
# coverage, corpus, findings) go to target/fuzz/report.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(image_decode rest_request rest_bodies)
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: bash scripts/fuzz.sh [seconds per target] [target...]" >&2; exit 2; }

# shellcheck source=scripts/env.sh
source scripts/env.sh
out="$ROOT/target/fuzz"
mkdir -p "$out"
host="$(rustc -vV | sed -n 's/^host: //p')"
# What cargo-fuzz passes (sancov with 8-bit counters, PC tables and compare
# tracing), with an explicit --target so build scripts and proc macros are
# built without it.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
echo "==> building the fuzz targets (fuzz/, target/fuzz)" >&2
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$host" \
    --target-dir "$out/build" --bins >&2
bin="$out/build/$host/release"

report="$out/report.md"
{
    echo "# Fuzzing report ($(date -u +%Y-%m-%dT%H:%MZ), ${seconds} s per target)"
    echo
    echo "| target | executions | exec/s | coverage (edges) | features | corpus | findings |"
    echo "|---|---:|---:|---:|---:|---:|---|"
} >"$report"
failed=0
for target in "${targets[@]}"; do
    corpus="$out/corpus/$target"
    artifacts="$out/artifacts/$target/"
    mkdir -p "$corpus" "$artifacts"
    seeds=()
    [[ -d "fuzz/seeds/$target" ]] && seeds+=("fuzz/seeds/$target")
    # The decoder starts from the detector's test images (JPEG with CMYK, PNG,
    # HEIC 8 and 10 bit, rotated, AVIF).
    [[ "$target" == image_decode ]] && seeds+=("services/detector/testdata")
    echo "==> $target: ${seconds} s (corpus $corpus)" >&2
    log="$out/$target.log"
    status=0
    "$bin/$target" "$corpus" "${seeds[@]}" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts" >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$({ grep -oE 'cov: [0-9]+' "$log" || true; } | tail -1 | cut -d' ' -f2)"
    ft="$({ grep -oE 'ft: [0-9]+' "$log" || true; } | tail -1 | cut -d' ' -f2)"
    size="$(find "$corpus" -type f | wc -l)"
    crashes="$(find "$artifacts" -type f | wc -l)"
    if ((status != 0)); then
        failed=1
        finding="**FAILED** (exit $status, $crashes artifact(s) in ${artifacts#"$ROOT/"}; log ${log#"$ROOT/"})"
        tail -n 40 "$log" >&2
    else
        finding="none"
    fi
    echo "| $target | ${runs:-?} | ${speed:-?} | ${cov:-?} | ${ft:-?} | $size | $finding |" >>"$report"
    echo "    $target: ${runs:-?} executions (${speed:-?}/s), coverage ${cov:-?}, corpus $size, findings: $finding" >&2
done
cat "$report"
exit "$failed"
