"""The deployment files: the Kubernetes manifests in deploy/kubernetes/ and docker-compose.yml.

How the manifests are validated, offline:

- Built-in kinds (Namespace, ConfigMap, Secret, PersistentVolumeClaim, Deployment, Service) with
  ``kubernetes-validate``: the JSON schemas it bundles for each Kubernetes version, in strict mode
  (an unknown or misspelt field is an error, not silently dropped as ``kubectl apply`` would do
  on an older server), for the oldest version we support and the newest it knows.
- KEDA's ScaledObject and TriggerAuthentication: kubernetes-validate knows no CRD, and neither
  check-jsonschema's vendored schemas nor any registry package ship KEDA's CRD YAML. The
  ``cloudcoil-models-keda`` package (PyPI) ships Pydantic models generated from KEDA's CRDs
  (2.16.1, the openAPIV3Schema of keda.sh_scaledobjects / keda.sh_triggerauthentications): the
  JSON schema of those models, with every object closed (no unknown fields: what the API
  server's structural-schema pruning would drop without a word), validates the manifests.
  A CRD types a trigger's ``metadata`` only as a map of strings; what the redis scaler needs in
  it is checked against a small schema written here from KEDA's documentation of the scaler
  (keda.sh/docs/2.16/scalers/redis-lists: listName required, listLength and
  activationListLength integers as strings, address host:port).
- Then the cross-checks a schema cannot make: commands that name real entry points, the GPU
  worker's GPU and queue, KEDA aiming at that Deployment and queue, placeholders-only Secrets,
  environment variables the settings read, security contexts, volumes.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.data import REPO

MANIFESTS = REPO / "deploy" / "kubernetes"
SECRET_TEMPLATE = "secret.example.yaml"
# The oldest Kubernetes these manifests are meant for (KEDA 2.16 supports 1.29-1.31 and later)
# and the newest whose schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.31", "1.37")
PLACEHOLDER = re.compile(r"^<[^<>]+>$")

WEB_IMAGE = "pneumothorax-triage-web"
WORKER_IMAGE = "pneumothorax-triage-worker"
FLOWER_IMAGE = "mher/flower"


# --- loading ----------------------------------------------------------------------------------

def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def load_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((path.name, document))
    return documents


DOCUMENTS = load_documents()


def resources(kind: str) -> list[dict]:
    return [doc for _, doc in DOCUMENTS if doc["kind"] == kind]


def deployments() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in resources("Deployment")}


def pod_spec(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def all_containers(deployment: dict) -> list[dict]:
    spec = pod_spec(deployment)
    return spec.get("initContainers", []) + spec["containers"]


def the_secret() -> dict:
    (secret,) = resources("Secret")
    return secret


def the_configmap() -> dict:
    (configmap,) = resources("ConfigMap")
    return configmap


def doc_id(item) -> str:
    filename, document = item
    return f"{filename}:{document['kind']}/{document['metadata']['name']}"


def test_the_manifests_are_there():
    kinds = {doc["kind"] for _, doc in DOCUMENTS}
    assert {"Namespace", "Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service",
            "ScaledObject", "TriggerAuthentication"} <= kinds
    assert {"web", "worker-cpu", "worker-gpu", "dicom-sender", "reconciler",
            "dicom-listener"} <= set(deployments())


# --- schemas ----------------------------------------------------------------------------------

BUILT_IN = [item for item in DOCUMENTS if "." not in item[1]["apiVersion"].split("/")[0]
            or item[1]["apiVersion"].split("/")[0].endswith(".k8s.io")]
CUSTOM = [item for item in DOCUMENTS if item not in BUILT_IN]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("item", BUILT_IN, ids=doc_id)
def test_built_in_kinds_match_the_kubernetes_schema_strictly(item, version):
    import kubernetes_validate

    try:
        kubernetes_validate.validate(item[1], version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{doc_id(item)} against Kubernetes {version}: {exc.message} "
                    f"at {'/'.join(map(str, exc.path))}")


def closed(schema):
    """The schema with every object that lists its properties closed to others (a CRD's
    structural schema prunes unknown fields: a typo in a manifest is silently lost)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(schema)
    return schema


def keda_models():
    from cloudcoil.models.keda import v1alpha1

    return {"ScaledObject": v1alpha1.ScaledObject,
            "TriggerAuthentication": v1alpha1.TriggerAuthentication}


