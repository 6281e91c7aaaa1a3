#!/usr/bin/env bash
# The deployment walk-through (README "Deployment walk-through"): installs what it needs
# (Debian's dataset-fashion-mnist, onnx + onnxruntime), builds the Python extension into
# python/deepseek and runs examples/python/deploy_fashion_mnist.py with the given arguments
# (e.g. --quick, --epochs 3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    else
        echo "Fashion-MNIST missing: apt-get install dataset-fashion-mnist (as root)" >&2
        exit 1
    fi
fi
"$PY" -c "import onnx, onnxruntime" >/dev/null 2>&1 \
    || "$PY" -m pip install --quiet onnx onnxruntime
cargo build --release -p deepseek-python
cp target/release/libdeepseek_python.so python/deepseek/_C.abi3.so
PYTHONPATH=python "$PY" examples/python/deploy_fashion_mnist.py "$@"
