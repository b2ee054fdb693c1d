#!/usr/bin/env bash
# Create .venv and install omnitune with every built-in plugin and the test tools.
# Idempotent: re-running after the first install only re-checks what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# setuptools 70.1+ builds editable wheels without the wheel package (tests pip-install plugins)
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip "setuptools>=70.1,<82"
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c constraints.txt -e ".[all,test]" > .venv/install.log 2>&1; then
    grep -v "^WARNING: Location" .venv/install.log >&2
    exit 1
fi
.venv/bin/python -c "import omnitune, torch; print(f'omnitune {omnitune.__version__}, torch {torch.__version__}')"