def keda_schema(kind: str) -> dict:
    return closed(keda_models()[kind].model_json_schema(by_alias=True))


def keda_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(keda_schema(document["kind"]))
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(document)]


@pytest.mark.parametrize("item", CUSTOM, ids=doc_id)
def test_keda_resources_match_the_schema_generated_from_kedas_crds(item):
    document = item[1]
    assert document["apiVersion"] == "keda.sh/v1alpha1", "only KEDA's CRDs are used here"
    assert document["kind"] in keda_models(), f"no schema for {document['kind']}"
    assert keda_errors(document) == []
    keda_models()[document["kind"]].model_validate(document)  # the models' own validation too


def test_the_keda_schema_is_not_vacuous():
    (scaled,) = resources("ScaledObject")
    typo = copy.deepcopy(scaled)
    typo["spec"]["minReplicaCont"] = typo["spec"].pop("minReplicaCount")
    assert any("minReplicaCont" in error for error in keda_errors(typo))
    missing = copy.deepcopy(scaled)
    del missing["spec"]["scaleTargetRef"]
    assert keda_errors(missing)
    wrong_type = copy.deepcopy(scaled)
    wrong_type["spec"]["cooldownPeriod"] = "600"
    assert keda_errors(wrong_type)


# KEDA's documentation of the redis (lists) scaler, 2.16: what a CRD cannot say about the map.
REDIS_TRIGGER_METADATA = {
    "type": "object",
    "required": ["listName"],
    "properties": {
        "address": {"type": "string", "pattern": r"^[A-Za-z0-9.-]+:\d+$"},
        "host": {"type": "string"}, "port": {"type": "string", "pattern": r"^\d+$"},
        "addressFromEnv": {"type": "string"}, "hostFromEnv": {"type": "string"},
        "portFromEnv": {"type": "string"}, "usernameFromEnv": {"type": "string"},
        "passwordFromEnv": {"type": "string"},
        "listName": {"type": "string", "minLength": 1},
        "listLength": {"type": "string", "pattern": r"^[1-9]\d*$"},
        "activationListLength": {"type": "string", "pattern": r"^\d+$"},
        "databaseIndex": {"type": "string", "pattern": r"^\d+$"},
        "enableTLS": {"enum": ["true", "false"]}, "unsafeSsl": {"enum": ["true", "false"]},
    },
    "additionalProperties": False,
    "oneOf": [{"required": ["address"]}, {"required": ["addressFromEnv"]},
              {"required": ["host", "port"]}],
}


def test_the_redis_trigger_metadata_matches_kedas_documented_parameters():
    (scaled,) = resources("ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "redis"
        jsonschema.validate(trigger["metadata"], REDIS_TRIGGER_METADATA)


# --- the GPU worker and its scaler -----------------------------------------------------------

def worker_command(deployment: dict) -> list[str]:
    (container,) = pod_spec(deployment)["containers"]
    return container["command"] + container.get("args", [])


def option(command: list[str], name: str) -> str | None:
    for index, word in enumerate(command):
        if word == name:
            return command[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def test_the_gpu_worker_takes_one_gpu_on_gpu_nodes_and_consumes_queue_gpu():
    from workers.startup import GPU_QUEUE

    gpu = deployments()["worker-gpu"]
    command = worker_command(gpu)
    assert command[:4] == ["celery", "-A", "workers", "worker"]
    assert option(command, "-Q") == GPU_QUEUE == "gpu"
    assert option(command, "--concurrency") == "1"  # one model per GPU
    (container,) = pod_spec(gpu)["containers"]
    assert container["image"] == WORKER_IMAGE
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert pod_spec(gpu)["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule"
               for t in pod_spec(gpu)["tolerations"])
    # KEDA owns the replica count: a replicas field would be reset by every apply.
    assert "replicas" not in gpu["spec"]


def test_the_cpu_worker_consumes_queue_cpu_without_a_gpu():
    cpu = deployments()["worker-cpu"]
    command = worker_command(cpu)
    assert command[:4] == ["celery", "-A", "workers", "worker"]
    assert option(command, "-Q") == "cpu"
    (container,) = pod_spec(cpu)["containers"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})


def test_the_scaled_object_scales_the_gpu_deployment_to_zero_on_the_gpu_list():
    from django.conf import settings

    (scaled,) = resources("ScaledObject")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target["name"] == "worker-gpu" and target["name"] in deployments()
    assert target.get("kind", "Deployment") == "Deployment"
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    assert spec["minReplicaCount"] == 0
    assert spec["maxReplicaCount"] >= 1
    # Not taken away from under a running job (the job leaves the list when a worker takes it).
    assert spec["cooldownPeriod"] > settings.CELERY_TASK_TIME_LIMIT
    gpu = pod_spec(deployments()["worker-gpu"])
    assert gpu["terminationGracePeriodSeconds"] > settings.CELERY_TASK_TIME_LIMIT
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "gpu"
    assert int(trigger["metadata"]["listLength"]) >= 1
    assert trigger["metadata"].get("activationListLength", "0") == "0"
    # KEDA's operator resolves the address from its own namespace: a full name.
    assert trigger["metadata"]["address"].split(":")[0].endswith(".svc.cluster.local")
    names = {auth["metadata"]["name"]: auth for auth in resources("TriggerAuthentication")}
    auth = names[trigger["authenticationRef"]["name"]]
    secret = the_secret()
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]


