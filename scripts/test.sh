#!/usr/bin/env bash
# The one command that runs every FacePass test: installs and starts what the
# tests need (same as setup, without starting the services), lints the
# contracts with buf, checks the generated fixture models with ONNX Runtime,
# holds the vision pipeline against insightface 0.7.3 (tools/parity),
# then runs the whole Rust test suite: unit tests, integration tests against
# PostgreSQL + pgvector and RabbitMQ, and the end-to-end test that starts the
# five real binaries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
say() { printf '\n==> %s\n' "$*" >&2; }

say "dependencies"
bash scripts/lib/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

say "buf lint (proto/)"
(cd proto && buf lint)

say "fixture models"
python tools/fixtures/make_models.py .facepass/models/fixture
python tools/fixtures/check_models.py .facepass/models/fixture

say "building"
cargo build --workspace --bins --tests
# The CUDA provider's code is behind a feature no default build compiles;
# keep it compiling (no GPU or CUDA library is needed to check it).
cargo check -p facepass-inference --features cuda

say "parity with insightface 0.7.3 (fixture and benchmark proxy models)"
if [[ ! -f .facepass/models/proxy/manifest.toml ]]; then
    python tools/bench/make_proxy_models.py .facepass/models/proxy --no-timing
fi
bash tools/parity/run.sh .facepass/models/fixture
bash tools/parity/run.sh .facepass/models/proxy

say "cargo test"
cargo test --workspace --no-fail-fast -- --test-threads 2
