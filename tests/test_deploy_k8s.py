"""deploy/k8s: every manifest validates against the Kubernetes API schemas (kubernetes-validate, strict), and the
base and the example overlay render with `kubectl kustomize` (where kubectl is too old, with a kustomize-style
renderer that a test holds equal to kubectl's output) into what an ops engineer relies on: probes on the
health endpoints, a worker per queue, one beat that is never doubled, requests on every container, a PDB and
an HPA that select the web pods."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest version still supported by the main cloud providers


def _validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _kubectl_with_kustomize_v4_or_later() -> str | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True).stdout
    match = re.search(r"Kustomize Version: v(\d+)", out)
    return kubectl if match and int(match.group(1)) >= 4 else None


KUBECTL = _kubectl_with_kustomize_v4_or_later()
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None,
    reason="no kubectl with kustomize v4+ (Debian bookworm's kubernetes-client 1.20 embeds kustomize v2, which "
    "reads neither `labels` nor `patches`); the manifests are rendered by the kustomize-style renderer below",
)


def _kubectl_render(path: Path) -> list[dict]:
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, check=True)
    assert "Warning" not in result.stderr, result.stderr  # no deprecated kustomize fields
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _merge(base, patch):
    """A strategic merge as far as our patches need it: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: _merge(base[k], v) if k in base else v for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        named = {item["name"]: item for item in patch}
        merged = [_merge(item, named.pop(item["name"])) if item.get("name") in named else item for item in base]
        return merged + list(named.values())
    return patch


