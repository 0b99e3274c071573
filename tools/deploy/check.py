"""The checks of tools/deploy/validate.sh that need more than a linter: each
subcommand prints what it found and exits 1 on any problem.

  env-fill COMPOSE_FILE... ENV_EXAMPLE OUT
      Writes OUT: ENV_EXAMPLE with every variable that a compose file requires
      (${VAR:?...}) given a dummy value, and fails when a variable the compose files
      read is not listed in ENV_EXAMPLE (documented, even if commented out).
  compose RENDERED_JSON DOCKERFILE RAW_COMPOSE_FILE...
      Policy on the file `docker compose config --format json` rendered: health
      checks, depends_on conditions, ports and peer URLs that agree, commands that
      name binaries the image target holds, no literal secrets, ports on 127.0.0.1.
  otel OTEL_YAML RENDERED_JSON
      The collector config: valid YAML, pipelines naming only defined components,
      no unused ones, known component types, scrape targets = the FacePass services.
  bins DOCKERFILE REPO_ROOT
      The Dockerfile builds every binary of services/*/Cargo.toml (packages and
      [[bin]] names), and its GPU build only binaries of the packages it names.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

# ---------------------------------------------------------------------------------
# Shared helpers


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last)."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_yaml(path: str):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)


class Report:
    def __init__(self, what: str):
        self.what = what
        self.problems: list[str] = []

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def finish(self) -> int:
        for p in self.problems:
            print(f"{self.what}: {p}", file=sys.stderr)
        return 1 if self.problems else 0


# ---------------------------------------------------------------------------------
# env-fill

VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose_variables(texts: list[str]) -> tuple[set[str], set[str]]:
    """(every variable read, those required with :?) in the compose texts."""
    read, required = set(), set()
    for text in texts:
        for m in VAR_RE.finditer(text):
            read.add(m.group(1))
            if m.group(2) == ":?":
                required.add(m.group(1))
    return read, required


def env_fill(args: list[str]) -> int:
    *composes, example, out = args
    report = Report("env-fill")
    # Comments may mention ${VAR} syntax; only the YAML itself counts.
    texts = [
        "\n".join(l for l in Path(c).read_text(encoding="utf-8").splitlines() if not l.lstrip().startswith("#"))
        for c in composes
    ]
    read, required = compose_variables(texts)
    # Variables passed on by name (`KEY:` with no value in an environment mapping).
    for c in composes:
        for key in _bare_environment_keys(load_yaml(c)):
            read.add(key)
    lines = Path(example).read_text(encoding="utf-8").splitlines()
    listed = {m.group(1) for line in lines if (m := re.match(r"^#?\s*([A-Z_][A-Z0-9_]*)=", line))}
    for var in sorted(read - listed):
        report.fail(f"{var} is read by the compose files but not listed in {example}")
    filled = []
    for line in lines:
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if m and m.group(1) in required and m.group(2) == "":
            line = f"{m.group(1)}=validate0{m.group(1).lower().replace('_', '0')}"
        filled.append(line)
    for var in sorted(required - {l.split("=", 1)[0] for l in filled if "=" in l and not l.startswith("#")}):
        report.fail(f"{var} is required (:?) but has no uncommented line in {example}")
    Path(out).write_text("\n".join(filled) + "\n", encoding="utf-8")
    print(f"env-fill: {len(read)} variables read, {len(required)} required: {', '.join(sorted(required))}")
    return report.finish()


def _bare_environment_keys(doc) -> set[str]:
    keys = set()
    for svc in (doc or {}).get("services", {}).values():
        env = (svc or {}).get("environment")
        if isinstance(env, dict):
            keys |= {k for k, v in env.items() if v is None}
        elif isinstance(env, list):
            keys |= {e for e in env if isinstance(e, str) and "=" not in e}
    return keys


# ---------------------------------------------------------------------------------
# Dockerfile parsing (enough for our own file: stages, COPY --from, cargo build)


def dockerfile_instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    out, current = [], ""
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


class Stage:
    def __init__(self, name: str, parent: str):
        self.name, self.parent = name, parent
        self.cargo: list[dict] = []  # each: packages, features, installed
        self.copies: list[tuple[str, str]] = []  # (from stage, source)


def dockerfile_stages(path: str) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current = None
    for word, rest in dockerfile_instructions(path):
        if word == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            image = parts[0]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"#{len(stages)}"
            current = Stage(name, image)
            stages[name] = current
        elif word == "RUN" and current is not None and "cargo build" in rest:
            for cmd in rest.split("&&"):
                if "cargo build" in cmd:
                    tokens = cmd.split()
                    packages = [tokens[i + 1] for i, t in enumerate(tokens) if t in ("-p", "--package")]
                    features = [tokens[i + 1] for i, t in enumerate(tokens) if t in ("--features", "-F")]
                    current.cargo.append({"packages": packages, "features": features, "installed": []})
                elif "target/release/" in cmd and current.cargo:
                    current.cargo[-1]["installed"] += re.findall(r"target/release/([A-Za-z0-9_-]+)", cmd)
        elif word == "COPY" and current is not None:
            m = re.search(r"--from=(\S+)\s+(\S+)", rest)
            if m:
                current.copies.append((m.group(1), m.group(2)))
    return stages


def stage_binaries(stages: dict[str, Stage], name: str) -> set[str]:
    """Binaries a stage holds: copied from builder stages' /out, or inherited."""
    stage = stages[name]
    bins: set[str] = set()
    if stage.parent in stages:
        bins |= stage_binaries(stages, stage.parent)
    for src_stage, src in stage.copies:
        if src_stage not in stages:
            continue
        built = {b for c in stages[src_stage].cargo for b in c["installed"]}
        if src.rstrip("/") == "/out":
            bins |= built
        elif src.startswith("/out/") and src[len("/out/"):] in built:
            bins.add(src[len("/out/"):])
    return bins


