"""Where the project lives and how settings read the environment (django-environ, and an optional
``.env`` file next to manage.py, never committed). Every settings module starts from here."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# An optional .env file next to manage.py (never committed) for local overrides.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))
