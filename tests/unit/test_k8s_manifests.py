"""deploy/k8s/, rendered by kustomize as `kubectl apply -k` would render it, checked
offline: every document against the API schemas of one Kubernetes release (strict:
an unknown field is an error), then what serving relies on: gRPC probes on the
health service, the Services' port, autoscaling and disruption budget over the
Deployment's pods, and a config map that our own loader accepts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from server.cli import build_parser
from server.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.32.0"  # schemas shipped in kubernetes-validate; sleep preStop is on from 1.30
RENDERED = ("", "overlays/postgres", "overlays/prebuilt-models")
Docs = dict[str, dict[str, Any]]


def render(path: str) -> Docs:
    """The documents of `kubectl kustomize deploy/k8s/<path>`, by "Kind/name"."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomizations cannot be rendered")
    done = subprocess.run([kubectl, "kustomize", str(K8S / path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    by_name = {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}
    assert len(by_name) == len(docs), "two documents of one kind share a name"
    return by_name


@pytest.fixture(scope="module", params=RENDERED, ids=lambda p: p or "base")
def docs(request: pytest.FixtureRequest) -> Docs:
    return render(request.param)


def _one(docs: Docs, kind: str) -> dict[str, Any]:
    (doc,) = [d for key, d in docs.items() if key.startswith(f"{kind}/")]
    return doc


def _named(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    return docs[f"{kind}/{name}"]


def _pod(docs: Docs) -> dict[str, Any]:
    return _named(docs, "Deployment", "aftercare")["spec"]["template"]


def _server(docs: Docs) -> dict[str, Any]:
    (container,) = [c for c in _pod(docs)["spec"]["containers"] if c["name"] == "aftercare"]
    return container


def _port(container: dict[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return int(port)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def pod_config(docs: Docs, tmp_path: Path) -> Config:
    """The config the server container loads: each `--config` file from the volume
    mounted there (config map key or the example of the secret's), then its env."""
    container, spec = _server(docs), _pod(docs)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    command = container["command"]
    assert command[0] == "aftercare"
    args = build_parser().parse_args(command[1:])  # what `aftercare` makes of it
    assert args.command == "serve"
    files = []
    for config_file in args.config:
        path = Path(config_file)
        volume = mounts[str(path.parent)]  # a file of a mounted volume, not of the image
        if "configMap" in volume:
            data = _named(docs, "ConfigMap", volume["configMap"]["name"])["data"]
            text = data[path.name]
        else:
            assert volume["secret"]["secretName"] == "aftercare-auth"
            text = (K8S / "base" / "auth.example.toml").read_text()
        files.append(tmp_path / f"{len(files)}-{path.name}")
        files[-1].write_text(text)
    return load_config(files, environ=_env(container))


def test_every_document_passes_the_api_schemas(docs: Docs) -> None:
    kinds = sorted(key.split("/")[0] for key in docs)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "Service", "Service"]
    for key, doc in docs.items():
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.path))
            pytest.fail(f"{key}: {path}: {exc.message}")


def test_probes_ask_the_grpc_health_service_on_the_serving_port(docs: Docs,
                                                                tmp_path: Path) -> None:
    container = _server(docs)
    config = pod_config(docs, tmp_path)
    assert _port(container, "grpc") == config.server.port == 50051
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        assert spec["grpc"] == {"port": config.server.port}, probe  # service "" = overall
        assert not {"httpGet", "tcpSocket", "exec"} & spec.keys(), probe
    # Warm-up (models, shop index, kernels) happens under the startup probe, not liveness.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_services_expose_grpc_as_h2c_to_the_pods(docs: Docs) -> None:
    labels = _pod(docs)["metadata"]["labels"]
    container = _server(docs)
    for name in ("aftercare", "aftercare-headless"):
        spec = _named(docs, "Service", name)["spec"]
        assert spec["selector"].items() <= labels.items(), name
        (grpc_port,) = [p for p in spec["ports"] if p["name"] == "grpc"]
        assert grpc_port["appProtocol"] == "kubernetes.io/h2c", name
        assert grpc_port["port"] == 50051, name
        assert _port(container, grpc_port["targetPort"]) == 50051, name
    assert _named(docs, "Service", "aftercare-headless")["spec"]["clusterIP"] == "None"
    assert _named(docs, "Service", "aftercare")["spec"].get("clusterIP") != "None"


def test_autoscaler_and_disruption_budget_cover_the_deployment(docs: Docs) -> None:
    deployment = _named(docs, "Deployment", "aftercare")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    hpa = _one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "aftercare"}
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    cpu = metric["resource"]
    assert cpu["name"] == "cpu" and cpu["target"]["type"] == "Utilization"
    assert _server(docs)["resources"]["requests"]["cpu"]  # utilization is of the request
    pdb = _one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # A budget that allows no disruption at minReplicas would block every node drain.
    assert pdb["spec"].get("maxUnavailable", 0) >= 1 or (
        pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"])


def test_the_config_map_is_a_valid_config_for_many_replicas(docs: Docs,
                                                            tmp_path: Path) -> None:
    container = _server(docs)
    config = pod_config(docs, tmp_path)
    assert config.server.host == "0.0.0.0"
    assert config.server.max_connection_age_ms > 0  # connections rebalance over replicas
    assert config.server.max_connection_age_grace_ms > 0
    assert config.metrics.port == _port(container, "metrics")
    termination = _pod(docs)["spec"]["terminationGracePeriodSeconds"]
    assert config.server.grace_s + container["lifecycle"]["preStop"]["sleep"]["seconds"] < (
        termination)
    assert config.auth.enabled  # fail closed; keys and JWT secret from the secret
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    # The example secret's JWT key file is a key of that same secret volume.
    assert str(Path(config.auth.jwt.hs256_secret_file).parent) == mounts["auth"]["mountPath"]
    assert config.models.repository == mounts["models"]["mountPath"]
    assert mounts["models"].get("readOnly") is True
    state = mounts["state"]["mountPath"]
    for path in (config.records.path, config.retrieval.index_dir, config.data.demo_dir,
                 config.data.quarantine_dir):
        assert Path(path).is_relative_to(state), path  # the image's own files are read-only
    cpus = int(container["resources"]["limits"]["cpu"])
    assert config.classifier_batcher.concurrency == config.embedder_batcher.concurrency == cpus


def test_models_come_from_the_init_container_or_a_prebuilt_volume(docs: Docs,
                                                                  tmp_path: Path) -> None:
    spec = _pod(docs)["spec"]
    config = pod_config(docs, tmp_path)
    (models,) = [v for v in spec["volumes"] if v["name"] == "models"]
    inits = spec.get("initContainers") or []
    if "emptyDir" in models:
        (init,) = inits
        assert init["command"] == ["aftercare", "models", "ensure", "--repository",
                                   config.models.repository]
        (mount,) = [m for m in init["volumeMounts"] if m["name"] == "models"]
        assert mount["mountPath"] == config.models.repository and not mount.get("readOnly")
    else:
        assert models["persistentVolumeClaim"] == {"claimName": "aftercare-models",
                                                   "readOnly": True}
        assert not inits


def test_postgres_overlay_names_the_database(tmp_path: Path) -> None:
    docs = render("overlays/postgres")
    container = _server(docs)
    url = _env(container)["AFTERCARE_RECORDS__URL"]  # = [records] url
    parts = urlsplit(url)
    assert parts.scheme == "postgresql" and parts.hostname and parts.port
    assert parts.username and parts.path.strip("/")
    assert parts.password is None  # never in a manifest
    (password,) = [e for e in container["env"] if e["name"] == "PGPASSWORD"]
    assert password["valueFrom"]["secretKeyRef"]["name"] == "aftercare-postgres"
    config = pod_config(docs, tmp_path)
    assert config.records.url == url
    assert "AFTERCARE_RECORDS__URL" not in _env(_server(render("")))
