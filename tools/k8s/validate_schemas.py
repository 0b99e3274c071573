#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests against pinned JSON schemas.

    kubectl kustomize k8s/overlays/cpu | python tools/k8s/validate_schemas.py --kubernetes 1.32

Built-in kinds are checked with kubernetes-validate against the schemas of the
given Kubernetes version, strict (a field the API does not know is an error, as
with `kubectl apply --validate=strict`). KEDA's ScaledObject and
TriggerAuthentication are checked against tools/k8s/schemas/ (written from
KEDA's CRDs). A kind with no schema at all is an error, not a warning: nothing
goes unchecked silently.

Prints one line per problem and a last line `schemas: N resources valid against
Kubernetes X.Y (+ KEDA v2)`; exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent / "schemas"

# (apiVersion, kind) -> schema file for the custom resources FacePass uses.
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-v2-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-v2-triggerauthentication.json",
}


def custom_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    schemas = {name: json.loads((SCHEMAS / name).read_text()) for name in set(CUSTOM.values())}
    # Registered under their $id, so one schema can refer to another by file name.
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    validators = {}
    for key, name in CUSTOM.items():
        schema = schemas[name]
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validators[key] = cls(schema, registry=registry)
    return validators


def where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top)"


def validate(docs: list[dict], kubernetes: str) -> list[str]:
    """Every schema violation in the resources (empty: all valid)."""
    custom = custom_validators()
    problems = []
    for doc in docs:
        api, kind = doc.get("apiVersion", "?"), doc.get("kind", "?")
        name = f"{kind}/{(doc.get('metadata') or {}).get('name', '?')}"
        if (api, kind) in custom:
            errors = sorted(custom[(api, kind)].iter_errors(doc), key=lambda e: list(e.absolute_path))
            problems += [f"schemas: {name}: {where(e)}: {e.message} (KEDA v2 schema)" for e in errors]
            continue
        try:
            kubernetes_validate.validate(doc, kubernetes, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"schemas: {name}: {where(error)}: {error.message} (Kubernetes {error.version}, strict)")
        except kv_utils.SchemaNotFoundError as error:
            problems.append(f"schemas: {name}: no schema: {error.message}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes", required=True, help="Kubernetes version, e.g. 1.32")
    parser.add_argument("file", nargs="?", default="-", help="rendered YAML (default: stdin)")
    args = parser.parse_args()

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    if not docs:
        print("schemas: no resources in the input")
        return 1
    if args.kubernetes not in {kv_utils.major_minor(v) for v in kv_utils.all_versions()}:
        print(f"schemas: kubernetes-validate has no schemas for Kubernetes {args.kubernetes}")
        return 1

    problems = validate(docs, args.kubernetes)
    for problem in problems:
        print(problem)
    if problems:
        print(f"schemas: {len(problems)} problem(s) in {len(docs)} resources")
        return 1
    print(
        f"schemas: {len(docs)} resources valid against Kubernetes {args.kubernetes} "
        f"(strict; kubernetes-validate {kubernetes_validate.__version__}) and KEDA v2"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
