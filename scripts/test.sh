#!/usr/bin/env bash
# Runs every test of the project: the Rust unit, integration and doc tests, including the
# golden cases generated with PyTorch (../shared/golden, or $DEEPSEEK_GOLDEN).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
export DEEPSEEK_NUM_THREADS="${DEEPSEEK_NUM_THREADS:-2}"
cargo test --release --workspace 2>&1
