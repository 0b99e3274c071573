#!/usr/bin/env python3
"""FacePass's rules for its Kubernetes manifests: what JSON schemas cannot say.

    kubectl kustomize k8s/overlays/gpu | python tools/k8s/check_rules.py --overlay gpu

Reads the rendered YAML of one overlay and checks that
- every resource and pod template carries app.kubernetes.io/name, part-of=facepass
  and component; everything sits in one namespace;
- every container (Deployments and Jobs, init containers too) has CPU and memory
  requests and limits and runs non-root (user 10001), with a read-only root
  filesystem, no privilege escalation, no capabilities, seccomp RuntimeDefault;
- every Deployment has liveness and readiness probes on ports it declares (gRPC
  probes on its port named "grpc"), a PodDisruptionBudget, and no `replicas`
  when an autoscaler owns it;
- only the gateway's Service leaves the cluster; the detector's and the
  embedder's Services are headless; every Service selects pods and ports that
  exist, and the peer URLs in the ConfigMap name those Services;
- the HorizontalPodAutoscaler targets the embedder on CPU and
  facepass_embedder_inflight; KEDA scales the indexer on its RabbitMQ queue with
  credentials from the Secret;
- images are ghcr.io/facepass/facepass (-tools for the model download, -cuda for
  detector and embedder in the gpu overlay, which alone request GPUs) with a tag
  that is not `latest`;
- every ConfigMap, Secret (key) and PersistentVolumeClaim a pod names exists;
  the model volume is mounted read-only by the services;
- the NetworkPolicies deny by default and allow exactly the intended paths (who
  reaches which pod on which port, which pods reach PostgreSQL 5432, RabbitMQ
  5672, the object store 443/9000 and DNS).

Prints each broken rule and a last summary line; exits 1 when any rule fails.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from urllib.parse import urlparse

import yaml

NAME = "app.kubernetes.io/name"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
IMAGE = "ghcr.io/facepass/facepass"  # the services (deploy/Dockerfile target runtime)
IMAGE_TOOLS = IMAGE + "-tools"  # + curl, python3 (target tools)
IMAGE_CUDA = IMAGE + "-cuda"  # detector and embedder on CUDA (target runtime-cuda)
USER = 10001

SERVICES = ["gateway", "detector", "embedder", "search", "indexer"]
HEADLESS = {"detector", "embedder"}  # balanced per call by their clients
PUBLIC_SERVICE = "facepass-gateway"
GPU_COMPONENTS = {"detector", "embedder"}
INDEXER_QUEUE = "{namespace}.indexer.photos"
INFLIGHT_METRIC = "facepass_embedder_inflight"

# Who may open a connection to whose gRPC port inside the namespace.
GRPC_CALLERS = {
    "detector": {"gateway", "indexer"},
    "embedder": {"gateway", "indexer"},
    "search": {"gateway", "indexer"},
    "indexer": set(),
}
PUBLIC_PORTS = {8080, 50051}  # the gateway's, open to anyone
METRICS_PORT = 9464
# Ports outside the namespace each component may reach (beyond DNS).
EXTERNAL_PORTS = [5432, 5672, 443, 9000]
EXTERNAL_EGRESS = {
    "gateway": {5432, 5672, 443, 9000},
    "search": {5432},
    "indexer": {5672},
    "detector": {443, 9000},
    "embedder": set(),
    "migrations": {5432},
    "models": {443},
}


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"rules: {where}: {message}")


def ident(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata'].get('name', '?')}"


def matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against labels; {} matches all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass
class Pod:
    """A pod template of a Deployment or Job."""

    owner: dict
    template: dict

    @property
    def labels(self) -> dict:
        return self.template["metadata"].get("labels") or {}

    @property
    def component(self) -> str:
        return self.labels.get(COMPONENT, "?")

    @property
    def spec(self) -> dict:
        return self.template["spec"]

    def containers(self, init: bool = True) -> list[dict]:
        return (self.spec.get("initContainers") or [] if init else []) + self.spec["containers"]

    def port(self, ref) -> int | None:
        """A port number or a container port's name -> the number, if declared."""
        for container in self.spec["containers"]:
            for port in container.get("ports") or []:
                if ref in (port["containerPort"], port.get("name")):
                    return port["containerPort"]
        return None


