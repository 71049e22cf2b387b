"""Deployment checks as separate processes, the way an operator runs them."""

import os
import subprocess
import sys

import pytest

from tests.support.data import REPO

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "webapp.settings.production",
    "DJANGO_SECRET_KEY": "k2#Jd8!qv0zR$uT7wYp3@xL9mN4&bC6eF1gH5jK8lP0oI2uY7tR4eW9qA3sD6fG",
    "DJANGO_ALLOWED_HOSTS": "triage.example.org",
    "DATABASE_URL": "postgres://triage@db.example.org:5432/triage",
    "CELERY_BROKER_URL": "redis://redis.example.org:6379/0",
    # Links films to patients (webapp.cases.services.patients): check --deploy fails without it.
    "PATIENT_KEY_SECRET": "pV3#kq9!Tz1$wX8@mN2&bR7eY4uJ6hL0sD5fG",
}


def test_check_deploy_with_production_settings_is_clean():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=REPO,
                            env={**env, **PRODUCTION_ENV}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in {**os.environ, **PRODUCTION_ENV}.items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_worker_refuses_to_start_without_a_model(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
           "PNEUMOTHORAX_MODEL": str(tmp_path / "missing.safetensors")}
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "cpu",
                             "--without-gossip", "--without-mingle"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 78
    assert "cannot start" in result.stderr and "missing.safetensors" in result.stderr
