#!/usr/bin/env bash
# tools/k8s/validate.sh: render and check FacePass's Kubernetes manifests (k8s/).
#
#   bash tools/k8s/validate.sh [K8S_DIR]     (default: k8s/ of this checkout)
#
# For each overlay (cpu, gpu, cpu-tls):
#   1. renders it with `kubectl kustomize K8S_DIR/overlays/<name>`;
#   2. validates every resource against the JSON schemas of Kubernetes
#      $K8S_VERSION, strict (unknown fields fail), with kubernetes-validate, and the
#      KEDA ScaledObject / TriggerAuthentication against tools/k8s/schemas/
#      (tools/k8s/validate_schemas.py);
#   3. checks the project's rules that schemas cannot express
#      (tools/k8s/check_rules.py: security contexts, resources, probes, PDBs,
#      exposure, headless Services, autoscalers, images, references, network paths);
# then a self-test: the checks run again on copies of k8s/ with one deliberate
# mistake each, which they must reject.
# Nothing is applied to a cluster: no cluster is needed or contacted.
#
# Exit status: 0 all checks pass; 1 a check failed; 3 a prerequisite is missing
# (kubectl, the venv, or kubernetes-validate cannot be installed): the message
# says which, and a test may report it as skipped.
#
# Python: "$FACEPASS_VENV"/bin/python if FACEPASS_VENV is set, else .venv/bin/python.
# kubernetes-validate (tools/k8s/requirements.txt) is installed there when missing
# or at another version; safe to run any number of times.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
HERE="$ROOT/tools/k8s"
K8S_DIR="${1:-$ROOT/k8s}"
# The Kubernetes version whose API schemas the manifests must satisfy (pinned;
# kubernetes-validate 1.37.0 bundles the schemas of 1.25 to 1.37).
K8S_VERSION="1.32"
OVERLAYS=(cpu gpu cpu-tls)

skip() {
    printf 'k8s validate: skipped: %s\n' "$*" >&2
    exit 3
}

command -v kubectl >/dev/null 2>&1 ||
    skip "kubectl is not installed (it renders the kustomize overlays; kubectl >= 1.27 has kustomize v5 built in)"

VENV="${FACEPASS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
[[ -x "$PY" ]] || skip "no Python virtualenv at $VENV (run: bash scripts/lib/deps.sh, or set FACEPASS_VENV)"

# kubernetes-validate at the pinned version (and whatever else requirements.txt pins).
want="$(sed -n 's/^kubernetes-validate==//p' "$HERE/requirements.txt")"
have="$("$PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true)"
if [[ "$have" != "$want" ]]; then
    printf 'k8s validate: installing kubernetes-validate==%s into %s\n' "$want" "$VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2 ||
        skip "could not install tools/k8s/requirements.txt into $VENV (offline?)"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

failed=0
summary=()
for overlay in "${OVERLAYS[@]}"; do
    dir="$K8S_DIR/overlays/$overlay"
    out="$WORK/$overlay.yaml"
    printf '\n== %s (%s)\n' "$overlay" "$dir"
    if ! kubectl kustomize "$dir" >"$out" 2>"$WORK/kustomize.err"; then
        sed 's/^/kustomize: /' "$WORK/kustomize.err"
        failed=1
        summary+=("$overlay: does not render")
        continue
    fi
    count="$(grep -c '^kind:' "$out" || true)"
    kinds="$(grep '^kind:' "$out" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $3; sep=", "}')"
    result="ok"
    "$PY" "$HERE/validate_schemas.py" --kubernetes "$K8S_VERSION" "$out" || { failed=1; result="FAILED"; }
    "$PY" "$HERE/check_rules.py" --overlay "$overlay" "$out" || { failed=1; result="FAILED"; }
    summary+=("$overlay: $result, $count resources ($kinds)")
done

# Self-test: the same checks on copies of k8s/ with one deliberate mistake each
# must fail, naming it (a check that passes everything is caught here).
# tools/k8s/test_checks.py breaks every rule in turn; this is the quick version.
self_test() { # NAME FILE SED-EXPRESSION CHECKER EXPECTED-MESSAGE
    local name="$1" file="$2" expr="$3" checker="$4" expected="$5" copy="$WORK/self-test-$1"
    rm -rf "$copy" && cp -R "$K8S_DIR" "$copy"
    sed -i "$expr" "$copy/$file"
    if cmp -s "$K8S_DIR/$file" "$copy/$file"; then
        printf 'self-test %s: the mistake was not made (%s unchanged)\n' "$name" "$file"
        return 1
    fi
    if ! kubectl kustomize "$copy/overlays/cpu" >"$copy.yaml" 2>/dev/null; then
        printf 'self-test %s: caught (does not render)\n' "$name"
        return 0
    fi
    local args=(--overlay cpu)
    [[ "$checker" == validate_schemas.py ]] && args=(--kubernetes "$K8S_VERSION")
    if "$PY" "$HERE/$checker" "${args[@]}" "$copy.yaml" >"$copy.out"; then
        printf 'self-test %s: %s passed a broken manifest\n' "$name" "$checker"
        return 1
    fi
    if ! grep -qF -- "$expected" "$copy.out"; then
        printf 'self-test %s: %s failed without saying %s:\n' "$name" "$checker" "$expected"
        cat "$copy.out"
        return 1
    fi
    printf 'self-test %s: caught (%s)\n' "$name" "$(grep -F -- "$expected" "$copy.out" | head -1)"
}
printf '\n== self-test (deliberate mistakes must be caught)\n'
self_failed=0
self_test unknown-field base/search.yaml 's/^  replicas: 2$/  replicas: 2\n  replicaz: 2/' \
    validate_schemas.py "'replicaz' was unexpected" || self_failed=1
self_test writable-root base/search.yaml 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' \
    check_rules.py "readOnlyRootFilesystem is not true" || self_failed=1
self_test postgres-from-indexer base/networkpolicies.yaml 's/port: 5672} # RabbitMQ (work queue, outcomes)/port: 5672}\n        - {protocol: TCP, port: 5432}/' \
    check_rules.py "facepass-indexer egress: reaches external ports [5432, 5672]" || self_failed=1
if ((self_failed)); then
    failed=1
    summary+=("self-test: FAILED (a check let a deliberate mistake through)")
else
    summary+=("self-test: ok, 3 deliberate mistakes caught")
fi

printf '\n== summary: validated against Kubernetes %s (strict) and KEDA v2 CRD schemas; nothing applied to a cluster\n' "$K8S_VERSION"
printf '   %s\n' "${summary[@]}"
if ((failed)); then
    printf 'k8s validate: FAILED (see above)\n' >&2
    exit 1
fi
printf 'k8s validate: ok\n'
