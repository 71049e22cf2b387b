"""The manifests' pods and configuration: placeholders-only Secret, every environment variable
one the code reads, the ConfigMap agreeing with the mounts, unprivileged read-only pods, shared
storage, probes, services, and a kustomization that lists every manifest but the Secret template."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.data import REPO
from tests.support.manifests import (FLOWER_IMAGE, MANIFESTS, PLACEHOLDER, SECRET_TEMPLATE,
                                     WEB_IMAGE, WORKER_IMAGE, all_containers, container_command,
                                     deployments, manifest_files, pod_spec, resources,
                                     the_configmap, the_secret)


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