def check_labels(docs: list[dict], pods: list[Pod], report: Report) -> None:
    for doc in docs:
        labels = doc["metadata"].get("labels") or {}
        for key in (NAME, COMPONENT):
            if not labels.get(key):
                report.fail(ident(doc), f"label {key} is missing")
        if labels.get(PART_OF) != "facepass":
            report.fail(ident(doc), f"label {PART_OF} is not facepass")
    for pod in pods:
        for key in (NAME, COMPONENT):
            if not pod.labels.get(key):
                report.fail(ident(pod.owner), f"pod template label {key} is missing")
        if pod.labels.get(PART_OF) != "facepass":
            report.fail(ident(pod.owner), f"pod template label {PART_OF} is not facepass")
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    if len(namespaces) != 1:
        report.fail("Namespace", f"expected one Namespace, found {sorted(namespaces)}")
    for doc in docs:
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") not in namespaces:
            report.fail(ident(doc), f"namespace {doc['metadata'].get('namespace')!r} is not {sorted(namespaces)}")


def check_containers(pods: list[Pod], report: Report) -> None:
    for pod in pods:
        spec = pod.spec
        pod_sc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            report.fail(ident(pod.owner), "automountServiceAccountToken is not false")
        for c in pod.containers():
            where = f"{ident(pod.owner)} container {c['name']}"
            resources = c.get("resources") or {}
            for part in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    if res not in (resources.get(part) or {}):
                        report.fail(where, f"resources.{part}.{res} is missing")
            sc = c.get("securityContext") or {}

            def effective(key):
                return sc.get(key, pod_sc.get(key))

            if effective("runAsNonRoot") is not True:
                report.fail(where, "runAsNonRoot is not true")
            if effective("runAsUser") != USER:
                report.fail(where, f"runAsUser is not {USER}")
            if sc.get("allowPrivilegeEscalation") is not False:
                report.fail(where, "allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                report.fail(where, "readOnlyRootFilesystem is not true")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                report.fail(where, "capabilities.drop does not contain ALL")
            if (sc.get("capabilities") or {}).get("add"):
                report.fail(where, "adds capabilities")
            if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
                report.fail(where, "seccompProfile is not RuntimeDefault")
            if sc.get("privileged"):
                report.fail(where, "is privileged")
            mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
            if "/tmp" not in mounts:
                report.fail(where, "has no writable /tmp (an emptyDir) under its read-only root")


def check_probes(deployments: list[Pod], report: Report) -> None:
    for pod in deployments:
        for c in pod.spec["containers"]:
            where = f"{ident(pod.owner)} container {c['name']}"
            grpc_port = next((p["containerPort"] for p in c.get("ports") or [] if p.get("name") == "grpc"), None)
            if grpc_port is None:
                report.fail(where, "declares no port named grpc")
            if not c.get("readinessProbe"):
                report.fail(where, "has no readinessProbe")
            if not c.get("livenessProbe"):
                report.fail(where, "has no livenessProbe")
            grpc_probes = 0
            # With TLS (components/tls) kubelet cannot speak gRPC health to the
            # service: the metrics port's /readyz carries the same verdict.
            readyz = (c.get("readinessProbe") or {}).get("httpGet", {}).get("path") == "/readyz"
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                if not probe:
                    continue
                if "grpc" in probe:
                    grpc_probes += 1
                    if probe["grpc"]["port"] != grpc_port:
                        report.fail(where, f"{kind} checks gRPC port {probe['grpc']['port']}, not its grpc port {grpc_port}")
                    if probe["grpc"].get("service", "") != "":
                        report.fail(where, f"{kind} checks a named gRPC service, not the overall status \"\"")
                elif "httpGet" in probe:
                    if pod.port(probe["httpGet"]["port"]) is None:
                        report.fail(where, f"{kind} probes port {probe['httpGet']['port']}, which it does not declare")
                else:
                    report.fail(where, f"{kind} is neither gRPC health nor HTTP")
            if grpc_probes == 0 and not readyz:
                report.fail(where, "no probe uses grpc.health.v1 (or the metrics port's /readyz)")


def image_parts(image: str) -> tuple[str, str]:
    """'registry/name:tag' -> (registry/name, tag); a digest counts as a tag."""
    if "@" in image:
        return image.split("@")[0].rsplit(":", 1)[0], "digest"
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, ""


def check_images(pods: list[Pod], overlay: str | None, report: Report) -> None:
    for pod in pods:
        gpu_pod = overlay == "gpu" and pod.component in GPU_COMPONENTS and pod.owner["kind"] == "Deployment"
        # Which image each pod must run (deploy/Dockerfile's targets).
        if gpu_pod:
            expected = IMAGE_CUDA
        elif pod.component == "models":
            expected = IMAGE_TOOLS  # `facepass models fetch` needs curl and python3
        else:
            expected = IMAGE
        for c in pod.containers():
            where = f"{ident(pod.owner)} container {c['name']}"
            image = c.get("image", "")
            name, tag = image_parts(image)
            if name != expected:
                report.fail(where, f"image {image!r} is not {expected} (an unresolved kustomize image name?)")
            if not tag:
                report.fail(where, f"image {image!r} has no tag")
            elif tag == "latest" or tag.startswith("latest-"):
                report.fail(where, f"image {image!r} uses the latest tag")
            resources = c.get("resources") or {}
            if gpu_pod:
                for part in ("requests", "limits"):
                    if str((resources.get(part) or {}).get("nvidia.com/gpu")) != "1":
                        report.fail(where, f"does not have nvidia.com/gpu: 1 in its {part} in the gpu overlay")
                if not any(t.get("key") == "nvidia.com/gpu" for t in pod.spec.get("tolerations") or []):
                    report.fail(where, "does not tolerate the nvidia.com/gpu taint in the gpu overlay")
            elif any("nvidia.com/gpu" in (resources.get(part) or {}) for part in ("requests", "limits")):
                report.fail(where, "requests a GPU outside the gpu overlay's detector and embedder")


def check_references(docs: list[dict], pods: list[Pod], report: Report) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    def secret_has(name: str, key: str) -> bool:
        secret = by_kind.get("Secret", {}).get(name)
        return secret is not None and key in {**(secret.get("data") or {}), **(secret.get("stringData") or {})}

    for pod in pods:
        for c in pod.containers():
            where = f"{ident(pod.owner)} container {c['name']}"
            for source in c.get("envFrom") or []:
                for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if ref in source and source[ref]["name"] not in by_kind.get(kind, {}):
                        report.fail(where, f"{kind} {source[ref]['name']} does not exist")
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional") and not secret_has(ref["name"], ref["key"]):
                    report.fail(where, f"Secret {ref['name']} has no key {ref['key']} (env {env['name']})")
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and ref["name"] not in by_kind.get("ConfigMap", {}):
                    report.fail(where, f"ConfigMap {ref['name']} does not exist")
        volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
        for volume in volumes.values():
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and claim not in by_kind.get("PersistentVolumeClaim", {}):
                report.fail(ident(pod.owner), f"PersistentVolumeClaim {claim} does not exist")
        if pod.owner["kind"] == "Deployment":
            for c in pod.containers():
                for mount in c.get("volumeMounts") or []:
                    volume = volumes.get(mount["name"], {})
                    if "persistentVolumeClaim" in volume and not (
                        mount.get("readOnly") and volume["persistentVolumeClaim"].get("readOnly")
                    ):
                        report.fail(ident(pod.owner), f"mounts the volume {mount['name']} writable (models are read-only)")


def check_workloads(docs: list[dict], deployments: list[Pod], report: Report) -> None:
    by_name = {p.owner["metadata"]["name"]: p for p in deployments}
    components = {p.component for p in deployments}
    for service in SERVICES:
        if service not in components:
            report.fail("Deployment", f"no Deployment for the {service}")

    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for pod in deployments:
        if not any(matches(pdb["spec"].get("selector"), pod.labels) for pdb in pdbs):
            report.fail(ident(pod.owner), "has no PodDisruptionBudget")
    for pdb in pdbs:
        if not any(matches(pdb["spec"].get("selector"), p.labels) for p in deployments):
            report.fail(ident(pdb), "selects no Deployment's pods")

    # Services: selectors, ports, exposure, headless.
    services = [d for d in docs if d["kind"] == "Service"]
    for svc in services:
        spec = svc["spec"]
        selected = [p for p in deployments if spec.get("selector") and matches({"matchLabels": spec["selector"]}, p.labels)]
        if not selected:
            report.fail(ident(svc), "selects no Deployment's pods")
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port["port"])
            if selected and any(p.port(target) is None for p in selected):
                report.fail(ident(svc), f"targetPort {target} is not a port of the selected pods")
        exposed = spec.get("type", "ClusterIP") not in ("ClusterIP",) or spec.get("externalIPs")
        if exposed and svc["metadata"]["name"] != PUBLIC_SERVICE:
            report.fail(ident(svc), f"is exposed outside the cluster (type {spec.get('type')}); only {PUBLIC_SERVICE} may be")
    for component in HEADLESS:
        if not any(
            s["spec"].get("clusterIP") == "None"
            and any(p.component == component for p in deployments if matches({"matchLabels": s["spec"].get("selector") or {}}, p.labels))
            for s in services
        ):
            report.fail("Service", f"the {component} has no headless Service (clusterIP: None)")
    if not any(s["metadata"]["name"] == PUBLIC_SERVICE for s in services):
        report.fail("Service", f"{PUBLIC_SERVICE} is missing")

    # The peer URLs in the ConfigMap name Services and ports that exist.
    config = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("facepass-config")), None)
    if config is None:
        report.fail("ConfigMap", "facepass-config is missing")
        config = {"data": {}}
    data = config.get("data") or {}
    for peer in ("detector", "embedder", "search"):
        url = data.get(f"FACEPASS_{peer.upper()}__URL")
        if not url:
            report.fail("ConfigMap/facepass-config", f"FACEPASS_{peer.upper()}__URL is missing")
            continue
        parsed = urlparse(url)
        svc = next((s for s in services if s["metadata"]["name"] == parsed.hostname), None)
        if svc is None:
            report.fail("ConfigMap/facepass-config", f"{url}: no Service {parsed.hostname}")
            continue
        if parsed.port not in [p["port"] for p in svc["spec"].get("ports") or []]:
            report.fail("ConfigMap/facepass-config", f"{url}: Service {parsed.hostname} has no port {parsed.port}")
        if peer in HEADLESS and svc["spec"].get("clusterIP") != "None":
            report.fail("ConfigMap/facepass-config", f"{url}: the {peer} must be reached through its headless Service")

    # Autoscaling: the HPA on the embedder, KEDA on the indexer.
    scaled: dict[str, str] = {}
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    for hpa in hpas:
        spec = hpa["spec"]
        target = spec["scaleTargetRef"]
        scaled[target["name"]] = ident(hpa)
        if target.get("kind") != "Deployment" or target["name"] not in by_name:
            report.fail(ident(hpa), f"targets {target.get('kind')}/{target['name']}, which does not exist")
        if spec.get("minReplicas", 1) > spec["maxReplicas"]:
            report.fail(ident(hpa), "minReplicas is above maxReplicas")
    def target_component(scaler: dict) -> str | None:
        pod = by_name.get(scaler["spec"]["scaleTargetRef"]["name"])
        return pod.component if pod else None

    embedder_hpa = [h for h in hpas if target_component(h) == "embedder"]
    if not embedder_hpa:
        report.fail("HorizontalPodAutoscaler", "no HorizontalPodAutoscaler targets the embedder")
    for hpa in embedder_hpa:
        metrics = hpa["spec"].get("metrics") or []
        if not any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics):
            report.fail(ident(hpa), "does not scale on CPU")
        if not any(m["type"] == "Pods" and m["pods"]["metric"]["name"] == INFLIGHT_METRIC for m in metrics):
            report.fail(ident(hpa), f"does not scale on the Pods metric {INFLIGHT_METRIC}")

    auths = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TriggerAuthentication"}
    objects = [d for d in docs if d["kind"] == "ScaledObject"]
    namespace = data.get("FACEPASS_AMQP__NAMESPACE", "facepass")
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    if not any(target_component(o) == "indexer" for o in objects):
        report.fail("ScaledObject", "no ScaledObject scales the indexer")
    for obj in objects:
        spec = obj["spec"]
        target = spec["scaleTargetRef"]["name"]
        scaled[target] = ident(obj)
        if target not in by_name:
            report.fail(ident(obj), f"targets Deployment/{target}, which does not exist")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            report.fail(ident(obj), "minReplicaCount is above maxReplicaCount")
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            if trigger["type"] != "rabbitmq":
                continue
            expected_queue = INDEXER_QUEUE.format(namespace=namespace)
            if meta.get("queueName") != expected_queue:
                report.fail(ident(obj), f"queueName {meta.get('queueName')!r} is not the indexer's queue {expected_queue!r}")
            if meta.get("mode") != "QueueLength" or not str(meta.get("value", "")).replace(".", "", 1).isdigit():
                report.fail(ident(obj), "the rabbitmq trigger does not scale on QueueLength with a numeric value")
            for secret_field in ("host", "password", "username"):
                if secret_field in meta:
                    report.fail(ident(obj), f"{secret_field} is in the trigger's metadata; it belongs in the TriggerAuthentication")
            auth = auths.get((trigger.get("authenticationRef") or {}).get("name", ""))
            if auth is None:
                report.fail(ident(obj), "the rabbitmq trigger has no TriggerAuthentication that exists")
                continue
            refs = {r["parameter"]: r for r in auth["spec"].get("secretTargetRef") or []}
            if "host" not in refs:
                report.fail(ident(auth), "does not give the rabbitmq scaler its host from a Secret")
            for ref in refs.values():
                secret = secrets.get(ref["name"])
                if secret is None or ref["key"] not in (secret.get("data") or {}):
                    report.fail(ident(auth), f"Secret {ref['name']} has no key {ref['key']}")
    for name, pod in by_name.items():
        if name in scaled and "replicas" in pod.owner["spec"]:
            report.fail(ident(pod.owner), f"sets replicas although {scaled[name]} owns the count")


