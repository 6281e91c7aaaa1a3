#!/usr/bin/env bash
# Fuzzes the loaders of files a user may get from anywhere with cargo-fuzz (libFuzzer, address
# sanitizer): safetensors, GGUF (through the Llama loader and its tokenizer), Hugging Face model
# directories (config.json + model.safetensors, as `from_pretrained` / `deepseek generate`
# read them) and training checkpoints (as `deepseek train --resume` reads them).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s each, all four)
#
# A crash (panic, abort, sanitizer report, or a single allocation over 2 GiB that the input
# cannot justify) stops the run with its input in fuzz/artifacts/<target>/; replay it with
# `cargo +nightly fuzz run <target> <file>`. Seeds come from the project's fixtures and a
# checkpoint written by `deepseek train` (fuzz/make_seeds.py). Installs the nightly toolchain,
# cargo-fuzz and the `gguf` package when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors gguf pretrained checkpoint)
PY="${PYTHON:-python3}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
"$PY" -c "import gguf, numpy" >/dev/null 2>&1 || "$PY" -m pip install --quiet gguf numpy
cargo build --release -p deepseek-cli
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
target/release/deepseek train --out "$tmp/run" --steps 2 --hidden 16 --seq 16 --batch 8 \
    --eval-every 1000 --eval-batch 64 --eval-batches 1 --sample-length 0 --threads 1 \
    --checkpoint-every 1 >/dev/null
step="$(find "$tmp/run" -type d -name 'step-*' | sort | tail -1)"
"$PY" fuzz/make_seeds.py "$step"
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${secs}s"
    cargo +nightly fuzz run --release "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=6144 -malloc_limit_mb=2048 -timeout=30 \
        -print_final_stats=1
done
