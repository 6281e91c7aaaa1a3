#!/usr/bin/env bash
# DeepSeek-Visualizer in the browser its users open: headless Chromium (Debian `chromium`)
# loads the pages and tools/check_viz_page.py checks that each draws with no console error
# and shows the expected elements; screenshots are kept in target/viz-artefacts/.
#   1. deepseek.viz.render: a model with attention, a vanishing and an exploding gradient;
#      deepseek.viz.attention: the heat-map page of nn.capture_attention;
#   2. `deepseek viz RUN_DIR` on a short `deepseek train` run (loss, lr, gradient-norm
#      curves), and its clear errors for a missing directory and one without metrics;
#   3. the checker itself fails on a page whose script breaks.
# Installs chromium (apt) when missing. About 30 s after the install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-python3}"
BIN="${DEEPSEEK_BIN:-target/release/deepseek}"
[ -x "$BIN" ] || cargo build --release -p deepseek-cli
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "chromium missing: apt-get install chromium (as root)" >&2
        exit 1
    fi
fi
ART=target/viz-artefacts
mkdir -p "$ART"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# 1. A model page from Python.
"$PY" - "$ART/model.html" "$tmp/model-expect.json" <<'PYEOF'
import json, sys
import deepseek as torch
import deepseek.nn as nn
import deepseek.viz as viz

torch.manual_seed(0)

class Demo(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.block = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.gate = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.embed(x))
        a, _ = self.attn(h, h, h)
        h = h + a
        h = h + self.block(h) + 1e-9 * self.gate(h)   # gate: a vanishing gradient
        return self.head(h.mean(1))

model = Demo()
x = torch.randn(2, 6, 8)
g = viz.trace(model, x, loss_fn=lambda out: (out * 10).pow(2).sum(), exploding=100.0)
g.save(sys.argv[1])
flags = [o["flag"] for n in g.nodes for o in n["outputs"]]
assert "vanishing" in flags and "exploding" in flags, flags
expect = {
    "present": [
        ["g", {"data-op": "input"}, 1], ["g", {"data-op": "linear"}, 5],
        ["g", {"data-op": "relu"}, 1], ["g", {"data-op": "gelu"}, 1],
        ["g", {"data-op": "softmax"}, 1], ["g", {"data-op": "mean"}, 1],
        ["g", {"class": "cluster", "data-module": "attn"}, 1],
        ["g", {"class": "cluster", "data-module": "block"}, 1],
        ["g", {"class": "cluster", "data-module": "block.1"}, 1],
        ["canvas", {"class": "heat", "data-module": "attn"}, 4],
        ["tr", {"class": "vanishing"}, 1], ["tr", {"class": "exploding"}, 1],
        ["tr", {"data-param": "gate.weight"}, 1], ["div", {"class": "hist"}, 8],
    ],
    "text": ["block.0 : Linear", "attn : MultiheadAttention", "[2, 6, 16] float32",
             "gate.weight", "head 3"],
}
json.dump(expect, open(sys.argv[2], "w"))
print(f"model page: {len(g.nodes)} ops, {len(g.modules)} modules, {len(g.attention)} attention maps")
PYEOF
"$PY" tools/check_viz_page.py "$ART/model.html" "$tmp/model-expect.json" --screenshot "$ART/model.png"
# The same page opened with the top-level modules collapsed (what "collapse all" draws).
cat >"$tmp/collapsed-expect.json" <<'JSON'
{"present": [["g", {"class": "op collapsed", "data-module": "attn"}, 1],
             ["g", {"class": "op collapsed", "data-module": "block"}, 1],
             ["g", {"data-op": "input"}, 1], ["g", {"data-op": "relu"}, 1]],
 "text": ["block : Sequential", "(collapsed, click to expand)"]}
JSON
"$PY" tools/check_viz_page.py "$ART/model.html#folded" "$tmp/collapsed-expect.json" \
    --screenshot "$ART/model-collapsed.png"

