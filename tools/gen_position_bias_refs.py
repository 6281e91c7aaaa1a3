#!/usr/bin/env python3
"""Reference data for deepseek::nn::position_bias (ALiBi and T5 relative position bias),
produced once with PyTorch and Hugging Face `transformers` and stored as
crates/deepseek/tests/data/transformers/position_bias.safetensors (read by
crates/deepseek/tests/position_bias.rs; the test needs neither package).

    pip install torch transformers safetensors
    python3 tools/gen_position_bias_refs.py

The references are `transformers`' own functions: BLOOM's `build_alibi_tensor` (its slopes and
its bias `slope * key_position`, which differs from ALiBi's `-slope * (i - j)` by a constant
per query row, so the attention it gives is the same) and T5's
`T5Attention._relative_position_bucket` and `compute_bias` (the learned embedding looked up by
bucket). Attention outputs are computed with PyTorch's `scaled_dot_product_attention` in
float64 from float32 inputs and stored as float64.
"""

import os

import torch
from safetensors.torch import save_file
from transformers import T5Config
from transformers.models.bloom.modeling_bloom import build_alibi_tensor
from transformers.models.t5.modeling_t5 import T5Attention

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "deepseek", "tests", "data",
                   "transformers", "position_bias.safetensors")


def main():
    torch.manual_seed(0)
    out = {}
    # ALiBi slopes for 1..=40 heads: BLOOM's tensor at key positions 0 and 1 gives the slope.
    for n in range(1, 41):
        mask = torch.ones(1, 2)
        alibi = build_alibi_tensor(mask, n, torch.float32)  # [n, 1, 2] = slope * position
        out[f"alibi_slopes.{n}"] = alibi[:, 0, 1].contiguous()
    # Causal attention with ALiBi (BLOOM's bias + the causal mask), 6 heads (not a power of
    # two), 7 queries over 7 keys, and a decoding step: the last 2 queries over 7 keys.
    b, h, t, d = 2, 6, 7, 8
    q, k, v = (torch.randn(b, h, t, d) for _ in range(3))
    out["alibi.q"], out["alibi.k"], out["alibi.v"] = q, k, v
    alibi = build_alibi_tensor(torch.ones(1, t), h, torch.float64).reshape(1, h, 1, t)
    causal = torch.full((t, t), float("-inf"), dtype=torch.float64).triu(1)
    y = torch.nn.functional.scaled_dot_product_attention(
        q.double(), k.double(), v.double(), attn_mask=alibi + causal)
    out["alibi.causal_out"] = y
    y2 = torch.nn.functional.scaled_dot_product_attention(
        q[:, :, -2:].double(), k.double(), v.double(), attn_mask=alibi + causal[-2:])
    out["alibi.step_out"] = y2
    # T5 buckets of relative positions -300..300 for several settings.
    rel = torch.arange(-300, 301)[None, :]
    for bidir in (True, False):
        for nb, md in ((32, 128), (16, 64), (8, 20), (64, 256)):
            bk = T5Attention._relative_position_bucket(rel, bidirectional=bidir,
                                                       num_buckets=nb, max_distance=md)
            out[f"t5_buckets.{int(bidir)}.{nb}.{md}"] = bk[0].to(torch.int64).contiguous()
    # T5's compute_bias with a random embedding, encoder (bidirectional) and decoder, the
    # decoder also for a cached step (queries at positions 5..7 over 8 keys).
    for is_decoder in (False, True):
        cfg = T5Config(d_model=16, d_kv=4, num_heads=4, relative_attention_num_buckets=32,
                       relative_attention_max_distance=128, is_decoder=is_decoder)
        att = T5Attention(cfg, has_relative_attention_bias=True)
        with torch.no_grad():
            att.relative_attention_bias.weight.normal_()
        tag = "dec" if is_decoder else "enc"
        out[f"t5.{tag}.weight"] = att.relative_attention_bias.weight.detach().clone()
        with torch.no_grad():
            out[f"t5.{tag}.bias_9x9"] = att.compute_bias(9, 9).contiguous()
            full = att.compute_bias(8, 8)
            out[f"t5.{tag}.bias_step"] = full[:, :, 5:8, :].contiguous()
    save_file(out, OUT)
    print(f"wrote {len(out)} tensors to {OUT}")


if __name__ == "__main__":
    main()
