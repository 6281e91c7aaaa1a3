"""Transformer blocks, SparseAttention, pretrained models and tokenizers from Python, against
the PyTorch / `transformers` references stored by tools/gen_transformer_refs.py."""

import json
import os
from pathlib import Path

import pytest

import deepseek as ds
import deepseek.nn as nn

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "crates" / "deepseek" / "tests" / "data" / "transformers"


@pytest.fixture(scope="module")
def blocks():
    return ds.load_file(str(DATA / "blocks.safetensors"))


def sub(all_, prefix):
    p = prefix + "."
    return {k[len(p):]: v for k, v in all_.items()
            if k.startswith(p) and ".in." not in k and ".out." not in k}


def maxdiff(a, b):
    assert tuple(a.shape) == tuple(b.shape)
    return (a.detach().double() - b.double()).abs().max().item()


def test_encoder_prenorm_gelu_batch_first_with_masks(blocks):
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16))
    enc.load_state_dict(sub(blocks, "enc"))
    x = blocks["enc.in.x"].clone().requires_grad_(True)
    y = enc(x, mask=nn.Transformer.generate_square_subsequent_mask(5),
            src_key_padding_mask=blocks["enc.in.key_padding_mask"].to(ds.bool))
    assert maxdiff(y, blocks["enc.out.y"]) < 1e-5
    (y * blocks["enc.in.cot"]).sum().backward()
    assert maxdiff(x.grad, blocks["enc.out.grad_x"]) < 1e-4


def test_nn_transformer_matches_pytorch(blocks):
    tr = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                        dim_feedforward=24, dropout=0.0)
    assert "decoder.layers.1.multihead_attn.in_proj_weight" in tr.state_dict()
    tr.load_state_dict(sub(blocks, "tr"))
    kpm = blocks["tr.in.src_kpm"].to(ds.bool)
    y = tr(blocks["tr.in.src"], blocks["tr.in.tgt"],
           tgt_mask=nn.Transformer.generate_square_subsequent_mask(4),
           src_key_padding_mask=kpm, tgt_key_padding_mask=blocks["tr.in.tgt_kpm"].to(ds.bool),
           memory_key_padding_mask=kpm)
    assert maxdiff(y, blocks["tr.out.y"]) < 1e-5


def test_rmsnorm_rope_swiglu(blocks):
    rms = nn.RMSNorm(16, eps=1e-6)
    rms.load_state_dict(sub(blocks, "rms"))
    assert maxdiff(rms(blocks["rms.in.x"]), blocks["rms.out.y"]) < 1e-5
    x = blocks["rope.in.x"]
    assert maxdiff(nn.RotaryEmbedding(8)(x, 3), blocks["rope.out.half"]) < 1e-5
    assert maxdiff(nn.RotaryEmbedding(8, interleaved=True)(x, 3),
                   blocks["rope.out.interleaved"]) < 1e-5
    s = nn.SwiGLU(16, 24)
    s.load_state_dict(sub(blocks, "swiglu"))
    assert maxdiff(s(blocks["swiglu.in.x"]), blocks["swiglu.out.y"]) < 1e-5


def test_gqa_kv_cache_equals_full_sequence():
    ds.manual_seed(0)
    a = nn.GroupedQueryAttention(32, 4, 2, rope=nn.RotaryEmbedding(8))
    x = ds.randn(2, 6, 32)
    full = a(x)
    cache = nn.KVCache()
    parts = [a(x[:, :3], cache)] + [a(x[:, i:i + 1], cache) for i in range(3, 6)]
    assert len(cache) == 6
    assert maxdiff(ds.cat(parts, 1), full) < 1e-5
    with pytest.raises(ValueError):
        nn.GroupedQueryAttention(32, 4, 3)


@pytest.mark.parametrize("causal,globals_,t", [(False, (), 11), (True, (), 9),
                                                (False, (0, 5), 13), (True, (0, 7), 10)])
def test_sparse_attention_equals_dense(causal, globals_, t):
    ds.manual_seed(1)
    sa = nn.SparseAttention(16, 2, locality_window=4, global_tokens=globals_, causal=causal)
    x0 = ds.randn(2, t, 16)
    x, xd = x0.clone().requires_grad_(True), x0.clone().requires_grad_(True)
    y = sa(x)
    y.sum().backward()
    yd = sa.forward_dense(xd)
    yd.sum().backward()
    assert maxdiff(y, yd) < 1e-5
    assert maxdiff(x.grad, xd.grad) < 1e-5


