"""What can be checked of the deployment without a Docker engine."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from convlens.app.main import create_app

ROOT = Path(__file__).resolve().parent.parent


def routes() -> set[str]:
    return set(create_app().openapi()["paths"])


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    out = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_is_multistage_nonroot_with_exec_entrypoint_and_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "download.pytorch.org/whl/cpu" in text and "torch==2.13.0" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r'^ENTRYPOINT \["python", "-m", "convlens.app.serve"\]', text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*healthz", text, re.M)
    assert "PORT=8000" in text


def test_dockerignore_keeps_tests_data_and_caches_out():
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and ln[0] != "#"]
    assert lines[0] == "*"  # deny everything, then allow what the image needs
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert "**/__pycache__" in lines
    assert allowed == {"convlens", "app", "model", "weights", "pyproject.toml", "README.md"}


def test_kubernetes_manifests_reference_real_probe_paths_and_port():
    docs = list(yaml.safe_load_all((ROOT / "deploy/deployment.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    port = container["ports"][0]["containerPort"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["PORT"]) == port
    paths = routes()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in paths
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]


def test_compose_file_parses_and_maps_the_port():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    svc = compose["services"]["convlens"]
    assert svc["environment"]["PORT"] == "8000" and "8000:8000" in svc["ports"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/v1/predict", "/v1/model"])
def test_documented_paths_exist(path):
    assert path in routes()


def test_manifests_validate_against_the_kubernetes_schemas_offline():
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    for doc in yaml.safe_load_all((ROOT / "deploy/deployment.yaml").read_text()):
        kubernetes_validate.validate(doc, version, strict=True)
    # KServe's InferenceService is a custom resource without a bundled schema: its
    # containers are validated as a Pod's, the rest checked by hand
    service = yaml.safe_load((ROOT / "deploy/kserve-inferenceservice.yaml").read_text())
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    containers = service["spec"]["predictor"]["containers"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": {"containers": containers}}
    kubernetes_validate.validate(pod, version, strict=True)
    container = containers[0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PORT"] == str(container["ports"][0]["containerPort"])
    assert container["readinessProbe"]["httpGet"]["path"] in routes() and "/v2/health/ready" in routes()
    assert container["livenessProbe"]["httpGet"]["path"] in routes()
    with pytest.raises(kubernetes_validate.ValidationError):  # the check can fail
        kubernetes_validate.validate(
            {**pod, "spec": {"containers": [{"name": "x", "imag": "y"}]}}, version, strict=True
        )
