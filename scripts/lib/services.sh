#!/usr/bin/env bash
# scripts/lib/services.sh: start, stop and inspect the five FacePass services
# locally (no Docker). Each binary runs in the background with its log in
# .facepass/logs/<service>.log and its pid in .facepass/run/<service>.pid.
#
#   bash scripts/lib/services.sh start [debug|release]   # (re)start all five
#   bash scripts/lib/services.sh stop                    # SIGTERM, wait, then SIGKILL
#   bash scripts/lib/services.sh status
#
# Ports: gateway gRPC 50051, REST/UI 8080, detector 50052, embedder 50053,
# search 50054, indexer (health only) 50055. Objects live in .facepass/objects.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
RUN="$ROOT/.facepass/run"
LOGS="$ROOT/.facepass/logs"
SERVICES=(search detector embedder gateway indexer)

log() { printf '[services] %s\n' "$*" >&2; }

port_of() {
    case "$1" in
        gateway) echo 50051 ;;
        detector) echo 50052 ;;
        embedder) echo 50053 ;;
        search) echo 50054 ;;
        indexer) echo 50055 ;;
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
    local profile="${1:-debug}" bin svc token
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/$profile"
    mkdir -p "$RUN" "$LOGS" "$ROOT/.facepass/objects"
    for svc in "${SERVICES[@]}"; do
        [[ -x "$bin/facepass-$svc" ]] || { log "missing $bin/facepass-$svc: build first (cargo build --bins)"; return 1; }
    done
    # shellcheck source=scripts/lib/deps.sh
    source "$ROOT/scripts/lib/deps.sh"
    facepass_env
    # One internal token per checkout, kept across restarts.
    if [[ ! -s "$ROOT/.facepass/internal-token" ]]; then
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ROOT/.facepass/internal-token"
    fi
    token="$(cat "$ROOT/.facepass/internal-token")"
    stop_all
    export FACEPASS_INTERNAL_TOKEN="$token"
    export FACEPASS_AMQP__URL="${FACEPASS_AMQP__URL:-$FACEPASS_AMQP_URL}"
    export FACEPASS_STORAGE_ROOT="$ROOT/.facepass/objects"
    export FACEPASS_LOG__FORMAT="${FACEPASS_LOG__FORMAT:-json}"
    for svc in "${SERVICES[@]}"; do
        (
            cd "$ROOT"
            export FACEPASS_GRPC__LISTEN="127.0.0.1:$(port_of "$svc")"
            case "$svc" in
                detector)
                    export FACEPASS_MODEL__PATH="${FACEPASS_DETECTOR_MODEL:-$ROOT/.facepass/models/fixture/det.onnx}"
                    export FACEPASS_MODEL__SHA256="${FACEPASS_DETECTOR_MODEL_SHA256:-}"
                    export FACEPASS_MODEL__NAME="${FACEPASS_MODEL_NAME:-fixture}"
                    export FACEPASS_MODEL__PACK="${FACEPASS_MODEL_PACK-$ROOT/.facepass/models/fixture}"
                    ;;
                embedder)
                    export FACEPASS_MODEL__PATH="${FACEPASS_RECOGNISER_MODEL:-$ROOT/.facepass/models/fixture/rec.onnx}"
                    export FACEPASS_MODEL__SHA256="${FACEPASS_RECOGNISER_MODEL_SHA256:-}"
                    export FACEPASS_MODEL__NAME="${FACEPASS_MODEL_NAME:-fixture}"
                    export FACEPASS_MODEL__PACK="${FACEPASS_MODEL_PACK-$ROOT/.facepass/models/fixture}"
                    ;;
                search)
                    export FACEPASS_MODEL__PACK="${FACEPASS_MODEL_PACK-$ROOT/.facepass/models/fixture}"
                    ;;
            esac
            nohup "$bin/facepass-$svc" >>"$LOGS/$svc.log" 2>&1 </dev/null &
            echo $! >"$RUN/$svc.pid"
        )
        log "started $svc (pid $(cat "$RUN/$svc.pid"), log .facepass/logs/$svc.log)"
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
            echo "$svc: running (pid $(cat "$RUN/$svc.pid"), port $(port_of "$svc"))"
        else
            echo "$svc: stopped"
        fi
    done
}

case "${1:-}" in
    start) start_all "${2:-debug}" ;;
    stop) stop_all ;;
    status) status_all ;;
    *) echo "usage: $0 start [debug|release] | stop | status" >&2; exit 2 ;;
esac
