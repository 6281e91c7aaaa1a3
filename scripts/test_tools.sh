#!/usr/bin/env bash
# End-to-end check of `deepseek train`'s tools against the real programs their users open:
#   --metrics-port  scraped by Debian's Prometheus server (values read back through its HTTP
#                   query API) and checked by `promtool check metrics`; a second run on the
#                   same port must fail with a clear message;
#   --tensorboard   read back by PyPI tensorboard's EventAccumulator (counts asserted: it
#                   drops records with a bad CRC silently);
#   --profile       the Chrome trace parsed by Python's json with structural checks, and the
#                   key-averages table.
# Installs prometheus (apt) and tensorboard (pip) when missing. About 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-python3}"
BIN="${DEEPSEEK_BIN:-target/release/deepseek}"
[ -x "$BIN" ] || cargo build --release -p deepseek-cli
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "prometheus missing: apt-get install prometheus (as root)" >&2
        exit 1
    fi
fi
"$PY" -c "import tensorboard" >/dev/null 2>&1 || "$PY" -m pip install --quiet tensorboard
# Chrome DevTools' trace engine (pinned) reads the profiler's Chrome trace.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
        echo "node/npm missing: apt-get install nodejs npm (as root)" >&2
        exit 1
    fi
fi
TRACE_ENGINE=target/trace-engine
if [ ! -f "$TRACE_ENGINE/node_modules/@paulirish/trace_engine/package.json" ]; then
    mkdir -p "$TRACE_ENGINE"
    (cd "$TRACE_ENGINE" && npm install --silent --no-audit --no-fund @paulirish/trace_engine@0.0.65)
fi

tmp="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 0. A Prometheus server scraping the port the training run will serve on, every second.
port="$(free_port)"
pport="$(free_port)"
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: deepseek
    static_configs:
      - targets: ["127.0.0.1:$port"]
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$pport" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
    "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$pport/-/ready', timeout=2)" 2>/dev/null && break
    sleep 0.2
done

# 1. A short training run with all three tools on a small slice of the bundled text (the
# final validation reads all of val.txt); it runs ~20 s so Prometheus can scrape it.
mkdir -p "$tmp/data"
head -c 200000 data/shakespeare/train.txt >"$tmp/data/train.txt"
head -c 4000 data/shakespeare/val.txt >"$tmp/data/val.txt"
"$BIN" train --data "$tmp/data" --out "$tmp/run" --hidden 32 --batch 8 --seq 32 --steps 1000000 \
    --minutes 0.35 --eval-every 3 --eval-batches 1 --checkpoint-every 4 --sample-length 0 --log-every 1000 \
    --tensorboard "$tmp/tb" --metrics-port "$port" --profile 5 >"$tmp/train.log" 2>&1 &
pids+=($!)
train_pid=$!
served=""
for _ in $(seq 300); do
    grep -q "^metrics: serving Prometheus metrics at http://0.0.0.0:$port/metrics" "$tmp/train.log" && served=1 && break
    sleep 0.2
done
[ -n "$served" ] || { cat "$tmp/train.log"; echo "FAIL: the run does not serve metrics on $port" >&2; exit 1; }
echo "train serves metrics on port $port"

# 2. The same port again: a clear error, not a panic.
if "$BIN" train --out "$tmp/run2" --steps 1 --hidden 8 --sample-length 0 --metrics-port "$port" >"$tmp/busy.log" 2>&1; then
    echo "FAIL: a second run on port $port did not fail" >&2; exit 1
fi
grep -q "already in use" "$tmp/busy.log" || { cat "$tmp/busy.log"; echo "FAIL: no clear port-in-use message" >&2; exit 1; }
! grep -q "panicked" "$tmp/busy.log"

# 3. promtool on a scrape.
"$PY" -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=10).read().decode())" >"$tmp/metrics.txt"
promtool check metrics <"$tmp/metrics.txt"
echo "promtool check metrics: ok"

# 4. Prometheus scrapes it; read the values back through the query API (last_over_time, so
# the check also holds once the run has ended and its series went stale).
"$PY" - "$pport" <<'PYEOF'
import json, sys, time, urllib.parse, urllib.request
port = sys.argv[1]
def q(expr):
    u = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    r = json.load(urllib.request.urlopen(u, timeout=5))
    assert r["status"] == "success", r
    return r["data"]["result"]
def q(expr, _q=q):
    return _q(f"last_over_time({expr}[10m])")
want = ["deepseek_train_steps_total", "deepseek_train_loss", "deepseek_learning_rate",
        'deepseek_train_throughput{unit="tokens"}', "deepseek_memory_allocated_bytes",
        "deepseek_memory_peak_bytes", "deepseek_checkpoint_age_seconds", "deepseek_val_loss"]
deadline = time.time() + 120  # generous: CI machines can be slow
res = None
while True:
    try:
        res = {w: q(w) for w in want}
        steps = float(res["deepseek_train_steps_total"][0]["value"][1]) if res["deepseek_train_steps_total"] else 0
        vl = res["deepseek_val_loss"]
        if steps >= 3 and vl and vl[0]["value"][1] != "NaN" and all(res.values()):
            break
    except OSError:
        pass
    if time.time() > deadline:
        raise SystemExit(f"FAIL: Prometheus did not return the values in time: {res}")
    time.sleep(1)