# --- NetworkPolicies -------------------------------------------------------------


def policies_for(pod: Pod, policies: list[dict], kind: str) -> list[dict]:
    return [
        p for p in policies
        if kind in (p["spec"].get("policyTypes") or ["Ingress"]) and matches(p["spec"]["podSelector"], pod.labels)
    ]


def port_allows(entries: list[dict] | None, number: int, target: Pod | None) -> bool:
    """Whether a rule's ports allow TCP `number` (named ports resolve on target)."""
    if not entries:
        return True
    for entry in entries:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        port = entry.get("port")
        if port is None:
            return True
        if isinstance(port, str):
            if target is not None and target.port(port) == number:
                return True
            continue
        if port <= number <= entry.get("endPort", port):
            return True
    return False


def ingress_sources(target: Pod, number: int, policies: list[dict], pods: list[Pod]) -> tuple[bool, set[str], bool]:
    """(open to anyone, in-namespace components allowed, other namespaces allowed) for a port."""
    anyone, components, other_namespaces = False, set(), False
    for policy in policies_for(target, policies, "Ingress"):
        for rule in policy["spec"].get("ingress") or []:
            if not port_allows(rule.get("ports"), number, target):
                continue
            peers = rule.get("from") or []
            if not peers:
                anyone = True
            for peer in peers:
                if "ipBlock" in peer:
                    anyone = True
                elif "namespaceSelector" in peer:
                    other_namespaces = True
                else:
                    components |= {p.component for p in pods if matches(peer["podSelector"], p.labels)}
    return anyone, components, other_namespaces


