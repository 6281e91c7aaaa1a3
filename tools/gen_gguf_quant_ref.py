#!/usr/bin/env python3
"""Reference Q8_0 / Q4_0 quantisations from the `gguf` Python package (llama.cpp's), stored as
crates/deepseek/tests/data/gguf_quant_reference.json: random blocks plus edge cases (a zero
block, exact ties at .5 steps, a negative extreme, repeated extremes), their float32 values
and the bytes `gguf.quants.quantize` produces. deepseek's quantisers must match byte for byte.

    .venv/bin/pip install gguf numpy
    .venv/bin/python tools/gen_gguf_quant_ref.py
"""
import json
import os

import numpy as np
from gguf import GGMLQuantizationType, quants

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "deepseek", "tests", "data",
                   "gguf_quant_reference.json")

rng = np.random.default_rng(0)
blocks = [rng.normal(size=32) * s for s in (1e-3, 0.1, 1.0, 30.0, 1e4)]
blocks += [rng.uniform(-1, 1, 32) for _ in range(6)]
blocks.append(np.zeros(32))
blocks.append(np.arange(32) - 16.0)                   # exact multiples: ties after scaling
blocks.append(np.linspace(-8, 7, 32))
b = rng.normal(size=32); b[5] = -9.0; b[20] = 9.0       # equal magnitudes, first wins
blocks.append(b)
b = rng.normal(size=32); b[3] = -50.0                   # negative extreme
blocks.append(b)
x = np.concatenate(blocks).astype(np.float32)
ref = {"values": [float(v) for v in x]}
for name, t in (("q8_0", GGMLQuantizationType.Q8_0), ("q4_0", GGMLQuantizationType.Q4_0)):
    q = quants.quantize(x.reshape(-1, 32), t)
    ref[name] = q.reshape(-1).tobytes().hex()
with open(OUT, "w") as f:
    json.dump(ref, f)
print("wrote", os.path.abspath(OUT), len(x), "values")
