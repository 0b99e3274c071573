#!/usr/bin/env bash
# scripts/lib/services.sh: start, stop and inspect the five FacePass services
# locally (no Docker). Each binary runs in the background with its log in
# .facepass/logs/<service>.log and its pid in .facepass/run/<service>.pid.
#
#   bash scripts/lib/services.sh start [debug|release] [STACK]  # (re)start all five
#   bash scripts/lib/services.sh stop [STACK]                    # SIGTERM, wait, then SIGKILL
#   bash scripts/lib/services.sh status [STACK]
#
# STACK is `main` (the default) or `real`. One running system serves one model
# pack, so the demo runs two:
#   main  the fixture pack (synthetic faces): gateway gRPC 50051, REST/UI 8080,
#         detector 50052, embedder 50053, search 50054, indexer (health only)
#         50055; database facepass, queues facepass.*, objects .facepass/objects
#   real  the real model pack (.facepass/models/real, tools/models/real_pack.py):
#         gateway gRPC 51051, REST/UI 8081, detector 51052, embedder 51053,
#         search 51054, indexer 51055; database facepass_real, queues real.*,
#         objects .facepass/objects-real; logs and pids under .../real/
# stop and status without STACK act on both.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
SERVICES=(search detector embedder gateway indexer)
STACK=main
RUN="$ROOT/.facepass/run"
LOGS="$ROOT/.facepass/logs"

log() { printf '[services] %s\n' "$*" >&2; }

use_stack() {
    case "$1" in
        main) STACK=main RUN="$ROOT/.facepass/run" LOGS="$ROOT/.facepass/logs" ;;
        real) STACK=real RUN="$ROOT/.facepass/run/real" LOGS="$ROOT/.facepass/logs/real" ;;
        *) log "unknown stack '$1' (known: main real)"; exit 2 ;;
    esac
}

port_of() {
    local base=50050
    [[ "$STACK" == real ]] && base=51050
    case "$1" in
        gateway) echo $((base + 1)) ;;
        detector) echo $((base + 2)) ;;
        embedder) echo $((base + 3)) ;;
        search) echo $((base + 4)) ;;
        indexer) echo $((base + 5)) ;;
        http) [[ "$STACK" == real ]] && echo 8081 || echo 8080 ;;
    esac
}