def egress_allows_external(source: Pod, number: int, policies: list[dict]) -> bool:
    for policy in policies_for(source, policies, "Egress"):
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to") or []
            leaves_namespace = not peers or any("ipBlock" in p or "namespaceSelector" in p for p in peers)
            if leaves_namespace and port_allows(rule.get("ports"), number, None):
                return True
    return False


def egress_allows_pod(source: Pod, target: Pod, number: int, policies: list[dict]) -> bool:
    for policy in policies_for(source, policies, "Egress"):
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to") or []
            reaches = not peers or any(
                "podSelector" in p and "namespaceSelector" not in p and matches(p["podSelector"], target.labels) for p in peers
            )
            if reaches and port_allows(rule.get("ports"), number, target):
                return True
    return False


def check_network(docs: list[dict], pods: list[Pod], deployments: list[Pod], report: Report) -> None:
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [
        p for p in policies
        if p["spec"]["podSelector"] == {} and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    if not deny:
        report.fail("NetworkPolicy", "no default-deny policy (podSelector {}, Ingress and Egress, no rules)")
        return

    for target in deployments:
        where = f"{ident(target.owner)} ingress"
        grpc = target.port("grpc")
        ports = sorted({p["containerPort"] for c in target.spec["containers"] for p in c.get("ports") or []})
        for number in ports:
            anyone, components, other_ns = ingress_sources(target, number, policies, pods)
            if target.component == "gateway" and number in PUBLIC_PORTS:
                if not anyone:
                    report.fail(where, f"port {number} is not reachable from outside")
                continue
            if anyone:
                report.fail(where, f"port {number} is open to anyone")
            if number == METRICS_PORT:
                if not other_ns:
                    report.fail(where, f"metrics port {number} is not reachable from the monitoring namespace")
                if components:
                    report.fail(where, f"metrics port {number} is open to {sorted(components)}")
                continue
            if other_ns:
                report.fail(where, f"port {number} is open to other namespaces")
            expected = GRPC_CALLERS.get(target.component, set()) if number == grpc else set()
            if components != expected:
                report.fail(where, f"port {number} is reachable from {sorted(components) or 'nobody'}, expected {sorted(expected) or 'nobody'}")

    for source in pods:
        where = f"{ident(source.owner)} egress"
        if not egress_allows_external(source, 53, policies):
            report.fail(where, "cannot reach DNS (53)")
        reached = {n for n in EXTERNAL_PORTS if egress_allows_external(source, n, policies)}
        expected = EXTERNAL_EGRESS.get(source.component)
        if expected is None:
            report.fail(where, f"component {source.component!r} has no expected egress in check_rules.py")
        elif reached != expected:
            report.fail(where, f"reaches external ports {sorted(reached) or 'none'}, expected {sorted(expected) or 'none'}")
        for target in deployments:
            grpc = target.port("grpc")
            allowed = egress_allows_pod(source, target, grpc, policies)
            should = source.component in GRPC_CALLERS.get(target.component, set())
            if allowed != should:
                report.fail(where, f"{'can' if allowed else 'cannot'} reach the {target.component}'s gRPC port {grpc}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", choices=["cpu", "gpu", "cpu-tls"], help="overlay-specific rules (GPU requests, images)")
    parser.add_argument("file", nargs="?", default="-", help="rendered YAML (default: stdin)")
    args = parser.parse_args()

    text = sys.stdin.read() if args.file == "-" else open(args.file).read()
    docs = [d for d in yaml.safe_load_all(text) if d]
    problems = check(docs, args.overlay)
    for problem in problems:
        print(problem)
    if problems:
        print(f"rules: {len(problems)} problem(s) in {len(docs)} resources")
        return 1
    pods = sum(1 for d in docs if d["kind"] in ("Deployment", "Job"))
    print(f"rules: {len(docs)} resources, {pods} pod templates: all rules hold")
    return 0


def check(docs: list[dict], overlay: str | None) -> list[str]:
    """Every broken rule in one overlay's rendered resources (empty: all hold)."""
    pods = [Pod(d, d["spec"]["template"]) for d in docs if d["kind"] in ("Deployment", "Job")]
    deployments = [p for p in pods if p.owner["kind"] == "Deployment"]
    report = Report()
    checks = [
        lambda: check_labels(docs, pods, report),
        lambda: check_containers(pods, report),
        lambda: check_probes(deployments, report),
        lambda: check_images(pods, overlay, report),
        lambda: check_references(docs, pods, report),
        lambda: check_workloads(docs, deployments, report),
        lambda: check_network(docs, pods, deployments, report),
    ]
    for run in checks:
        # The rules expect resources that passed their schemas; a resource that
        # did not can break a rule's reading of it: say so instead of a traceback.
        try:
            run()
        except (KeyError, TypeError, AttributeError, IndexError) as error:
            report.fail("check_rules", f"could not finish a check on malformed resources ({type(error).__name__}: {error})")
    return report.problems


if __name__ == "__main__":
    sys.exit(main())