def _python_render(path: Path) -> list[dict]:
    """What `kubectl kustomize` does with the fields our kustomizations use (resources, namespace, labels with
    templates, images, patches by kind and name, secretGenerator replacing from env files), for machines whose
    kubectl is too old; test_python_render_matches_kubectl keeps it faithful where both exist."""
    spec = yaml.safe_load((path / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in spec.get("resources", []):
        target = path / resource
        if target.is_dir():
            docs += _python_render(target)
        else:
            docs += [d for d in yaml.safe_load_all(target.read_text()) if d]
    for entry in spec.get("patches", []):
        patch = yaml.safe_load_all((path / entry["path"]).read_text())
        for part in patch:
            for i, doc in enumerate(docs):
                if (doc["kind"], doc["metadata"]["name"]) == (part["kind"], part["metadata"]["name"]):
                    docs[i] = _merge(doc, part)
    for generator in spec.get("secretGenerator", []):
        pairs = {}
        for env_file in generator.get("envs", []):
            for line in (path / env_file).read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    pairs[key] = base64.b64encode(value.encode()).decode()
        for doc in docs:
            if (doc["kind"], doc["metadata"]["name"]) == ("Secret", generator["name"]):
                doc.pop("stringData", None)
                doc["data"] = pairs
    for label_set in spec.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label_set["pairs"])
            template = doc.get("spec", {}).get("template")
            if label_set.get("includeTemplates") and template:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(label_set["pairs"])
    for image in spec.get("images", []):
        for doc in docs:
            for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def _render(path: Path) -> list[dict]:
    return _kubectl_render(path) if KUBECTL else _python_render(path)


def _by_kind_name(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_every_base_manifest_validates_on_its_own():
    files = sorted((K8S / "base").glob("*.yaml"))
    assert len(files) >= 12
    for path in files:
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            _validate(doc)


def test_the_validator_rejects_a_broken_manifest():
    web = yaml.safe_load((K8S / "base" / "web-deployment.yaml").read_text())
    web["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(web)
    web = yaml.safe_load((K8S / "base" / "web-deployment.yaml").read_text())
    web["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/health/live"
    with pytest.raises(kubernetes_validate.ValidationError):  # strict: an unknown field is an error
        _validate(web)


@pytest.mark.parametrize("target", ["base", "overlays/example"])
def test_kustomize_renders_valid_manifests(target):
    docs = _render(K8S / target)
    for doc in docs:
        _validate(doc)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("Deployment", "evpay-web"),
        ("Service", "evpay-web"),
        ("Deployment", "evpay-worker"),
        ("Deployment", "evpay-worker-webhooks"),
        ("Deployment", "evpay-beat"),
        ("Job", "evpay-migrate"),
        ("ConfigMap", "evpay-config"),
        ("Secret", "evpay-secrets"),
        ("PodDisruptionBudget", "evpay-web"),
        ("HorizontalPodAutoscaler", "evpay-web"),
    } <= kinds


def _pod_specs(docs):
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]


def test_rendered_overlay_is_what_operations_rely_on():
    docs = _render(K8S / "overlays" / "example")
    objects = _by_kind_name(docs)
    web = objects[("Deployment", "evpay-web")]
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"

    beat = objects[("Deployment", "evpay-beat")]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert beat["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["command"] == [
        "/app/scripts/healthcheck-beat.sh"
    ]
    queues = {
        name: objects[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["args"]
        for name in ("evpay-worker", "evpay-worker-webhooks")
    }
    assert queues["evpay-worker"][queues["evpay-worker"].index("-Q") + 1] == "celery"
    assert queues["evpay-worker-webhooks"][queues["evpay-worker-webhooks"].index("-Q") + 1] == "webhooks,webhooks_retry"
    assert objects[("Deployment", "evpay-worker-webhooks")]["spec"]["replicas"] == 3  # the overlay's patch

    for doc, template in _pod_specs(docs):
        assert doc["metadata"]["namespace"] == "evpay"
        for c in template["spec"]["containers"]:
            assert c["image"] == "registry.example.com/evpay:0.1.0", doc["metadata"]["name"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), doc["metadata"]["name"]
            # `args`, never `command`: the image's entry point clears stale metrics files before the process.
            assert "command" not in c and c["args"], doc["metadata"]["name"]
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True

    web_labels = web["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget",):
        selector = objects[(kind, "evpay-web")]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= web_labels.items()
    assert objects[("Service", "evpay-web")]["spec"]["selector"].items() <= web_labels.items()
    hpa = objects[("HorizontalPodAutoscaler", "evpay-web")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "evpay-web"}
    assert hpa["minReplicas"] >= 2  # with the PDB's minAvailable 1, a drain never empties web

    config = objects[("ConfigMap", "evpay-config")]["data"]
    assert config["DJANGO_SETTINGS_MODULE"] == "evpay.settings.production"
    assert config["ALLOWED_HOSTS"].startswith("pay.example-cpo.com")  # the overlay's patch
    secret = objects[("Secret", "evpay-secrets")]
    assert "SECRET_KEY" in (secret.get("data") or secret.get("stringData"))


@needs_kubectl
@pytest.mark.parametrize("target", ["base", "overlays/example"])
def test_python_render_matches_kubectl(target):
    def key(doc):
        return doc["kind"], doc["metadata"]["name"]

    assert sorted(map(key, _python_render(K8S / target))) == sorted(map(key, _kubectl_render(K8S / target)))

    def decoded(doc):  # kubectl wraps long base64 values over lines
        if doc["kind"] == "Secret" and "data" in doc:
            doc = {**doc, "data": {k: base64.b64decode("".join(v.split())) for k, v in doc["data"].items()}}
        return doc

    rendered = {key(d): decoded(d) for d in _kubectl_render(K8S / target)}
    for doc in _python_render(K8S / target):
        assert decoded(doc) == rendered[key(doc)], key(doc)


def test_every_setting_in_the_config_map_is_a_setting_of_evpay():
    """A misspelt key in the ConfigMap would be silently ignored."""
    example = (ROOT / ".env.example").read_text()
    known = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M)) | {"DJANGO_SETTINGS_MODULE"}
    for path in (K8S / "base" / "configmap.yaml", K8S / "overlays" / "example" / "config.yaml"):
        keys = set(yaml.safe_load(path.read_text())["data"])
        assert keys <= known, keys - known


def test_a_worker_serves_its_own_metrics_where_it_shares_no_directory_with_web(monkeypatch):
    """Kubernetes worker pods set CELERY_WORKER_METRICS_PORT; Prometheus scrapes them like web pods."""
    import socket

    import requests

    from evpay.celery import _serve_worker_metrics

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CELERY_WORKER_METRICS_PORT", str(port))
    _serve_worker_metrics()
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "python_info" in text
    assert "evpay_payment_intents" not in text  # the database figures are web's alone
