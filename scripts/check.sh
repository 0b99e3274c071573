#!/usr/bin/env bash
# scripts/check.sh: FacePass's checks, defined once. The Makefile's targets and
# scripts/test.sh (so CI) call this script; nothing else spells these commands out.
#
#   bash scripts/check.sh [STEP...]        (no STEP: all)
#
#   fmt     cargo fmt --all --check
#   clippy  cargo clippy --workspace --all-targets -- -D warnings
#   deny    cargo deny --offline check licenses bans sources (deny.toml), and
#           advisories when a copy of the RustSec database is at hand
#   deps    the crate dependency map (ARCHITECTURE.md), no unused dependency, and
#           fuzz/Cargo.lock current with the crates the fuzz targets link
#   proto   buf lint, and buf breaking against the last accepted contracts
#           (proto/BREAKING_BASELINE; FACEPASS_BREAKING_AGAINST=<commit> overrides)
#   test    builds the service binaries (the end-to-end tests start them), then
#           cargo nextest run --workspace (.config/nextest.toml), then the doctests
#           when a crate has any (nextest does not run doctests)
#   lint    fmt deny deps proto clippy   (the quick ones first)
#   all     lint test
#
# The tools come from `bash scripts/lib/deps.sh` (cargo-tools, buf, venv steps); the
# tests also need what it starts (PostgreSQL, RabbitMQ) and the fixture models that
# scripts/test.sh generates: run `bash scripts/test.sh` once on a new machine.
set -euo pipefail
shopt -s inherit_errexit
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
say() { printf '\n==> %s\n' "$*" >&2; }
die() {
    printf 'check: %s\n' "$*" >&2
    exit 1
}

# shellcheck source=scripts/env.sh
source scripts/env.sh || say "warning: the environment is incomplete (see above); run: bash scripts/lib/deps.sh"

check_fmt() {
    say "cargo fmt --check"
    cargo fmt --all --check
}

check_clippy() {
    say "cargo clippy -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
}

check_deny() {
    say "cargo deny (licences, bans, sources; offline)"
    command -v cargo-deny >/dev/null 2>&1 || die "cargo-deny is missing: bash scripts/lib/deps.sh cargo-tools"
    # cargo-deny reads the crates' own manifests: on a new machine (before any build)
    # download them first from crates.io; a no-op once they are there.
    cargo fetch --quiet
    cargo deny --offline check --hide-inclusion-graph licenses bans sources
    # Advisories need the RustSec database, a git repository these machines
    # cannot fetch: checked when a copy is in cargo-deny's place
    # (~/.cargo/advisory-dbs/advisory-db-3157b0e258782691, a clone of
    # github.com/rustsec/advisory-db), else said and skipped.
    local db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
    if [[ -d "$db/.git" ]]; then
        say "cargo deny advisories (RustSec database of $(git -C "$db" log -1 --format=%cs))"
        cargo deny --offline check --hide-inclusion-graph advisories
    else
        say "cargo deny advisories: skipped, no RustSec database at $db (docs/security.md §8)"
    fi
}

# The commit whose proto/ `buf breaking` compares against (printed on stdout).
breaking_against() {
    local file="proto/BREAKING_BASELINE" baseline branch base
    if [[ -n "${FACEPASS_BREAKING_AGAINST:-}" ]]; then
        git rev-parse --verify --quiet "${FACEPASS_BREAKING_AGAINST}^{commit}" ||
            die "FACEPASS_BREAKING_AGAINST=${FACEPASS_BREAKING_AGAINST} is not a commit in this clone"
        return 0
    fi
    [[ -f "$file" ]] || die "$file is missing: it names the commit of the last accepted contracts"
    baseline="$(grep -v '^[[:space:]]*#' "$file" | tr -d '[:space:]')"
    [[ "$baseline" =~ ^[0-9a-f]{40}$ ]] ||
        die "$file must end with the full id (40 hex digits) of the commit of the last accepted contracts; it holds '${baseline}'. See the comment at its top."
    git cat-file -e "${baseline}^{commit}" 2>/dev/null ||
        die "$file names commit ${baseline}, which this clone does not have (rebased or squashed away, or a shallow clone: git fetch --unshallow). Set it to a commit of main's history; see the comment at its top."
    # On a branch: against the merge-base with main, unless the baseline is newer
    # (the branch itself moved it past a deliberate breaking change).
    branch="$(git rev-parse --abbrev-ref HEAD 2>/dev/null || true)"
    if [[ -n "$branch" && "$branch" != main && "$branch" != HEAD ]] &&
        base="$(git merge-base HEAD main 2>/dev/null)" &&
        git merge-base --is-ancestor "$baseline" "$base"; then
        printf '%s\n' "$base"
    else
        printf '%s\n' "$baseline"
    fi
}

check_proto() {
    local against git_dir
    say "buf lint (proto/)"
    buf lint proto
    against="$(breaking_against)"
    git_dir="$(cd "$(git rev-parse --git-common-dir)" && pwd -P)"
    say "buf breaking proto/ against ${against} ($(git log -1 --format='%h %s' "$against" | cut -c1-72))"
    buf breaking proto --against "${git_dir}#ref=${against},subdir=proto"
}

check_deps() {
    say "the crate map and unused dependencies (tools/check_deps.py)"
    python tools/check_deps.py
    python -m unittest tools/test_check_deps.py 2>&1 | tail -1
    # fuzz/ is its own workspace with its own lock file, built --locked by
    # scripts/fuzz.sh at the very end of scripts/test.sh: a dependency added to a
    # crate it links (the detector, the gateway) must be in fuzz/Cargo.lock too.
    # Checked here, in seconds, not after the whole test run.
    say "fuzz/Cargo.lock is current (fix: cargo update --workspace --manifest-path fuzz/Cargo.toml)"
    cargo metadata --locked --quiet --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
}

check_test() {
    say "building the binaries the end-to-end tests start"
    cargo build --workspace --bins
    say "cargo nextest run"
    cargo nextest run --workspace --no-fail-fast
    # nextest does not run doctests; run them when there are any.
    if git grep --untracked -qE '^[[:space:]]*//[/!][[:space:]]*```' -- '*.rs'; then
        say "doctests"
        cargo test --workspace --doc
    fi
}

steps=()
for step in "${@:-all}"; do
    case "$step" in
        lint) steps+=(fmt deny deps proto clippy) ;;
        all) steps+=(fmt deny deps proto clippy test) ;;
        *) steps+=("$step") ;;
    esac
done
# Plain calls (not `a && b`), so that `set -e` stops at the first failing command.
for step in "${steps[@]}"; do
    case "$step" in
        fmt) check_fmt ;;
        deps) check_deps ;;
        clippy) check_clippy ;;
        deny) check_deny ;;
        proto) check_proto ;;
        test) check_test ;;
        *) die "unknown step '$step' (known: fmt clippy deny proto test lint all)" ;;
    esac
done
