"""Tests of the manifest checks themselves: each rule must catch its breakage.

Run:  .venv/bin/python -m unittest tools/k8s/test_checks.py
(needs kubectl and kubernetes-validate: run tools/k8s/validate.sh once first)

Renders both overlays, checks that they pass, then breaks one thing at a time
in a copy of the rendered resources (or, once, of the k8s/ folder itself) and
checks that validate_schemas.py or check_rules.py reports exactly that.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import check_rules  # noqa: E402
import validate_schemas  # noqa: E402

K8S_VERSION = "1.32"


def render(overlay: str, k8s_dir: Path = ROOT / "k8s") -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(k8s_dir / "overlays" / overlay)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    return next(
        d for d in docs
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name or d["metadata"]["name"].startswith(name + "-"))
    )


def container(docs: list[dict], deployment: str) -> dict:
    return find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


@unittest.skipUnless(shutil.which("kubectl"), "kubectl is not installed")
class ChecksCatchBreakage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {overlay: render(overlay) for overlay in ("cpu", "gpu")}

    def problems(self, mutate, overlay: str = "cpu", schemas: bool = True) -> list[str]:
        docs = copy.deepcopy(self.rendered[overlay])
        mutate(docs)
        found = validate_schemas.validate(docs, K8S_VERSION) if schemas else []
        return found + check_rules.check(docs, overlay)

    def assertCaught(self, mutate, expected: str, overlay: str = "cpu", schemas: bool = False):
        # The schema pass is the slow one (kubernetes-validate reads its schema
        # files for every resource): only the schema tests ask for it.
        problems = self.problems(mutate, overlay, schemas)
        self.assertTrue(any(expected in p for p in problems), f"{expected!r} not in {problems}")

    def test_overlays_as_committed_pass(self):
        for overlay in ("cpu", "gpu"):
            with self.subTest(overlay=overlay):
                self.assertEqual(self.problems(lambda docs: None, overlay), [])

    # --- schemas ---------------------------------------------------------------

    def test_unknown_field_fails_strict_schema(self):
        self.assertCaught(lambda d: container(d, "facepass-gateway").__setitem__("readinessProbes", {}),
                          "'readinessProbes' was unexpected", schemas=True)

    def test_wrong_type_fails_schema(self):
        self.assertCaught(lambda d: container(d, "facepass-search")["readinessProbe"]["grpc"].__setitem__("port", "grpc"),
                          "is not of type 'integer'", schemas=True)

    def test_keda_unknown_field_and_number_in_metadata_fail(self):
        self.assertCaught(lambda d: find(d, "ScaledObject")["spec"].__setitem__("minReplicas", 1), "(KEDA v2 schema)", schemas=True)
        self.assertCaught(lambda d: find(d, "ScaledObject")["spec"]["triggers"][0]["metadata"].__setitem__("value", 50),
                          "50 is not of type 'string'", schemas=True)
        self.assertCaught(lambda d: find(d, "TriggerAuthentication")["spec"]["secretTargetRef"][0].pop("key"),
                          "'key' is a required property", schemas=True)

    def test_kind_without_schema_fails(self):
        self.assertCaught(lambda d: d.append({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                                              "metadata": {"name": "x", "namespace": "facepass"}}), "no schema", schemas=True)

    # --- security, resources, probes -----------------------------------------------

    def test_writable_root_filesystem(self):
        self.assertCaught(lambda d: container(d, "facepass-gateway")["securityContext"].__setitem__("readOnlyRootFilesystem", False),
                          "readOnlyRootFilesystem is not true")

    def test_root_user(self):
        self.assertCaught(lambda d: find(d, "Deployment", "facepass-search")["spec"]["template"]["spec"]["securityContext"]
                          .__setitem__("runAsUser", 0), "runAsUser is not 10001")

    def test_init_container_checked_too(self):
        self.assertCaught(lambda d: find(d, "Job", "facepass-migrate")["spec"]["template"]["spec"]["initContainers"][0]
                          ["securityContext"].pop("capabilities"), "capabilities.drop does not contain ALL")

    def test_missing_limit(self):
        self.assertCaught(lambda d: container(d, "facepass-embedder")["resources"]["limits"].pop("memory"),
                          "resources.limits.memory is missing")

    def test_missing_liveness_probe(self):
        self.assertCaught(lambda d: container(d, "facepass-search").pop("livenessProbe"), "has no livenessProbe")

    def test_probe_on_wrong_port(self):
        self.assertCaught(lambda d: container(d, "facepass-detector")["readinessProbe"]["grpc"].__setitem__("port", 50053),
                          "checks gRPC port 50053")

    # --- workloads, Services, autoscaling, images, references ---------------------------

    def test_missing_pdb(self):
        self.assertCaught(lambda d: d.remove(find(d, "PodDisruptionBudget", "facepass-search")), "has no PodDisruptionBudget")

    def test_embedder_service_not_headless(self):
        self.assertCaught(lambda d: find(d, "Service", "facepass-embedder-headless")["spec"].pop("clusterIP"),
                          "the embedder has no headless Service")

    def test_internal_service_exposed(self):
        self.assertCaught(lambda d: find(d, "Service", "facepass-search")["spec"].__setitem__("type", "LoadBalancer"),
                          "is exposed outside the cluster")

    def test_peer_url_names_no_service(self):
        self.assertCaught(lambda d: find(d, "ConfigMap", "facepass-config")["data"]
                          .__setitem__("FACEPASS_EMBEDDER__URL", "http://facepass-embedder:50053"), "no Service facepass-embedder")

    def test_hpa_not_on_embedder(self):
        self.assertCaught(lambda d: find(d, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].__setitem__("name", "facepass-search"),
                          "no HorizontalPodAutoscaler targets the embedder")

    def test_hpa_without_inflight_metric(self):
        self.assertCaught(lambda d: find(d, "HorizontalPodAutoscaler")["spec"]["metrics"].pop(), "facepass_embedder_inflight")

    def test_replicas_fight_the_autoscaler(self):
        self.assertCaught(lambda d: find(d, "Deployment", "facepass-indexer")["spec"].__setitem__("replicas", 1),
                          "sets replicas although ScaledObject/facepass-indexer owns the count")

    def test_keda_wrong_queue(self):
        self.assertCaught(lambda d: find(d, "ScaledObject")["spec"]["triggers"][0]["metadata"].__setitem__("queueName", "facepass.index"),
                          "is not the indexer's queue")

    def test_latest_and_unresolved_images(self):
        self.assertCaught(lambda d: container(d, "facepass-search").__setitem__("image", "ghcr.io/facepass/facepass:latest"),
                          "uses the latest tag")
        self.assertCaught(lambda d: container(d, "facepass-search").__setitem__("image", "facepass"),
                          "is not ghcr.io/facepass/facepass")
        self.assertCaught(lambda d: find(d, "Job", "facepass-models-fetch")["spec"]["template"]["spec"]["containers"][0]
                          .__setitem__("image", "ghcr.io/facepass/facepass:0.1.0"), "is not ghcr.io/facepass/facepass-tools")
        self.assertCaught(lambda d: container(d, "facepass-embedder").__setitem__("image", "ghcr.io/facepass/facepass:0.1.0"),
                          "is not ghcr.io/facepass/facepass-cuda", overlay="gpu")

    def test_secret_key_typo(self):
        self.assertCaught(lambda d: container(d, "facepass-search")["env"][1]["valueFrom"]["secretKeyRef"]
                          .__setitem__("key", "FACEPASS_DATABASE_URI"), "has no key FACEPASS_DATABASE_URI")

    def test_models_volume_writable(self):
        self.assertCaught(lambda d: container(d, "facepass-detector")["volumeMounts"][0].pop("readOnly"),
                          "mounts the volume models writable")

    def test_missing_label(self):
        self.assertCaught(lambda d: find(d, "Service", "facepass-search")["metadata"]["labels"].pop("app.kubernetes.io/component"),
                          "label app.kubernetes.io/component is missing")

    def test_gpu_overlay_without_gpu(self):
        self.assertCaught(lambda d: container(d, "facepass-embedder")["resources"]["limits"].pop("nvidia.com/gpu"),
                          "does not have nvidia.com/gpu: 1 in its limits", overlay="gpu")

    def test_gpu_requested_in_cpu_overlay(self):
        self.assertCaught(lambda d: container(d, "facepass-search")["resources"]["limits"].__setitem__("nvidia.com/gpu", 1),
                          "requests a GPU")

    # --- network paths -------------------------------------------------------------

    def test_no_default_deny(self):
        self.assertCaught(lambda d: d.remove(find(d, "NetworkPolicy", "facepass-default-deny")), "no default-deny policy")

    def test_postgres_reachable_from_indexer(self):
        self.assertCaught(lambda d: find(d, "NetworkPolicy", "facepass-indexer-egress")["spec"]["egress"]
                          .append({"ports": [{"protocol": "TCP", "port": 5432}]}),
                          "Deployment/facepass-indexer egress: reaches external ports [5432, 5672]")

    def test_egress_rule_without_ports_opens_postgres(self):
        self.assertCaught(lambda d: find(d, "NetworkPolicy", "facepass-detector-egress")["spec"]["egress"].append({}),
                          "Deployment/facepass-detector egress: reaches external ports [443, 5432, 5672, 9000]")

    def test_embedder_reachable_from_search(self):
        self.assertCaught(lambda d: find(d, "NetworkPolicy", "facepass-internal-grpc-ingress")["spec"]["ingress"][0]["from"][0]
                          ["podSelector"]["matchExpressions"][0]["values"].append("search"),
                          "reachable from ['gateway', 'indexer', 'search']")

    def test_internal_service_open_to_anyone(self):
        self.assertCaught(lambda d: find(d, "NetworkPolicy", "facepass-internal-grpc-ingress")["spec"]["ingress"][0].pop("from"),
                          "is open to anyone")

    def test_metrics_open_to_every_pod(self):
        self.assertCaught(lambda d: find(d, "NetworkPolicy", "facepass-metrics-ingress")["spec"]["ingress"][0]["from"]
                          .append({"podSelector": {}}), "metrics port 9464 is open to")

    def test_gateway_not_public(self):
        self.assertCaught(lambda d: d.remove(find(d, "NetworkPolicy", "facepass-gateway-ingress")),
                          "port 8080 is not reachable from outside")

    def test_gateway_cannot_reach_search(self):
        self.assertCaught(lambda d: find(d, "NetworkPolicy", "facepass-gateway-egress")["spec"]["egress"][0]["ports"].pop(),
                          "cannot reach the search's gRPC port 50054")

    # --- the script, end to end, on a broken copy of k8s/ ------------------------------------

    def test_validate_sh_fails_on_a_broken_copy(self):
        with tempfile.TemporaryDirectory() as tmp:
            k8s = Path(tmp) / "k8s"
            shutil.copytree(ROOT / "k8s", k8s)
            search = k8s / "base" / "search.yaml"
            search.write_text(search.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"))
            run = subprocess.run(["bash", str(HERE / "validate.sh"), str(k8s)], capture_output=True, text=True)
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("Deployment/facepass-search container search: readOnlyRootFilesystem is not true", run.stdout)
        self.assertIn("cpu: FAILED", run.stdout)


if __name__ == "__main__":
    unittest.main()
