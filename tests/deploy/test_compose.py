"""docker-compose.yml: the GPU worker and Flower profiles, and `compose config` for each profile
where a compose client is installed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.support.data import REPO
from tests.support.manifests import option


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
    env["PATIENT_KEY_SECRET"] = "compose-config-check-only"
    flags = [word for profile in profiles for word in ("--profile", profile)]
    result = subprocess.run([*COMPOSE, *flags, "config", "-q"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
