"""deploy/kubernetes as shipped: rendered with `kubectl kustomize`, every object validated
strictly against Kubernetes 1.30's schemas (kubernetes-validate), and checked against a
real server: the autoscalers' metrics are in its /metrics, the probes' paths answer as the
manifests expect, and the drain fits in the grace period."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
VARIANTS = ["", "overlays/cpu", "overlays/keda", "overlays/host-network"]
KUBERNETES_VERSION = "1.30.0"
CRDS = {("keda.sh/v1alpha1", "ScaledObject")}  # not in Kubernetes' own schemas: checked by hand below


def render(variant: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: deploy/kubernetes is rendered with `kubectl kustomize`")
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES / variant)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind]
    return found


def server_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def flag(container: dict[str, Any], name: str) -> str:
    [value] = [arg.split("=", 1)[1] for arg in container["args"] if arg.startswith(f"--{name}=")]
    return value


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v or "gpu")
def test_every_object_is_valid_kubernetes(variant):
    import kubernetes_validate

    objects = render(variant)
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CRDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)  # raises on any unknown or bad field
        assert obj["metadata"]["namespace"] == "facestream" or obj["kind"] == "Namespace"


def test_the_gpu_deployment_as_shipped():
    objects = render("")
    assert {o["kind"] for o in objects} == {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler",
                                            "PodDisruptionBudget", "NetworkPolicy", "PersistentVolumeClaim"}
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = server_container(objects)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1  # one server per GPU
    assert flag(container, "provider") == "cuda" and flag(container, "models-dir") == "/models"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The token file from a Secret, never an env value.
    assert not any("TOKEN" in env["name"].upper() for env in container.get("env", []))
    tokens = Path(flag(container, "token-file"))
    mount = next(m for m in container["volumeMounts"] if tokens.is_relative_to(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "facestream-tokens"
    # Models: an init container fills the volume the server reads.
    [init] = pod["initContainers"]
    assert init["command"][-4:] == ["models", "fetch", "--models-dir", "/models"]
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]
    policy = one(objects, "NetworkPolicy")["spec"]
    allowed = [(port.get("protocol"), port.get("port")) for rule in policy["ingress"] for port in rule["ports"]]
    assert ("TCP", 8765) in allowed and ("UDP", None) in allowed  # HTTP (WebSocket, WHIP), and WebRTC's media
    cpu = server_container(render("overlays/cpu"))
    assert flag(cpu, "provider") == "cpu" and "nvidia.com/gpu" not in cpu["resources"]["limits"]
    assert one(render("overlays/host-network"), "Deployment")["spec"]["template"]["spec"]["hostNetwork"] is True


def test_the_drain_fits_in_the_grace_period():
    """preStop drains and waits for the server to exit, which it does at the latest after
    --drain-timeout; Kubernetes must not SIGKILL it before."""
    objects = render("")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = server_container(objects)
    drain_timeout = float(flag(container, "drain-timeout"))
    hook = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "kill -USR1 1" in hook and "while kill -0 1" in hook  # drain, then wait for PID 1 (the server)
    assert pod["terminationGracePeriodSeconds"] >= drain_timeout + 15
    rollout = one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0  # a new pod is ready before an old one drains
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_the_ingress_outlasts_the_servers_timeouts():
    objects = render("")
    annotations = one(objects, "Ingress")["metadata"]["annotations"]
    idle_timeout = float(flag(server_container(objects), "idle-timeout"))
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        assert float(annotations[f"nginx.ingress.kubernetes.io/{name}"]) > idle_timeout
    body = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    from server.config import ServerConfig
    assert int(body.rstrip("m")) * 1024 * 1024 >= ServerConfig().max_message_bytes
    assert one(objects, "Ingress")["spec"]["tls"][0]["secretName"] == "facestream-tls"


def autoscaler_metrics() -> set[str]:
    """Every metric an autoscaler of the shipped variants names."""
    hpa = one(render(""), "HorizontalPodAutoscaler")
    names = {metric["pods"]["metric"]["name"] for metric in hpa["spec"]["metrics"]}
    adapter = yaml.safe_load((KUBERNETES / "prometheus-adapter-rules.yaml").read_text())
    for rule in adapter["rules"]["custom"]:
        names.add(rule["name"]["as"])
        names.add(re.match(r"(\w+)\{", rule["seriesQuery"]).group(1))
    scaled = one(render("overlays/keda"), "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == one(render(""), "Deployment")["metadata"]["name"]
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "prometheus"
        names.update(re.findall(r"(facestream_\w+)\{", trigger["metadata"]["query"]))
    return names


async def test_the_autoscalers_metrics_and_the_probes_against_a_real_server(start_server, http):
    named = autoscaler_metrics()
    assert named >= {"facestream_connected_clients", "facestream_device_busy_ratio"}
    server = await start_server()
    async with http.get(server.make_url("/metrics")) as response:
        exported = {line.split("{")[0].split(" ")[0] for line in (await response.text()).splitlines()
                    if line and not line.startswith("#")}
    assert named <= exported, f"named by an autoscaler but not in /metrics: {named - exported}"

    container = server_container(render(""))
    ready, alive = container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]
    async with http.get(server.make_url(ready)) as response:
        assert response.status == 200
    async with http.post(server.make_url("/admin/drain")) as response:  # what the preStop hook's SIGUSR1 does
        assert response.status == 202
    async with http.get(server.make_url(ready)) as response:
        assert response.status == 503  # draining: the Service stops sending it clients
    async with http.get(server.make_url(alive)) as response:
        assert response.status == 200  # but alive: Kubernetes must not restart it mid-drain


def test_the_images_run_as_a_user_and_check_their_health():
    for name in ("Dockerfile", "Dockerfile.cpu"):
        text = (ROOT / "deploy" / "docker" / name).read_text()
        assert re.search(r"^USER 10001", text, re.MULTILINE), name
        assert "HEALTHCHECK" in text and "/healthz" in text, name
    gpu = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert gpu.index("pip install --no-cache-dir .") < gpu.index("pip install --no-cache-dir onnxruntime-gpu")
    pod = one(render(""), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001  # the images' user
