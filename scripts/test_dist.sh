#!/usr/bin/env bash
# The multi-process tests of deepseek.distributed (called by scripts/test.sh once the Python
# package is installed; PY names its interpreter). Needs Open MPI (test.sh installs it):
#  - Rust: collectives (2 and 3 ranks), DDP == one process over 20 steps, no_sync, tensor
#    parallel == unsplit, parallel attention heads == MultiheadAttention, vocabulary-parallel
#    embedding / cross-entropy == Embedding / cross_entropy, mismatch errors, a killed rank,
#    a mixed job with mpi4py, in-place collectives, GPipe/1F1B pipelines == sequential,
#    ZeRO-1 AdamW == AdamW (crates/deepseek/tests/distributed.rs launches itself under
#    mpirun);
#  - two hosts: scripts/test_two_hosts.sh runs the DDP case with one rank in each of two
#    network namespaces joined by a veth pair, over TCP;
#  - `mpirun -np 2 deepseek train` trains data-parallel, rank 0 alone writing;
#  - Python: python/tests/test_distributed.py (collectives, DDP, the tutorial's
#    TensorParallel snippet on 4 ranks, ZeRO, pipelines, the Megatron attention / embedding /
#    cross-entropy against PyTorch on 2 ranks) runs within the ordinary pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-python3}"
export OMPI_MCA_rmaps_base_oversubscribe=1 DEEPSEEK_NUM_THREADS=1 PYTHON="$PY"
# mpi4py for the mixed job (built against the installed Open MPI when no wheel fits).
if ! "$PY" -c "import mpi4py" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet mpi4py
fi
cargo test --release -p deepseek --features mpi --test distributed 2>&1

# Two "hosts": one rank in each of two network namespaces, Open MPI over TCP only.
exe="$(cargo test --release -p deepseek --features mpi --test distributed --no-run \
    --message-format=json 2>/dev/null | "$PY" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "distributed":
        print(m["executable"])')"
set +e
bash scripts/test_two_hosts.sh "$exe"
rc=$?
set -e
case "$rc" in
    0) ;;
    2) echo "skip two hosts: network namespaces are not available here (see above)" ;;
    *) exit 1 ;;
esac

cargo build --release -p deepseek-cli --features mpi 2>&1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
log="$out/log.txt"
timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 target/release/deepseek train \
    --out "$out/run" --steps 6 --decay-steps 6 --hidden 16 --seq 16 --batch 8 --eval-every 3 \
    --eval-batch 64 --checkpoint-every 3 --sample-length 10 --threads 1 >"$log" 2>&1 || {
    cat "$log"; echo "FAIL: mpirun -np 2 deepseek train" >&2; exit 1; }
check() { grep -aq "$1" "$log" || { cat "$log"; echo "FAIL: deepseek train under mpirun: no '$1'" >&2; exit 1; }; }
check "data parallel: 2 ranks (MPI), batch 8 per rank, 16 per step"
check "done (step limit): 6 steps"
[ "$(grep -ao 'done ([^:]*): [0-9]* steps' "$log" | wc -l)" = 1 ] || { cat "$log"; echo "FAIL: more than one rank reported" >&2; exit 1; }
[ -f "$out/run/checkpoints/step-6/model.safetensors" ] || { echo "FAIL: no checkpoint" >&2; exit 1; }
echo "ok   mpirun -np 2 deepseek train (data parallel, rank 0 writes)"
