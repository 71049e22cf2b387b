"""The Kubernetes manifests of deploy/kubernetes/, loaded once, and what the manifest tests share
(tests/deploy/test_manifest*.py, test_compose.py): the documents, the deployments and their pod
specs, the Secret and the ConfigMap, the images' names, and reading a container's command."""

from __future__ import annotations

import re
from pathlib import Path

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


# --- commands ---------------------------------------------------------------------------------

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


def container_command(container: dict) -> list[str]:
    assert "command" in container, f"{container['name']}: say what runs, not the image default"
    return container["command"] + container.get("args", [])
