#!/usr/bin/env bash
# The long fault suite (issue 15, point 3): thousands of photos uploaded while every
# service is killed with SIGKILL and restarted, RabbitMQ's application stopped and
# started and PostgreSQL restarted, round after round; then the same checks as the
# bounded run in the tests (integration-tests/tests/fault_suite.rs). It restarts this
# machine's PostgreSQL and RabbitMQ: run it on a test machine, with nothing else on them.
#
#   bash scripts/faults.sh                 # 2000 photos, 3 rounds of faults
#   bash scripts/faults.sh 5000 5          # photos, rounds
#
# The report goes to target/faults/report.md (and the terminal).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
photos="${1:-2000}"
rounds="${2:-3}"
bash scripts/lib/deps.sh >&2
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo build --workspace --bins --tests >&2
mkdir -p target/faults
FACEPASS_FAULTS_PHOTOS="$photos" FACEPASS_FAULTS_ROUNDS="$rounds" \
    FACEPASS_FAULTS_REPORT="$PWD/target/faults/report.md" \
    cargo nextest run -p facepass-integration-tests --test fault_suite \
    --profile faults --no-capture 2>&1 | tee target/faults/run.log
echo "report: target/faults/report.md"