# ---------------------------------------------------------------------------------
# compose policy

# Long-running services without a health check, and why.
NO_HEALTHCHECK = {
    "otel-collector": "distroless image: no shell or HTTP client to run a check inside",
    "jaeger": "checked by nothing inside; FacePass only exports to it, best effort",
}
SECRET_KEY = re.compile(r"PASS(WORD)?$|SECRET|TOKEN|_KEY$|_KEY_ID$|INTERNAL_CALLERS__")
# Secrets that may be empty, and why; every other one must be required (${VAR:?...})
# or passed on by name.
OPTIONAL_SECRETS = {
    "FACEPASS_ADMIN_TOKEN": "empty turns the gateway's admin API off",
    "MINIO_ROOT_PASSWORD": "profile s3 only; MinIO refuses to start with an empty one",
}


def _port_of(listen: str) -> int | None:
    m = re.match(r"^.*:(\d+)$", listen or "")
    return int(m.group(1)) if m else None


def has_health(svc: dict) -> bool:
    health = svc.get("healthcheck") or {}
    return bool(health.get("test")) and not health.get("disable")


def compose_policy(args: list[str]) -> int:
    rendered_path, dockerfile, *raw_files = args
    report = Report("compose")
    project = json.loads(Path(rendered_path).read_text(encoding="utf-8"))
    services: dict = project.get("services", {})
    stages = dockerfile_stages(dockerfile)
    if not services:
        report.fail("no services rendered")

    listen_port = {}
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if "FACEPASS_GRPC__LISTEN" in env:
            listen_port[name] = _port_of(env["FACEPASS_GRPC__LISTEN"])
            if not str(env["FACEPASS_GRPC__LISTEN"]).startswith("0.0.0.0:"):
                report.fail(f"{name}: FACEPASS_GRPC__LISTEN must listen on 0.0.0.0 in a container")

    for name, svc in sorted(services.items()):
        one_shot = svc.get("restart", "no") == "no"
        health = svc.get("healthcheck") if has_health(svc) else None
        if not one_shot and not health and name not in NO_HEALTHCHECK:
            report.fail(f"{name}: a long-running service without a healthcheck")
        if one_shot and name in listen_port:
            report.fail(f"{name}: serves gRPC but has restart 'no'")

        for dep, cond in (svc.get("depends_on") or {}).items():
            target = services.get(dep)
            if target is None:
                if cond.get("required", True):
                    report.fail(f"{name}: depends on {dep}, which is not defined")
                continue
            condition = cond.get("condition")
            if condition == "service_healthy" and not has_health(target):
                report.fail(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            if condition == "service_completed_successfully" and target.get("restart", "no") != "no":
                report.fail(f"{name}: waits for {dep} to complete, but {dep} restarts")

        # FacePass services: the command names a binary of the image's build target,
        # and the health check asks the service's own gRPC port.
        build = svc.get("build") or {}
        if build.get("dockerfile", "").endswith("deploy/Dockerfile"):
            target = build.get("target")
            if target not in stages:
                report.fail(f"{name}: build target {target!r} is not a stage of {dockerfile}")
            else:
                bins = stage_binaries(stages, target)
                command = svc.get("command") or []
                binary = command[0] if command else None
                if binary in ("sh", "/bin/sh") and len(command) >= 3:
                    words = re.findall(r"(?:^|&&|;|\|\|)\s*([A-Za-z0-9_./-]+)", command[2])
                else:
                    words = [binary] if binary else []
                for word in words:
                    if word not in bins:
                        report.fail(f"{name}: command runs {word!r}, not a binary of target {target} ({', '.join(sorted(bins))})")
                test = (health or {}).get("test") or []
                if name in listen_port:
                    if not (len(test) > 2 and test[0] == "CMD" and test[1] == "facepass" and "wait-healthy" in test):
                        report.fail(f"{name}: healthcheck should be `facepass wait-healthy` on its gRPC port")
                    elif "facepass" not in bins:
                        report.fail(f"{name}: healthcheck runs facepass, which target {target} does not hold")
                    else:
                        url_port = _port_of(test[-1])
                        if url_port != listen_port[name]:
                            report.fail(f"{name}: healthcheck asks port {url_port}, the service listens on {listen_port[name]}")

        # Peers: http://<service>:<port> where that service listens.
        for key, value in (svc.get("environment") or {}).items():
            m = re.fullmatch(r"FACEPASS_([A-Z]+)__URL", key)
            if not m or not value or not str(value).startswith(("http://", "https://")):
                continue
            um = re.fullmatch(r"https?://([a-z0-9-]+):(\d+)/?", str(value))
            if not um:
                report.fail(f"{name}: {key}={value} is not http://service:port")
                continue
            host, port = um.group(1), int(um.group(2))
            if host not in services:
                report.fail(f"{name}: {key} names {host}, which is not a service")
            elif listen_port.get(host) != port:
                report.fail(f"{name}: {key} uses port {port}, {host} listens on {listen_port.get(host)}")

        # Model pack: on a mounted volume, read-only for the services.
        env = svc.get("environment") or {}
        pack = env.get("FACEPASS_MODEL__PACK")
        if pack:
            mounts = [v for v in svc.get("volumes") or [] if str(pack).startswith(v.get("target", "") + "/")]
            if not mounts:
                report.fail(f"{name}: FACEPASS_MODEL__PACK={pack} is on no mounted volume")
            elif not one_shot and not all(v.get("read_only") for v in mounts):
                report.fail(f"{name}: the model pack should be mounted read-only")

        # Published ports stay on the loopback unless FACEPASS_PUBLISH_ADDR says otherwise.
        for port in svc.get("ports") or []:
            if port.get("host_ip") != "127.0.0.1":
                report.fail(f"{name}: port {port.get('target')} is published on {port.get('host_ip') or 'every address'}")

    # No secret written into the compose files: every PASSWORD/SECRET/TOKEN/KEY value
    # comes from an interpolation (or is passed on by name).
    for raw in raw_files:
        text = Path(raw).read_text(encoding="utf-8")
        doc = load_yaml(raw) or {}
        for name, svc in (doc.get("services") or {}).items():
            env = (svc or {}).get("environment") or {}
            items = env.items() if isinstance(env, dict) else (e.partition("=")[::2] for e in env)
            for key, value in items:
                if not SECRET_KEY.search(str(key)) or value is None:
                    continue
                if "${" not in str(value):
                    report.fail(f"{raw}: {name}: {key} is written in the file; take it from deploy/.env")
                elif ":?" not in str(value) and key not in OPTIONAL_SECRETS:
                    report.fail(f"{raw}: {name}: {key} may be left empty; require it with ${{VAR:?...}}")
        for m in re.finditer(r"://[^:/\s]+:([^@\s]+)@", text):
            if "${" not in m.group(1):
                report.fail(f"{raw}: a URL carries a literal password ({m.group(0)})")

    print(f"compose: {len(services)} services checked: {', '.join(sorted(services))}")
    return report.finish()


# ---------------------------------------------------------------------------------
# OpenTelemetry Collector config

# Component types of otel/opentelemetry-collector-contrib this config may use; a
# type outside this list is most likely a typo (the collector would refuse it).
KNOWN_TYPES = {
    "receivers": {"otlp", "prometheus", "hostmetrics", "filelog"},
    "processors": {"batch", "memory_limiter", "resource", "attributes", "filter", "resourcedetection"},
    "exporters": {"otlp_grpc", "otlp_http", "otlp", "otlphttp", "prometheus", "debug", "prometheusremotewrite"},
    # health_check is left out on purpose: unmaintained in contrib, to be removed.
    "extensions": {"healthcheckv2", "pprof", "zpages"},
    "connectors": {"spanmetrics", "forward"},
}
SIGNALS = {"traces", "metrics", "logs"}


def otel_check(args: list[str]) -> int:
    otel_path, rendered_path = args
    report = Report("otel")
    try:
        doc = load_yaml(otel_path)
    except yaml.YAMLError as e:
        print(f"otel: {otel_path} is not valid YAML: {e}", file=sys.stderr)
        return 1
    if not isinstance(doc, dict):
        print(f"otel: {otel_path} is not a mapping", file=sys.stderr)
        return 1
    unknown_top = set(doc) - set(KNOWN_TYPES) - {"service"}
    for key in sorted(unknown_top):
        report.fail(f"unknown top-level section {key!r}")
    defined = {kind: set((doc.get(kind) or {}).keys()) for kind in KNOWN_TYPES}
    for kind, names in defined.items():
        for comp in sorted(names):
            if comp.split("/", 1)[0] not in KNOWN_TYPES[kind]:
                report.fail(f"{kind}: {comp!r} is not a known component type")

    service = doc.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        report.fail("service.pipelines is empty")
    used = {kind: set() for kind in KNOWN_TYPES}
    for ext in service.get("extensions") or []:
        used["extensions"].add(ext)
        if ext not in defined["extensions"]:
            report.fail(f"service.extensions names {ext!r}, which is not defined")
    for pname, pipe in pipelines.items():
        if pname.split("/", 1)[0] not in SIGNALS:
            report.fail(f"pipeline {pname!r}: not traces, metrics or logs")
        pipe = pipe or {}
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipe.get(kind) or []:
                used[kind].add(comp)
                ok = comp in defined[kind] or (kind != "processors" and comp in defined["connectors"])
                if not ok:
                    report.fail(f"pipeline {pname}: {kind[:-1]} {comp!r} is not defined")
                if kind != "processors" and comp in defined["connectors"]:
                    used["connectors"].add(comp)
        if not pipe.get("receivers") or not pipe.get("exporters"):
            report.fail(f"pipeline {pname}: needs at least one receiver and one exporter")
        procs = pipe.get("processors") or []
        if "memory_limiter" in procs and procs[0] != "memory_limiter":
            report.fail(f"pipeline {pname}: memory_limiter must come first")
    for kind in KNOWN_TYPES:
        for comp in sorted(defined[kind] - used[kind]):
            report.fail(f"{kind[:-1]} {comp!r} is defined but used by no pipeline")

    # Against compose: exporter endpoints name services; scrape targets are exactly
    # the services that serve metrics on :9464.
    project = json.loads(Path(rendered_path).read_text(encoding="utf-8"))
    services = project.get("services", {})
    for comp, conf in (doc.get("exporters") or {}).items():
        endpoint = str((conf or {}).get("endpoint", ""))
        m = re.match(r"^(?:https?://)?([a-z][a-z0-9-]*):\d+", endpoint)
        if m and m.group(1) not in ("localhost",) and m.group(1) not in services and not endpoint.startswith("0.0.0.0"):
            report.fail(f"exporter {comp}: endpoint host {m.group(1)!r} is not a compose service")
    metric_services = {
        name for name, svc in services.items()
        if str((svc.get("environment") or {}).get("FACEPASS_METRICS__LISTEN", "")).endswith(":9464")
        and svc.get("restart", "no") != "no"
    }
    targets = set()
    prom = (doc.get("receivers") or {}).get("prometheus") or {}
    for job in ((prom.get("config") or {}).get("scrape_configs") or []):
        for sc in job.get("static_configs") or []:
            for t in sc.get("targets") or []:
                targets.add(str(t))
    want = {f"{s}:9464" for s in metric_services}
    for t in sorted(want - targets):
        report.fail(f"prometheus receiver does not scrape {t}")
    for t in sorted(targets - want):
        report.fail(f"prometheus receiver scrapes {t}, which is no FacePass service with metrics")
    print(f"otel: {sum(len(v) for v in defined.values())} components, {len(pipelines)} pipelines, {len(targets)} scrape targets")
    return report.finish()


# ---------------------------------------------------------------------------------
# Dockerfile binaries against the workspace


def workspace_binaries(root: Path) -> dict[str, dict]:
    """{package: {bins: [...], features: {...}}} for services/* and shared/*."""
    out = {}
    for manifest in sorted(root.glob("services/*/Cargo.toml")) + sorted(root.glob("shared/*/Cargo.toml")):
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        pkg = data.get("package", {}).get("name")
        if not pkg:
            continue
        bins = [b["name"] for b in data.get("bin", [])]
        if not bins and (manifest.parent / "src/main.rs").exists() and data.get("package", {}).get("autobins", True):
            bins = [pkg]
        if data.get("package", {}).get("autobins", True):
            bins += [p.stem for p in sorted((manifest.parent / "src/bin").glob("*.rs"))]
        out[pkg] = {
            "bins": bins,
            "features": set(data.get("features", {})),
            "service": manifest.parent.parent.name == "services",
        }
    return out


def bins_check(args: list[str]) -> int:
    dockerfile, root = args[0], Path(args[1])
    report = Report("bins")
    ws = workspace_binaries(root)
    service_pkgs = {p for p, v in ws.items() if v["service"]}
    all_bins = {b for p in service_pkgs for b in ws[p]["bins"]}
    stages = dockerfile_stages(dockerfile)
    builds = [(name, c) for name, st in stages.items() for c in st.cargo]
    if not builds:
        report.fail(f"{dockerfile} runs no cargo build")
    full = [(n, c) for n, c in builds if set(c["packages"]) >= service_pkgs]
    if not full:
        report.fail(
            f"no cargo build in {dockerfile} builds every service package; missing: "
            + ", ".join(sorted(service_pkgs - set(builds[0][1]["packages"]) if builds else service_pkgs))
        )
    for name, c in builds:
        pkgs = set(c["packages"])
        for p in sorted(pkgs - set(ws)):
            report.fail(f"stage {name}: builds package {p}, which is not in the workspace")
        expected = {b for p in pkgs if p in ws for b in ws[p]["bins"]}
        installed = set(c["installed"])
        for b in sorted(expected - installed):
            report.fail(f"stage {name}: builds binary {b} but does not install it")
        for b in sorted(installed - expected):
            report.fail(f"stage {name}: installs {b}, which the packages it builds do not produce")
        for feat in c["features"]:
            for f in feat.split(","):
                pkg, _, name_ = f.partition("/")
                if not name_:
                    continue
                if pkg not in ws or name_ not in ws[pkg]["features"]:
                    report.fail(f"stage {name}: feature {f} does not exist")
    print(
        f"bins: workspace services build {', '.join(sorted(all_bins))}; "
        + "; ".join(f"{n}: {len(c['packages'])} packages, {len(c['installed'])} binaries" for n, c in builds)
    )
    return report.finish()


COMMANDS = {"env-fill": env_fill, "compose": compose_policy, "otel": otel_check, "bins": bins_check}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