# --- commands ---------------------------------------------------------------------------------

def celery_app_modules() -> set[str]:
    """The -A values that name a Celery app: a module (found, not imported) that defines or
    re-exports ``app``."""
    found = set()
    for name in ("workers", "webapp.celery_app"):
        spec = importlib.util.find_spec(name)
        if spec and spec.origin and re.search(r"^(app\s*=|from .* import app\b)",
                                               Path(spec.origin).read_text(), re.M):
            found.add(name)
    return found


def check_celery_worker(command: list[str], image: str) -> None:
    from webapp.celery_app import app

    queues = {queue.name for queue in app.conf.task_queues}
    assert command[1] == "-A" and command[2] in celery_app_modules(), command
    assert command[3] == "worker", command
    consumed = set(option(command, "-Q").split(","))
    assert consumed <= queues, f"{command}: unknown queue(s) {consumed - queues}"
    if consumed & {"cpu", "gpu"}:
        # Inference loads the model: the worker app and the image with torch.
        assert command[2] == "workers" and image == WORKER_IMAGE, command
    else:
        assert command[2] == "webapp.celery_app" and image == WEB_IMAGE, command
    known = {"-A", "-Q", "worker", "--concurrency", "--loglevel", "--hostname", "-n"}
    for word in command[1:]:
        if word.startswith("-"):
            assert word.split("=", 1)[0] in known, f"{command}: unexpected option {word}"


def check_manage_py(command: list[str]) -> None:
    from django.core.management import get_commands, load_command_class

    assert command[:2] == ["python", "manage.py"], command
    name = command[2]
    commands = get_commands()
    assert name in commands, f"manage.py has no command {name!r}"
    # The command's own parser: an option it does not know fails here.
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(command[3:])


def check_gunicorn(command: list[str]) -> None:
    assert command[0] == "gunicorn"
    module = command[1]
    assert importlib.util.find_spec(module) is not None, module
    assert "application" in Path(importlib.util.find_spec(module).origin).read_text()
    config = option(command, "-c")
    assert (REPO / config).is_file(), config


def container_command(container: dict) -> list[str]:
    assert "command" in container, f"{container['name']}: say what runs, not the image default"
    return container["command"] + container.get("args", [])


@pytest.mark.parametrize("name", sorted(deployments()))
def test_every_container_runs_a_real_entry_point(name):
    for container in all_containers(deployments()[name]):
        command = container_command(container)
        image = container["image"]
        if command[0] == "celery" and image.startswith(FLOWER_IMAGE):
            assert command[1] == "flower" and "-A" not in command, command
        elif command[0] == "celery":
            check_celery_worker(command, image)
        elif command[0] == "python":
            assert image == WEB_IMAGE, f"{command}: the web image has what manage.py needs"
            check_manage_py(command)
        elif command[0] == "gunicorn":
            assert image == WEB_IMAGE
            check_gunicorn(command)
        else:
            pytest.fail(f"{name}: unknown entry point {shlex.join(command)}")