def test_tiny_pretrained_models_match_transformers():
    for name in ["tiny-bert", "tiny-gpt2", "tiny-llama"]:
        r = ds.load_file(str(DATA / name / "reference.safetensors"))
        m = ds.models.from_pretrained(DATA / name)
        out = m(r["input_ids"], attention_mask=r["attention_mask"])
        assert isinstance(out, tuple)
        assert maxdiff(out[0], r["output"]) < 1e-5, name
        if name != "tiny-bert":
            g = json.loads((DATA / name / "greedy.json").read_text())
            seen = []
            toks = m.generate(g["prompt"], max_new_tokens=len(g["tokens"]), streamer=seen.append)
            assert toks == g["tokens"] and seen == toks


def test_bad_checkpoint_names_the_tensor(tmp_path):
    src = DATA / "tiny-llama"
    (tmp_path / "config.json").write_text((src / "config.json").read_text())
    w = ds.load_file(str(src / "model.safetensors"))
    w["model.norm.weight"] = ds.zeros(31)
    ds.save_file(w, str(tmp_path / "model.safetensors"))
    with pytest.raises(OSError, match=r"model\.norm\.weight"):
        ds.models.from_pretrained(tmp_path)
    with pytest.raises(OSError):
        ds.models.from_pretrained(tmp_path / "nowhere")
    m = ds.models.from_pretrained(src)
    with pytest.raises(IndexError):
        m(ds.tensor([[1, 99]]))


def _minilm_dir():
    d = Path(os.environ.get("DEEPSEEK_MINILM_DIR", ROOT / "target" / "models" / "all-MiniLM-L6-v2"))
    if not (d / "model.safetensors").is_file():
        if os.environ.get("DEEPSEEK_REQUIRE_MODELS"):
            pytest.fail(f"all-MiniLM-L6-v2 not found in {d} (run scripts/fetch_models.sh)")
        pytest.skip(f"all-MiniLM-L6-v2 not found in {d} (run scripts/fetch_models.sh)")
    return d


def test_minilm_sentence_embeddings_match_reference():
    d = _minilm_dir()
    sentences = json.loads((DATA / "minilm_sentences.json").read_text())
    r = ds.load_file(str(DATA / "minilm_reference.safetensors"))
    tok = ds.tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.no_padding()
    assert tok.encode("Hello!") == r["input_ids"][3][:4].tolist()
    batch = tok(sentences)
    assert batch["input_ids"].tolist() == r["input_ids"].tolist()
    model = ds.models.from_pretrained(d)
    with ds.no_grad():
        h = model(batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    e = ds.models.mean_pooling(h, batch["attention_mask"])
    assert maxdiff(e, r["embeddings"]) < 1e-5
    assert tok.decode(tok.encode("hello world")) == "hello world"
    with pytest.raises(IndexError):
        tok.decode([10**6])


def _smollm2_file():
    f = Path(os.environ.get("DEEPSEEK_SMOLLM2_GGUF",
                            ROOT / "target" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    if not f.is_file():
        if os.environ.get("DEEPSEEK_REQUIRE_MODELS"):
            pytest.fail(f"{f} not found (run scripts/fetch_models.sh)")
        pytest.skip(f"{f} not found (run scripts/fetch_models.sh)")
    return f


def test_smollm2_gguf_chat_and_greedy_tokens_match_transformers():
    f = _smollm2_file()
    ref = json.loads((DATA / "smollm2_reference.json").read_text())
    tok = ds.tokenizers.Tokenizer.from_file(str(f))
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    model = ds.models.from_pretrained(f)
    for case in ref["cases"][2:4]:       # one plain prompt, one chat
        if "messages" in case:
            assert tok.apply_chat_template(case["messages"], add_generation_prompt=True) \
                == case["text"]
            assert tok.apply_chat_template(case["messages"], tokenize=True,
                                           add_generation_prompt=True) == case["prompt_ids"]
        ids = tok.encode(case["text"], add_special_tokens=False)
        assert ids == case["prompt_ids"]
        out = model.generate(ids, max_new_tokens=len(case["tokens"]))
        assert list(out) == case["tokens"]
        assert tok.decode(list(out), skip_special_tokens=False) == case["decoded"]
    with pytest.raises(ValueError):
        tok.apply_chat_template([{"role": "user"}])


def test_gguf_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 8)
    with pytest.raises(OSError, match="broken.gguf"):
        ds.models.from_pretrained(bad)