vals = {w: float(r[0]["value"][1]) for w, r in res.items()}
print("prometheus query API:", json.dumps(vals))
assert vals["deepseek_train_loss"] > 0 and vals["deepseek_learning_rate"] > 0
assert vals['deepseek_train_throughput{unit="tokens"}'] > 0
assert vals["deepseek_memory_peak_bytes"] >= vals["deepseek_memory_allocated_bytes"] > 0
assert vals["deepseek_checkpoint_age_seconds"] >= 0
up = q('max_over_time(up{job="deepseek"}[10m])'.replace("max_over_time(", "").replace("[10m])", ""))
assert up and up[0]["value"][1] == "1", up
PYEOF

# 5. Let the run finish; then TensorBoard and the profile.
wait "$train_pid" || { cat "$tmp/train.log"; echo "FAIL: training failed" >&2; exit 1; }
"$PY" - "$tmp" <<'PYEOF'
import json, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
tmp = sys.argv[1]
lines = [json.loads(l) for l in open(os.path.join(tmp, "run", "metrics.jsonl"))]
# One line per step, plus one more for the final validation (same step, key "final").
steps = list({l["step"]: l for l in reversed(lines)}.values())[::-1]
acc = EventAccumulator(os.path.join(tmp, "tb"), size_guidance={"scalars": 0})
acc.Reload()
loss = acc.Scalars("train/loss")
assert len(loss) == len(steps), (len(loss), len(steps))  # every step, no record dropped
for e, l in zip(loss, steps):
    assert e.step == l["step"] and abs(e.value - l["loss"]) <= 1e-6 * max(1, abs(l["loss"])), (e, l)
assert len(acc.Scalars("train/lr")) == len(steps)
assert len(acc.Scalars("train/tokens_per_second")) == len(steps)
# The gradient norm of every step taken, the same value metrics.jsonl records.
gn = [l for l in steps if l.get("grad_norm") is not None]
tb_gn = acc.Scalars("train/grad_norm")
assert len(tb_gn) == len(gn) >= 1, (len(tb_gn), len(gn))
for e, l in zip(tb_gn, gn):
    assert e.step == l["step"] and abs(e.value - l["grad_norm"]) <= 1e-5 * max(1, l["grad_norm"]), (e, l)
vals = [l for l in lines if l.get("val_loss") is not None]
assert len(acc.Scalars("val/loss")) == len(vals) >= 1
print(f"tensorboard EventAccumulator: {len(loss)} train/loss, {len(tb_gn)} train/grad_norm, "
      f"{len(vals)} val/loss values read back")

tr = json.load(open(os.path.join(tmp, "run", "profile", "trace.json")))
xs = [e for e in tr["traceEvents"] if e["ph"] == "X"]
for e in xs:
    assert isinstance(e["ts"], (int, float)) and e["dur"] >= 0 and e["pid"] and e["tid"]
steps = sorted(e["name"] for e in xs if e["cat"] == "step")
assert steps == [f"ProfilerStep#{i}" for i in range(2, 7)], steps
kern = {e["name"] for e in xs if e["cat"] == "kernel"}
assert {"lstm_layer", "lstm_layer_backward", "matmul", "cross_entropy"} <= kern, kern
lstm = next(e for e in xs if e["name"] == "lstm_layer")
assert lstm["args"]["FLOPs"] > 0 and lstm["args"]["Input Dims"]
table = open(os.path.join(tmp, "run", "profile", "key_averages.txt")).read()
assert "lstm_layer" in table and "Self CPU time total" in table
print(f"chrome trace: {len(xs)} events, 5 steps, kernels {sorted(kern)[:6]}...")
PYEOF
# 6. The same trace through Chrome DevTools' trace engine: every complete event, with its
# duration, as Python's json read it.
node tools/check_trace.mjs "$tmp/run/profile/trace.json" "$TRACE_ENGINE" >"$tmp/engine.json"
"$PY" - "$tmp" <<'PYEOF'
import json, os, sys
from collections import defaultdict
tmp = sys.argv[1]
tr = json.load(open(os.path.join(tmp, "run", "profile", "trace.json")))
want = defaultdict(lambda: [0, 0.0])
for e in tr["traceEvents"]:
    if e["ph"] == "X":
        want[e["name"]][0] += 1
        want[e["name"]][1] += e["dur"]
got = json.load(open(os.path.join(tmp, "engine.json")))["entries"]
assert set(got) == set(want), (sorted(set(want) ^ set(got)))
for k, (n, d) in want.items():
    assert got[k][0] == n and abs(got[k][1] - d) <= 1e-6 * max(1.0, d), (k, got[k], (n, d))
print(f"trace engine (@paulirish/trace_engine 0.0.65): {sum(v[0] for v in got.values())} events, "
      f"{len(got)} names, durations equal")
PYEOF
echo "tools: all checks passed"
