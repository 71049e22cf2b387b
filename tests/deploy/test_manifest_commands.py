"""The manifests' workloads: each container runs a real entry point (a Celery app and queue that
exist, a manage.py command and options it parses, gunicorn's WSGI module and config), the GPU
worker takes one GPU and queue gpu, and KEDA scales that Deployment to zero on that list."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from tests.support.data import REPO
from tests.support.manifests import (FLOWER_IMAGE, WEB_IMAGE, WORKER_IMAGE, all_containers,
                                     container_command, deployments, option, pod_spec, resources,
                                     the_secret, worker_command)


# --- the GPU worker and its scaler -----------------------------------------------------------

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
    assert option(sender, "-Q").split(",") == ["dicom", "alerts"]  # PACS results and alerts
    reconciler = deployments()["reconciler"]
    assert reconciler["spec"]["replicas"] == 1
    assert worker_command(reconciler)[:3] == ["python", "manage.py", "reconcile_jobs"]