def test_the_dicom_sender_and_the_reconciler():
    sender = worker_command(deployments()["dicom-sender"])
    assert sender[:4] == ["celery", "-A", "webapp.celery_app", "worker"]
    assert option(sender, "-Q") == "dicom"
    reconciler = deployments()["reconciler"]
    assert reconciler["spec"]["replicas"] == 1
    assert worker_command(reconciler)[:3] == ["python", "manage.py", "reconcile_jobs"]


# --- secrets and environment ------------------------------------------------------------------

def test_the_secret_holds_placeholders_only():
    secret = the_secret()
    assert "data" not in secret, "base64 values could hide real ones: stringData placeholders"
    assert set(secret["stringData"]) >= {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL",
                                         "METRICS_TOKEN", "FLOWER_BASIC_AUTH"}
    for key, value in secret["stringData"].items():
        assert PLACEHOLDER.match(value), f"{key}: not a <placeholder>: {value!r}"


def settings_variables() -> set[str]:
    """Every environment variable webapp/settings reads (env("X"), env.int("X", ...)...)."""
    names = set()
    for path in (REPO / "webapp" / "settings").glob("*.py"):
        names |= set(re.findall(r"\benv(?:\.\w+)?\(\s*[\"']([A-Z0-9_]+)[\"']", path.read_text()))
    return names


def gunicorn_variables() -> set[str]:
    text = (REPO / "deploy" / "gunicorn.conf.py").read_text()
    return set(re.findall(r"os\.environ\.get\(\s*[\"']([A-Z0-9_]+)[\"']", text))


# Read by Celery without an app (broker) and by Flower (its FLOWER_<option> variables: options
# basic_auth, purge_offline_workers), in the Flower container only.
FLOWER_VARIABLES = {"CELERY_BROKER_URL", "FLOWER_BASIC_AUTH", "FLOWER_PURGE_OFFLINE_WORKERS"}


def test_settings_variables_are_found():
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "INFERENCE_QUEUE",
            "PRIVATE_MEDIA_ROOT"} <= settings_variables()


@pytest.mark.parametrize("name", sorted(deployments()))
def test_every_variable_set_is_one_the_code_reads(name):
    deployment = deployments()[name]
    configmap = the_configmap()
    secret = the_secret()
    for container in all_containers(deployment):
        names = set()
        for source in container.get("envFrom", []):
            assert set(source) == {"configMapRef"}, "the whole Secret goes to no container"
            assert source["configMapRef"]["name"] == configmap["metadata"]["name"]
            names |= set(configmap["data"])
        for variable in container.get("env", []):
            names.add(variable["name"])
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"]
                assert ref["key"] in secret["stringData"], ref
        if container["image"].startswith(FLOWER_IMAGE):
            assert names <= FLOWER_VARIABLES, names - FLOWER_VARIABLES
            continue
        readers = settings_variables() | {"DJANGO_SETTINGS_MODULE"}
        if container_command(container)[0] == "gunicorn":
            readers |= gunicorn_variables()
        assert names <= readers, f"{name}/{container['name']}: nothing reads {names - readers}"
        assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= names, (
            "webapp.settings.production requires them")


def test_the_configmap_matches_the_pods():
    data = the_configmap()["data"]
    assert data["DJANGO_SETTINGS_MODULE"] == "webapp.settings.production"
    assert data["INFERENCE_QUEUE"] in {"cpu", "gpu"}
    assert data["DJANGO_SECURE_SSL_REDIRECT"] == "true"
    for name, deployment in deployments().items():
        for container in pod_spec(deployment)["containers"]:
            mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
            if "media" in mounts:
                assert mounts["media"]["mountPath"] == data["PRIVATE_MEDIA_ROOT"], name
            if container["image"] == WORKER_IMAGE:
                assert mounts["models"]["readOnly"] is True
                models = Path(mounts["models"]["mountPath"])
                assert Path(data["PNEUMOTHORAX_MODEL"]).parent == models


# --- pods: security, storage, probes, services ------------------------------------------------

@pytest.mark.parametrize("name", sorted(deployments()))
def test_pods_run_unprivileged_on_a_read_only_root(name):
    spec = pod_spec(deployments()[name])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not spec.get("hostNetwork") and not spec.get("hostPID")
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for container in all_containers(deployments()[name]):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context.get("privileged")
        # Python's tempfile, gunicorn's heartbeat, uploads over 5 MB, worker metrics: /tmp.
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{name}: no writable /tmp"


