#!/usr/bin/env python3
"""The workspace's dependency rules (docs/ARCHITECTURE.md, "Which crate may
depend on which"), and no unused dependency.

    python tools/check_deps.py            (scripts/check.sh deps)

1. The map: a service never depends on another service's crate; shared/core
   depends on no FacePass crate and shared/proto only on it; shared crates
   never depend on services; only integration-tests, benchmarks and the
   operator CLI (detector and embedder, for `facepass models calibrate`, which
   runs the pipeline in process) link service libraries.
2. Unused dependencies: every dependency a crate declares is named in its
   code (src/, tests/, benches/, examples/, build.rs), as `crate_name::`,
   `use crate_name` or `extern crate`; the few used only through generated
   code or features are listed below with the reason.

Reads `cargo metadata` (offline, no network). Exits 1 naming each broken rule.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVICES = {
    "facepass-gateway",
    "facepass-detector",
    "facepass-embedder",
    "facepass-indexer",
    "facepass-search",
}
# Who may link which service library.
MAY_LINK_SERVICES = {
    "facepass-integration-tests": SERVICES,
    "facepass-benchmarks": SERVICES,
    "facepass-cli": {"facepass-detector", "facepass-embedder"},
}
# Dependencies a crate uses without naming them in its code.
NOT_NAMED = {
    # Generated gRPC code (include!d from OUT_DIR) calls tonic_prost's codec.
    ("facepass-proto", "tonic-prost"): "generated gRPC code uses its codec",
    # diesel's derive macros expand to paths of diesel's own; the driver is
    # chosen by feature.
    ("facepass-db", "diesel"): "named by diesel-async's re-exports and derives",
}


def metadata() -> dict:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def code_of(package_dir: Path) -> str:
    parts = []
    for sub in ("src", "tests", "benches", "examples"):
        for path in sorted((package_dir / sub).rglob("*.rs")):
            parts.append(path.read_text(errors="replace"))
    build = package_dir / "build.rs"
    if build.exists():
        parts.append(build.read_text(errors="replace"))
    return "\n".join(parts)


def named(code: str, crate: str) -> bool:
    ident = re.escape(crate.replace("-", "_"))
    return re.search(rf"(\b{ident}::|\buse\s+{ident}\b|extern\s+crate\s+{ident}\b|#\[{ident}::|\b{ident}!)", code) is not None


def check(meta: dict) -> list[str]:
    problems = []
    members = {p["id"] for p in meta["packages"] if p["id"] in meta["workspace_members"]}
    ours = {p["name"] for p in meta["packages"] if p["id"] in members}
    for package in meta["packages"]:
        if package["id"] not in members:
            continue
        name = package["name"]
        deps = package["dependencies"]
        normal_ours = {d["name"] for d in deps if d["name"] in ours and d.get("kind") is None}
        all_ours = {d["name"] for d in deps if d["name"] in ours}
        # 1. The map.
        if name == "facepass-core" and normal_ours:
            problems.append(f"{name} depends on {sorted(normal_ours)}: shared/core depends on no FacePass crate")
        if name == "facepass-proto" and normal_ours - {"facepass-core"}:
            problems.append(f"{name} depends on {sorted(normal_ours - {'facepass-core'})}: shared/proto depends only on shared/core")
        linked = all_ours & SERVICES
        allowed = MAY_LINK_SERVICES.get(name, set())
        if name in SERVICES:
            allowed = set()
        if linked - allowed:
            problems.append(
                f"{name} links the service librar{'y' if len(linked - allowed) == 1 else 'ies'} "
                f"{sorted(linked - allowed)}: services share only shared/* (ARCHITECTURE.md)"
            )
        # 2. Unused dependencies.
        package_dir = Path(package["manifest_path"]).parent
        code = code_of(package_dir)
        for dep in deps:
            crate = dep.get("rename") or dep["name"]
            if (name, dep["name"]) in NOT_NAMED:
                continue
            if not named(code, crate):
                kind = dep.get("kind") or "normal"
                problems.append(f"{name}: {kind} dependency {dep['name']} is never named in its code (unused?)")
    return problems


def main() -> int:
    problems = check(metadata())
    for problem in problems:
        print(f"check_deps: {problem}")
    if problems:
        return 1
    print("check_deps: the crate map holds and every dependency is used")
    return 0


if __name__ == "__main__":
    sys.exit(main())
