# Shared by scripts/run and scripts/test: a .venv with the given requirements file, made with
# Python 3.11 (PYTHON overrides). pip is quiet when everything is already installed.
ensure_venv() {
    local requirements="$1"
    local python="${PYTHON:-}"
    if [ -z "$python" ]; then
        python="$(command -v python3.11 || command -v python3)"
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv with $python"
        "$python" -m venv .venv
    fi
    echo "==> installing $requirements into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    # Packages whose declared pins conflict with ours but which work with them (see the file).
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
        -r requirements/no-deps.txt
}
