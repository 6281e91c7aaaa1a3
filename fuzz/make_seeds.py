"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the project's own
fixtures: real safetensors files, a tiny Llama model converted to GGUF (F32, Q8_0, Q4_0
tensors and a byte-level BPE tokenizer, as llama.cpp writes one), Hugging Face model
directories, and a training checkpoint written by `deepseek train` (its directory given as
the first argument). Files of one input are joined with the separator of
fuzz_targets/common.rs. Needs numpy and the `gguf` package (pip install gguf)."""

import json
import pathlib
import struct
import sys

import numpy as np
import gguf

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "crates/deepseek/tests/data"
CORPUS = ROOT / "fuzz/corpus"
SEP = b"\n--deepseek-fuzz-file--\n"


def read_safetensors(path):
    b = path.read_bytes()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16, "I64": np.int64}[meta["dtype"]]
        out[name] = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=dt).reshape(meta["shape"])
    return out


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def llama_gguf(path):
    """tiny-llama as GGUF: the tensor names and rotary row order llama.cpp's converter uses."""
    model = DATA / "transformers/tiny-llama"
    cfg = json.loads((model / "config.json").read_text())
    w = read_safetensors(model / "model.safetensors")
    h, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def permute(x, heads):
        return x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:]).swapaxes(1, 2) \
            .reshape(x.shape)

    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_context_length(cfg["max_position_embeddings"])
    wr.add_embedding_length(h)
    wr.add_block_count(cfg["num_hidden_layers"])
    wr.add_feed_forward_length(cfg["intermediate_size"])
    wr.add_head_count(nh)
    wr.add_head_count_kv(nkv)
    wr.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    wr.add_rope_freq_base(10000.0)
    vocab = cfg["vocab_size"]
    tokens = [f"t{i}" for i in range(vocab - 4)] + ["a", "b", "ab", "<s>"]
    wr.add_tokenizer_model("gpt2")
    wr.add_tokenizer_pre("smollm")
    wr.add_token_list(tokens)
    wr.add_token_types([1] * (vocab - 1) + [3])
    wr.add_token_merges(["a b"])
    wr.add_bos_token_id(vocab - 1)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
             "output_norm.weight", "lm_head.weight": "output.weight"}
    per = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj":
           "attn_v", "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate",
           "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "input_layernorm":
           "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in per.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    quant = [gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0]
    for k, (hf, gg) in enumerate(sorted(names.items())):
        x = np.ascontiguousarray(w[hf], dtype=np.float32)
        if gg.endswith("attn_q.weight"):
            x = permute(x, nh)
        elif gg.endswith("attn_k.weight"):
            x = permute(x, nkv)
        if x.ndim == 2 and x.shape[1] % 32 == 0:
            ty = quant[k % 2]
            wr.add_tensor(gg, gguf.quants.quantize(x, ty), raw_dtype=ty)
        else:
            wr.add_tensor(gg, x)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def main():
    for p in sorted(DATA.rglob("*.safetensors")):
        if p.stat().st_size <= 64 * 1024:
            put("safetensors", p.parent.name + "-" + p.name, p.read_bytes())
    tmp = CORPUS / "tiny-llama.gguf.tmp"
    CORPUS.mkdir(parents=True, exist_ok=True)
    llama_gguf(tmp)
    put("gguf", "tiny-llama.gguf", tmp.read_bytes())
    tmp.unlink()
    for m in ("tiny-llama", "tiny-gpt2", "tiny-bert"):
        d = DATA / "transformers" / m
        put("pretrained", m, (d / "config.json").read_bytes() + SEP +
            (d / "model.safetensors").read_bytes())
    if len(sys.argv) > 1:
        step = pathlib.Path(sys.argv[1])
        files = ["trainer.json", "model.safetensors", "optimizer.json", "scheduler.json",
                 "SHA256SUMS"]
        parts = [(step / f).read_bytes() if (step / f).exists() else b"" for f in files]
        put("checkpoint", "trained", SEP.join(parts))


if __name__ == "__main__":
    main()