alive() {
    local pidfile="$RUN/$1.pid"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

stop_all() {
    local svc pid waited
    for svc in "${SERVICES[@]}"; do
        if alive "$svc"; then
            pid="$(cat "$RUN/$svc.pid")"
            kill -TERM "$pid" 2>/dev/null || true
            waited=0
            while kill -0 "$pid" 2>/dev/null && ((waited < 150)); do
                sleep 0.1
                waited=$((waited + 1))
            done
            if kill -0 "$pid" 2>/dev/null; then
                log "$svc did not stop in 15 s; killing"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            log "stopped $svc"
        fi
        rm -f "$RUN/$svc.pid"
    done
}

start_all() {
    local profile="${1:-debug}" bin svc caller
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/$profile"
    mkdir -p "$RUN" "$LOGS" "$ROOT/.facepass/objects"
    for svc in "${SERVICES[@]}"; do
        [[ -x "$bin/facepass-$svc" ]] || { log "missing $bin/facepass-$svc: build first (cargo build --bins)"; return 1; }
    done
    # shellcheck source=scripts/lib/deps.sh
    source "$ROOT/scripts/lib/deps.sh"
    facepass_env
    # Each internal caller (gateway, indexer) its own token, one per
    # checkout, kept across restarts; detector, embedder and search know
    # which is whose (docs/security.md §4).
    # The key that seals guest links' tokens at rest, kept the same way.
    for secret in internal-token-gateway internal-token-indexer share-link-key; do
        if [[ ! -s "$ROOT/.facepass/$secret" ]]; then
            (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ROOT/.facepass/$secret")
        fi
    done
    stop_all
    unset FACEPASS_INTERNAL_TOKEN
    FACEPASS_INTERNAL_CALLERS__GATEWAY="$(cat "$ROOT/.facepass/internal-token-gateway")"
    FACEPASS_INTERNAL_CALLERS__INDEXER="$(cat "$ROOT/.facepass/internal-token-indexer")"
    export FACEPASS_INTERNAL_CALLERS__GATEWAY FACEPASS_INTERNAL_CALLERS__INDEXER
    export FACEPASS_AMQP__URL="${FACEPASS_AMQP__URL:-$FACEPASS_AMQP_URL}"
    export FACEPASS_STORAGE_ROOT="$ROOT/.facepass/objects"
    export FACEPASS_LOG__FORMAT="${FACEPASS_LOG__FORMAT:-json}"
    local pack="${FACEPASS_MODEL_PACK-$ROOT/.facepass/models/fixture}"
    if [[ "$STACK" == real ]]; then
        pack="$ROOT/.facepass/models/real"
        [[ -f "$pack/manifest.toml" ]] ||
            { log "no real model pack in $pack: run bash scripts/lib/deps.sh real-models"; return 1; }
        # Its own database, queues and objects: nothing is shared with the main stack.
        local base="${FACEPASS_DATABASE_URL%/*}"
        if ! psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = 'facepass_real'" | grep -q 1; then
            psql "$base/postgres" -qc "CREATE DATABASE facepass_real" >/dev/null
            log "created database facepass_real"
        fi
        export FACEPASS_DATABASE_URL="$base/facepass_real"
        export FACEPASS_AMQP__NAMESPACE=real
        export FACEPASS_STORAGE_ROOT="$ROOT/.facepass/objects-real"
        export FACEPASS_HTTP_LISTEN="127.0.0.1:$(port_of http)"
        export FACEPASS_DETECTOR__URL="http://127.0.0.1:$(port_of detector)"
        export FACEPASS_EMBEDDER__URL="http://127.0.0.1:$(port_of embedder)"
        export FACEPASS_SEARCH__URL="http://127.0.0.1:$(port_of search)"
        mkdir -p "$FACEPASS_STORAGE_ROOT"
    fi
    for svc in "${SERVICES[@]}"; do
        (
            cd "$ROOT"
            export FACEPASS_GRPC__LISTEN="127.0.0.1:$(port_of "$svc")"
            case "$svc" in
                detector)
                    export FACEPASS_MODEL__PATH="${FACEPASS_DETECTOR_MODEL:-$ROOT/.facepass/models/fixture/det.onnx}"
                    export FACEPASS_MODEL__SHA256="${FACEPASS_DETECTOR_MODEL_SHA256:-}"
                    export FACEPASS_MODEL__NAME="${FACEPASS_MODEL_NAME:-fixture}"
                    export FACEPASS_MODEL__PACK="$pack"
                    ;;
                embedder)
                    export FACEPASS_MODEL__PATH="${FACEPASS_RECOGNISER_MODEL:-$ROOT/.facepass/models/fixture/rec.onnx}"
                    export FACEPASS_MODEL__SHA256="${FACEPASS_RECOGNISER_MODEL_SHA256:-}"
                    export FACEPASS_MODEL__NAME="${FACEPASS_MODEL_NAME:-fixture}"
                    export FACEPASS_MODEL__PACK="$pack"
                    ;;
                search)
                    export FACEPASS_MODEL__PACK="$pack"
                    ;;
                gateway | indexer)
                    export FACEPASS_INTERNAL_TOKEN="$(cat "$ROOT/.facepass/internal-token-$svc")"
                    if [[ "$svc" == gateway ]]; then
                        export FACEPASS_SHARE_LINK_KEY="$(cat "$ROOT/.facepass/share-link-key")"
                    fi
                    ;;
            esac
            nohup "$bin/facepass-$svc" >>"$LOGS/$svc.log" 2>&1 </dev/null &
            echo $! >"$RUN/$svc.pid"
        )
        log "started $svc [$STACK] (pid $(cat "$RUN/$svc.pid"), log ${LOGS#"$ROOT/"}/$svc.log)"
    done
    local urls=()
    for svc in "${SERVICES[@]}"; do urls+=("http://127.0.0.1:$(port_of "$svc")"); done
    if ! "$bin/facepass" wait-healthy --timeout-secs 120 "${urls[@]}"; then
        log "a service did not become healthy; last log lines:"
        for svc in "${SERVICES[@]}"; do
            printf -- '--- %s ---\n' "$svc" >&2
            tail -n 5 "$LOGS/$svc.log" >&2 || true
        done
        return 1
    fi
}

status_all() {
    local svc
    for svc in "${SERVICES[@]}"; do
        if alive "$svc"; then
            echo "$STACK $svc: running (pid $(cat "$RUN/$svc.pid"), port $(port_of "$svc"))"
        else
            echo "$STACK $svc: stopped"
        fi
    done
}

case "${1:-}" in
    start)
        use_stack "${3:-main}"
        start_all "${2:-debug}"
        ;;
    stop | status)
        for stack in ${2:-main real}; do
            use_stack "$stack"
            if [[ "$1" == stop ]]; then stop_all; else status_all; fi
        done
        ;;
    *) echo "usage: $0 start [debug|release] [main|real] | stop [main|real] | status [main|real]" >&2; exit 2 ;;
esac
