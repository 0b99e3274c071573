#!/usr/bin/env bash
# The one command that runs every FacePass test: installs and starts what the
# tests need (same as setup, without starting the services), runs the static
# checks (cargo fmt --check, cargo deny, buf lint + buf breaking, clippy -D
# warnings), checks the generated fixture models with ONNX Runtime, holds the
# vision pipeline against insightface 0.7.3 (tools/parity), fuzzes the image
# decoder and the REST request parsing for a few minutes (scripts/fuzz.sh),
# then runs the whole Rust test suite with cargo-nextest: unit tests,
# integration tests against PostgreSQL + pgvector and RabbitMQ, and the
# end-to-end tests that start the five real binaries. The checks and the test
# run are scripts/check.sh's (the same as `make check`), so they are defined once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
say() { printf '\n==> %s\n' "$*" >&2; }

say "dependencies"
bash scripts/lib/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

# fmt, deny, proto (buf lint + breaking), clippy: before the long build, so a
# formatting or contract slip fails in seconds.
bash scripts/check.sh lint

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

say "parity with insightface 0.7.3 on the real model pack and real photos"
python -m unittest tools/models/test_real_pack.py 2>&1 | tail -3
say "the Python client's unit tests (clients/python)"
python -m unittest clients/python/test_client.py 2>&1 | tail -3
python tools/fixtures/make_models.py .facepass/models/fixture128 --dimension 128 >/dev/null
bash tools/parity/run.sh --real

say "the real pack's INT8 variant, the opt-in fast tier (tools/models/quantize.py)"
# Made again (about 20 s) only when the tool or the pack changed;
# real_faces.rs checks it against full precision.
.venv-parity/bin/python -m unittest tools/models/test_quantize.py 2>&1 | tail -3
int8_stamp="$(cat tools/models/quantize.py .facepass/models/real/manifest.toml | sha256sum | cut -c1-64)"
if [[ "$(cat .facepass/models/real-int8/.made-from 2>/dev/null)" != "$int8_stamp" ]]; then
    .venv-parity/bin/python tools/models/quantize.py .facepass/models/real .facepass/models/real-int8 \
        --photos .facepass/photos/real 2>&1 | grep -v '^WARNING'
    printf '%s\n' "$int8_stamp" >.facepass/models/real-int8/.made-from
fi

# Coverage-guided fuzzing of the image decoder and the REST request parsing, a
# short run (a finding fails it); `bash scripts/fuzz.sh 3600` is the long one.
# Before the test suite: the fuzz targets are their own workspace and build
# (they construct the gateway's state), so a change that breaks them fails here
# in minutes rather than after the whole suite.
say "coverage-guided fuzzing, 45 s per target (scripts/fuzz.sh)"
bash scripts/fuzz.sh 45

# cargo nextest run --workspace (2 test threads, .config/nextest.toml), and the
# doctests if any crate has some.
bash scripts/check.sh test

