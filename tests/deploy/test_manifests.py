"""The Kubernetes manifests in deploy/kubernetes/ against their schemas (loaded by
tests/support/manifests.py). How the manifests are validated, offline:

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
  worker's GPU and queue, KEDA aiming at that Deployment and queue (test_manifest_commands.py);
  placeholders-only Secrets, environment variables the settings read, security contexts,
  volumes (test_manifest_pods.py). docker-compose.yml: test_compose.py.
"""

from __future__ import annotations

import copy

import jsonschema
import pytest

from tests.support.manifests import DOCUMENTS, KUBERNETES_VERSIONS, deployments, doc_id, resources


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