# 1b. The attention page (deepseek.viz.attention over nn.capture_attention): a heat map per
# head of each encoder layer and of a SparseAttention.
"$PY" - "$ART/attention.html" "$tmp/attention-expect.json" <<'PYEOF'
import json, sys
import deepseek as torch
import deepseek.nn as nn
import deepseek.viz as viz

torch.manual_seed(0)
model = nn.Sequential(
    nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 2),
    nn.SparseAttention(16, 2, locality_window=2, global_tokens=[0]))
viz.attention(model.eval(), torch.randn(2, 7, 16), sys.argv[1], sample=1,
              tokens=["t%d" % i for i in range(7)])
json.dump({"present": [["canvas", {"class": "heat", "data-module": "0.layers.0.self_attn",
                                   "data-rows": "7", "data-cols": "7"}, 4],
                       ["canvas", {"class": "heat", "data-module": "0.layers.1.self_attn"}, 4],
                       ["canvas", {"class": "heat", "data-module": "1"}, 2]],
           "text": ["3 attention modules, 10 heads", "1 (SparseAttention), sample 1"]},
          open(sys.argv[2], "w"))
PYEOF
"$PY" tools/check_viz_page.py "$ART/attention.html" "$tmp/attention-expect.json" \
    --screenshot "$ART/attention.png"

# 2. A training run and its page.
mkdir -p "$tmp/data"
head -c 60000 data/shakespeare/train.txt >"$tmp/data/train.txt"
head -c 3000 data/shakespeare/val.txt >"$tmp/data/val.txt"
"$BIN" train --data "$tmp/data" --out "$tmp/run" --hidden 16 --batch 4 --seq 16 --steps 12 \
    --eval-every 4 --eval-batches 1 --sample-length 0 --log-every 1000 >"$tmp/train.log" 2>&1 \
    || { cat "$tmp/train.log"; echo "FAIL: training failed" >&2; exit 1; }
"$BIN" viz "$tmp/run" --out "$ART/run.html"
"$PY" - "$tmp/run/metrics.jsonl" "$tmp/run-expect.json" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if not l.get("final")]
assert len(steps) == 12 and all(l["grad_norm"] > 0 for l in steps), steps
n = str(len(steps))
json.dump({"present": [["path", {"data-series": "train loss", "data-points": n}, 1],
                       ["path", {"data-series": "lr", "data-points": n}, 1],
                       ["path", {"data-series": "grad norm", "data-points": n}, 1],
                       ["circle", {"data-series": "validation loss"}, 3],
                       ["svg", {"data-chart": "loss"}, 1]],
           "text": ["12 steps", "gradient 2-norm before clipping"]}, open(sys.argv[2], "w"))
PYEOF
"$PY" tools/check_viz_page.py "$ART/run.html" "$tmp/run-expect.json" --screenshot "$ART/run.png"
if "$BIN" viz "$tmp/nope" >"$tmp/e1.log" 2>&1; then echo "FAIL: viz of a missing dir" >&2; exit 1; fi
grep -q "no such run directory" "$tmp/e1.log" || { cat "$tmp/e1.log"; exit 1; }
mkdir -p "$tmp/empty"
if "$BIN" viz "$tmp/empty" >"$tmp/e2.log" 2>&1; then echo "FAIL: viz without metrics" >&2; exit 1; fi
grep -q "has no metrics.jsonl" "$tmp/e2.log" || { cat "$tmp/e2.log"; exit 1; }
echo "deepseek viz: clear errors for a missing run directory and one without metrics"

# 3. The checker catches a broken page.
"$PY" -c "import deepseek, json; open('$tmp/broken.html', 'w').write(deepseek._C._viz_render_page('broken', json.dumps({'kind': 'model', 'nodes': 5})))"
if "$PY" tools/check_viz_page.py "$tmp/broken.html" "$tmp/run-expect.json" >"$tmp/broken.log" 2>&1; then
    echo "FAIL: the checker passed a page whose script throws" >&2; exit 1
fi
grep -q "Uncaught TypeError" "$tmp/broken.log" || { cat "$tmp/broken.log"; exit 1; }
echo "viz: all checks passed (artefacts in $ART)"
