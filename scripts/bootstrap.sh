#!/usr/bin/env bash
# Create .venv and install exactly requirements.lock (hash-checked, no resolution), then omnitune
# itself (editable, no dependencies), then check what was installed. Idempotent: re-running only
# re-checks. Fails, naming the package and versions, when anything differs from the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
pip_install() {
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" > .venv/install.log 2>&1; then
        grep -v "^WARNING: Location" .venv/install.log >&2
        echo "bootstrap: pip install $* failed (log above)" >&2
        exit 1
    fi
}
pip_install --require-hashes --no-deps -r requirements.lock
pip_install --no-deps --no-build-isolation -e .
.venv/bin/python scripts/check_install.py requirements.lock