def test_shared_storage_is_read_write_many():
    claims = {claim["metadata"]["name"]: claim for claim in resources("PersistentVolumeClaim")}
    for name, deployment in deployments().items():
        for volume in pod_spec(deployment).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = claims[volume["persistentVolumeClaim"]["claimName"]]
                assert claim["spec"]["accessModes"] == ["ReadWriteMany"], name


def test_the_web_probes_use_a_page_the_app_serves():
    from django.urls import resolve

    (web,) = pod_spec(deployments()["web"])["containers"]
    probe = web["readinessProbe"]["httpGet"]
    match = resolve(probe["path"])
    assert match.url_name == "login"
    assert getattr(match.func, "login_required", True) is False  # no session needed
    headers = {h["name"]: h["value"] for h in probe["httpHeaders"]}
    assert headers["X-Forwarded-Proto"] == "https"  # no redirect to HTTPS
    assert headers["Host"] in the_configmap()["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    # A database outage must not restart the web: liveness does not go through Django.
    assert "tcpSocket" in web["livenessProbe"]


def test_services_reach_their_pods():
    for service in resources("Service"):
        selected = [d for d in deployments().values()
                    if service["spec"]["selector"].items()
                    <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(selected) == 1, service["metadata"]["name"]
        ports = {port["name"]: port for c in pod_spec(selected[0])["containers"]
                 for port in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]


def test_the_dicom_listener_service_keeps_the_callers_address():
    (service,) = [s for s in resources("Service") if s["metadata"]["name"] == "dicom-listener"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["externalTrafficPolicy"] == "Local"  # nodes are registered by address
    assert service["spec"]["loadBalancerSourceRanges"]
    assert [p["port"] for p in service["spec"]["ports"]] == [11112]
    (listener,) = pod_spec(deployments()["dicom-listener"])["containers"]
    env = {v["name"]: v.get("value") for v in listener["env"]}
    assert env["DICOM_PORT"] == "11112"


# --- kustomization ----------------------------------------------------------------------------

def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert SECRET_TEMPLATE not in listed, "applying it would overwrite the real Secret"
    assert sorted(listed) == sorted(p.name for p in manifest_files() if p.name != SECRET_TEMPLATE)
    assert listed[0] == "namespace.yaml"
    images = {image["name"] for image in kustomization["images"]}
    used = {c["image"] for d in deployments().values() for c in all_containers(d)}
    assert {WEB_IMAGE, WORKER_IMAGE} <= images and {WEB_IMAGE, WORKER_IMAGE} <= used


@pytest.mark.skipif(not shutil.which("kubectl"), reason="no kubectl: kustomize rendering not run")
def test_kustomize_renders_the_base():
    result = subprocess.run(["kubectl", "kustomize", str(MANIFESTS)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert all(doc["metadata"].get("namespace") == "pneumothorax-triage" for doc in rendered
               if doc["kind"] != "Namespace")
    assert not [doc for doc in rendered if doc["kind"] == "Secret"]


# --- docker-compose ---------------------------------------------------------------------------

def compose_file() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_gpu_worker_and_flower():
    services = compose_file()["services"]
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["command"][:4] == ["celery", "-A", "workers", "worker"]
    assert option(gpu["command"], "-Q") == "gpu" and option(gpu["command"], "--concurrency") == "1"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert "${INFERENCE_QUEUE:-cpu}" in services["web"]["environment"]["INFERENCE_QUEUE"]
    flower = services["flower"]
    assert flower["profiles"] == ["monitoring"]
    assert all(str(port).startswith("127.0.0.1:") for port in flower["ports"])
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert 'test -n "$$FLOWER_BASIC_AUTH"' in " ".join(flower["command"])  # refuses without


def compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


COMPOSE = compose_client()


@pytest.mark.skipif(COMPOSE is None, reason="no compose client (docker-compose or docker compose)")
@pytest.mark.parametrize("profiles", [[], ["gpu"], ["pacs"], ["monitoring"],
                                      ["gpu", "pacs", "monitoring"]],
                         ids=lambda p: "+".join(p) or "default")
def test_docker_compose_config_is_valid(profiles):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLOWER_"))}
    env["DJANGO_SECRET_KEY"] = "compose-config-check-only"
    flags = [word for profile in profiles for word in ("--profile", profile)]
    result = subprocess.run([*COMPOSE, *flags, "config", "-q"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
