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
    ensure_ldap_build_deps
    echo "==> installing $requirements into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    # Packages whose declared pins conflict with ours but which work with them (see the file).
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
        -r requirements/no-deps.txt
}

# python-ldap (requirements/web.txt, for LDAP sign-in) ships only as source: pip builds it with
# OpenLDAP's and Cyrus SASL's headers, a C compiler and Python's headers. Debian's packages are
# installed where missing (libldap-dev: bookworm's name; libldap2-dev is its transitional alias).
# Nothing to do once python-ldap is in the venv.
ensure_ldap_build_deps() {
    if .venv/bin/python -c "import ldap" >/dev/null 2>&1; then
        return 0
    fi
    local packages=()
    [ -f /usr/include/ldap.h ] || packages+=(libldap-dev)
    [ -f /usr/include/sasl/sasl.h ] || packages+=(libsasl2-dev)
    command -v gcc >/dev/null 2>&1 || packages+=(gcc)
    .venv/bin/python -c 'import os, sysconfig; raise SystemExit(not os.path.exists(
        os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || packages+=(python3-dev)
    if [ "${#packages[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "==> python-ldap needs ${packages[*]} (or your system's equivalents) to build" >&2
        return 0  # pip tries anyway, and says what it lacks
    fi
    echo "==> installing Debian's ${packages[*]} (to build python-ldap)"
    local sudo_cmd=""
    if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
}
