#!/usr/bin/env bash
# DDP throughput of the main job (char-level TextGenerator LSTM): 1 rank x 1 thread against
# 2 ranks x 1 thread (mpirun), alternated ROUNDS times in one run; also two independent
# 1-rank processes at once (what the machine allows two processes without communication).
# Prints tokens/s over all ranks and the ratio.  Usage: bash bench/ddp_scaling.sh [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
STEPS=${2:-100}
BIN=target/release/deepseek
MPI=(mpirun --allow-run-as-root -np 2)
args=(train --threads 1 --steps "$STEPS" --eval-every 100000 --overwrite)
tok() { tr '\r' '\n' | grep -a 'done (' | sed -E 's/.* ([0-9]+) tokens\/s.*/\1/'; }
tmp=$(mktemp -d)
for r in $(seq "$ROUNDS"); do
  one=$("$BIN" "${args[@]}" --out "$tmp/one" 2>&1 | tok)
  two=$("${MPI[@]}" "$BIN" "${args[@]}" --out "$tmp/ddp" 2>&1 | tok)
  "$BIN" "${args[@]}" --out "$tmp/a" > "$tmp/a.log" 2>&1 &
  "$BIN" "${args[@]}" --out "$tmp/b" > "$tmp/b.log" 2>&1
  wait
  ind=$(( $(tok < "$tmp/a.log") + $(tok < "$tmp/b.log") ))
  echo "round $r: 1 rank $one tok/s | DDP 2 ranks $((2 * two)) tok/s (x$(echo "scale=2; 2*$two/$one" | bc)) | two independent processes $ind tok/s (x$(echo "scale=2; $ind/$one" | bc))"
done
rm -rf "$tmp"
