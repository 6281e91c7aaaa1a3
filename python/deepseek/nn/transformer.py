"""Transformer stacks with PyTorch's names (``TransformerEncoderLayer``,
``TransformerEncoder``, ``TransformerDecoderLayer``, ``TransformerDecoder``, ``Transformer``) and the blocks of modern decoder LLMs
(``RotaryEmbedding``, ``SwiGLU``, ``GroupedQueryAttention`` with a ``KVCache``), plus the
tutorial's ``SparseAttention``. All are compositions of deepseek tensor ops, so autograd
covers them."""

import copy
import math

from .. import _C
from . import functional as F
from .attention import MultiheadAttention
from .container import ModuleList
from .layers import Dropout, LayerNorm, Linear, _check_device
from .module import Module

__all__ = ["TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer", "TransformerDecoder", "Transformer", "RotaryEmbedding",
           "SwiGLU", "KVCache", "GroupedQueryAttention", "SparseAttention"]


def _activation(activation):
    if activation in ("relu", F.relu):
        return F.relu
    if activation in ("gelu", F.gelu):
        return F.gelu
    if callable(activation):
        return activation
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")



class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block (post-norm by default, ``norm_first`` for
    pre-norm), with PyTorch's sub-module names and dropout placement (attention weights,
    feed-forward hidden layer, both residual branches)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if activation in ("relu", F.relu):
            self.activation = F.relu
        elif activation in ("gelu", F.gelu):
            self.activation = F.gelu
        elif callable(activation):
            self.activation = activation
        else:
            raise RuntimeError(f"activation should be relu/gelu, not {activation}")
        if dtype is not None:
            self.to(dtype)

    def _sa(self, x, mask, key_padding_mask, is_causal):
        return self.dropout1(self.self_attn(x, x, x, attn_mask=mask,
                                            key_padding_mask=key_padding_mask,
                                            need_weights=False, is_causal=is_causal)[0])

    def _ff(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        kp = src_key_padding_mask
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, kp, is_causal)
            x = x + self._ff(self.norm2(x))
        else:
            x = self.norm1(x + self._sa(x, src_mask, kp, is_causal))
            x = self.norm2(x + self._ff(x))
        return x


class TransformerEncoder(Module):
    """``TransformerEncoder(encoder_layer, num_layers, norm=None)``: ``num_layers`` deep copies
    of ``encoder_layer`` applied in turn, then ``norm``.
    """
    def __init__(self, encoder_layer, num_layers, norm=None, **kwargs):
        super().__init__()
        import copy

        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x

class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over ``memory`` and a feed-forward block (post-norm,
    or pre-norm with ``norm_first``), PyTorch's sub-module names and masks."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)
        if dtype is not None:
            self.to(dtype)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        def sa(x):
            return self.dropout1(self.self_attn(
                x, x, x, attn_mask=tgt_mask, key_padding_mask=tgt_key_padding_mask,
                need_weights=False, is_causal=tgt_is_causal and tgt_mask is None)[0])

        def ca(x):
            return self.dropout2(self.multihead_attn(
                x, memory, memory, attn_mask=memory_mask,
                key_padding_mask=memory_key_padding_mask, need_weights=False,
                is_causal=memory_is_causal and memory_mask is None)[0])

        def ff(x):
            return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

        x = tgt
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + ca(self.norm2(x))
            return x + ff(self.norm3(x))
        x = self.norm1(x + sa(x))
        x = self.norm2(x + ca(x))
        return self.norm3(x + ff(x))


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` and an optional final ``norm``."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """PyTorch's ``nn.Transformer``: an encoder and a decoder with final layer norms
    (``encoder.layers.0...``, ``encoder.norm``, ``decoder.layers.0...``, ``decoder.norm``)."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=False,
                 norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            el = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                         layer_norm_eps, batch_first, norm_first, bias)
            self.encoder = TransformerEncoder(el, num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            dl = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                         layer_norm_eps, batch_first, norm_first, bias)
            self.decoder = TransformerDecoder(dl, num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        if dtype is not None:
            self.to(dtype)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """[sz, sz] float mask: ``-inf`` above the diagonal, 0 elsewhere."""
        m = _C.zeros(sz, sz, dtype=dtype or _C.float32)
        return m.masked_fill(_C.ones(sz, sz, dtype=_C.bool).triu(1), float("-inf"))

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        bdim = 0 if self.batch_first else 1
        if src.dim() == 3 and src.shape[bdim] != tgt.shape[bdim]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=bool(src_is_causal))
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)


class RotaryEmbedding(Module):
    """Rotary position embedding of heads with ``head_dim`` features: ``interleaved=False``
    rotates feature i with i + d/2 (GPT-NeoX / Hugging Face Llama), ``interleaved=True``
    rotates pairs (2i, 2i+1) (GPT-J / Meta Llama / GGUF). ``forward(x, offset)`` takes
    [..., T, head_dim] at positions ``offset..offset+T``."""

    def __init__(self, head_dim, base=10000.0, interleaved=False):
        super().__init__()
        if head_dim <= 0 or head_dim % 2:
            raise ValueError(f"head_dim must be even and positive, got {head_dim}")
        self.head_dim, self.base, self.interleaved = head_dim, base, interleaved

    def _tables(self, offset, t, dtype):
        half = self.head_dim // 2
        ang = [[p * self.base ** (-2.0 * i / self.head_dim) for i in range(half)]
               for p in range(offset, offset + t)]
        c = _C.tensor([[math.cos(a) for a in r] for r in ang], dtype=_C.float64).to(dtype)
        s = _C.tensor([[math.sin(a) for a in r] for r in ang], dtype=_C.float64).to(dtype)
        return c.reshape(t, half), s.reshape(t, half)

    def forward(self, x, offset=0):
        if x.dim() < 2 or x.shape[-1] != self.head_dim:
            raise ValueError(f"RotaryEmbedding: expected [..., T, {self.head_dim}], "
                             f"got {list(x.shape)}")
        t, half = x.shape[-2], self.head_dim // 2
        c, s = self._tables(offset, t, x.dtype)
        if not self.interleaved:
            x1, x2 = x.narrow(-1, 0, half), x.narrow(-1, half, half)
            return _C.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)
        xp = x.reshape(*x.shape[:-1], half, 2)
        xe, xo = xp.select(-1, 0), xp.select(-1, 1)
        return _C.stack([xe * c - xo * s, xe * s + xo * c], -1).reshape(*x.shape)

    def extra_repr(self):
        return f"{self.head_dim}, base={self.base}, interleaved={self.interleaved}"


class SwiGLU(Module):
    """``down_proj(silu(gate_proj(x)) * up_proj(x))`` (Llama MLP names)."""

    def __init__(self, dim, hidden_dim, bias=False):
        super().__init__()
        self.gate_proj = Linear(dim, hidden_dim, bias=bias)
        self.up_proj = Linear(dim, hidden_dim, bias=bias)
        self.down_proj = Linear(hidden_dim, dim, bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class KVCache:
    """Keys and values seen so far by one attention layer ([B, H_kv, S, D] each)."""

    def __init__(self):
        self.k = self.v = None

    def __len__(self):
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k, v):
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k, self.v = _C.cat([self.k, k], 2), _C.cat([self.v, v], 2)
        return self.k, self.v


def _causal_mask(t, s, offset, dtype):
    m = _C.zeros(t, s, dtype=dtype)
    allowed = _C.ones(t, s, dtype=_C.bool).tril(offset)
    return m.masked_fill(allowed.logical_not(), float("-inf"))


class GroupedQueryAttention(Module):
    """Batch-first grouped-query attention (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``):
    ``num_heads`` query heads share ``num_kv_heads`` key/value heads; optional ``rope``;
    ``forward(x, cache=None, attn_mask=None, is_causal=True)`` appends to a ``KVCache``."""

    def __init__(self, embed_dim, num_heads, num_kv_heads=None, bias=False, rope=None):
        super().__init__()
        num_kv_heads = num_kv_heads or num_heads
        if embed_dim % num_heads or num_heads % num_kv_heads:
            raise ValueError(f"embed_dim {embed_dim}, num_heads {num_heads}, num_kv_heads "
                             f"{num_kv_heads}: heads must divide embed_dim and kv heads heads")
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = hd = embed_dim // num_heads
        self.q_proj = Linear(embed_dim, num_heads * hd, bias=bias)
        self.k_proj = Linear(embed_dim, num_kv_heads * hd, bias=bias)
        self.v_proj = Linear(embed_dim, num_kv_heads * hd, bias=bias)
        self.o_proj = Linear(num_heads * hd, embed_dim, bias=bias)
        self.rope = rope

    def forward(self, x, cache=None, attn_mask=None, is_causal=True):
        b, t, _ = x.shape
        hd = self.head_dim

        def heads(y, h):
            return y.reshape(b, t, h, hd).transpose(1, 2)

        q = heads(self.q_proj(x), self.num_heads)
        k = heads(self.k_proj(x), self.num_kv_heads)
        v = heads(self.v_proj(x), self.num_kv_heads)
        off = len(cache) if cache is not None else 0
        if self.rope is not None:
            q, k = self.rope(q, off), self.rope(k, off)
        if cache is not None:
            k, v = cache.append(k, v)
        rep = self.num_heads // self.num_kv_heads
        if rep > 1:
            s = k.shape[2]
            k = k.unsqueeze(2).expand(b, self.num_kv_heads, rep, s, hd).reshape(b, -1, s, hd)
            v = v.unsqueeze(2).expand(b, self.num_kv_heads, rep, s, hd).reshape(b, -1, s, hd)
        if attn_mask is None and is_causal:
            attn_mask = _causal_mask(t, k.shape[2], off, x.dtype)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, self.num_heads * hd))


class SparseAttention(Module):
    """The tutorial's ``SparseAttention(dim, num_heads, locality_window=32)``: query i attends
    key j when ``|i - j| < locality_window`` or either is one of ``global_tokens`` (and
    ``j <= i`` when ``causal``), computed blockwise in O(T·w). ``dense_mask(T)`` is the same
    pattern as a dense bool mask and ``forward_dense`` the O(T²) reference."""

    def __init__(self, dim, num_heads, locality_window=32, global_tokens=(), causal=False):
        super().__init__()
        if dim % num_heads or locality_window <= 0:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads} and "
                             f"locality_window ({locality_window}) positive")
        self.dim, self.num_heads, self.locality_window = dim, num_heads, locality_window
        self.global_tokens, self.causal = sorted(set(global_tokens)), causal
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)

    def _ok(self, i, j, g):
        near = abs(i - j) < self.locality_window
        return (near or i in g or j in g) and (not self.causal or j <= i)

    def dense_mask(self, t):
        g = set(self._globals(t))
        return _C.tensor([[self._ok(i, j, g) for j in range(t)] for i in range(t)],
                         dtype=_C.bool)

    def _globals(self, t):
        bad = [i for i in self.global_tokens if i >= t]
        if bad:
            raise IndexError(f"global token {bad[0]} is outside a sequence of length {t}")
        return self.global_tokens

    def _project(self, x):
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.dim // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        return qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2)

    def _out(self, o):
        b, _, t, _ = o.shape
        return self.proj(o.transpose(1, 2).reshape(b, t, self.dim))

    def attention_weights(self, x):
        """The attention probabilities [B, H, T, T] of ``x`` [B, T, dim]: softmax of the
        scaled scores over the keys ``dense_mask`` allows, 0 elsewhere (dense, O(T²): for
        inspection, e.g. ``nn.capture_attention``)."""
        q, k, _ = self._project(x)
        s = q.matmul(k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
        return s.masked_fill(self.dense_mask(x.shape[1]).logical_not(), float("-inf")).softmax(-1)

    def forward_dense(self, x):
        q, k, v = self._project(x)
        return self._out(F.scaled_dot_product_attention(q, k, v,
                                                        attn_mask=self.dense_mask(x.shape[1])))

    def _local_mask(self, t, w, nb, gs, dtype):
        """The additive band mask [nb, w, 3w], cached per (T, dtype, globals, causal)."""
        key = (t, w, str(dtype), tuple(sorted(gs)), self.causal, self.locality_window)
        cache = self.__dict__.setdefault("_mask_cache", {})
        if key not in cache:
            neg = -3.4028234663852886e38
            lm = [[[0.0 if (i < t and 0 <= j < t and abs(i - j) < self.locality_window
                            and j not in gs and (not self.causal or j <= i)) else neg
                    for j in (blk * w + c - w for c in range(3 * w))]
                   for i in (blk * w + r for r in range(w))] for blk in range(nb)]
            cache.clear()
            cache[key] = _C.tensor(lm, dtype=_C.float32).to(dtype)
        return cache[key]

    def forward(self, x):
        if _C._is_recording_attention():  # inside nn.capture_attention
            _C._record_attention_map(self.attention_weights(x))
        q, k, v = self._project(x)
        b, h, t, hd = q.shape
        w = min(self.locality_window, max(t, 1))
        nb = -(-t // w)
        tp = nb * w
        g = self._globals(t)
        gs = set(g)
        neg = -3.4028234663852886e38
        q = q * (1.0 / math.sqrt(hd))
        qb = F.pad(q, (0, 0, 0, tp - t)).reshape(b, h, nb, w, hd)

        def band(y):
            yp = F.pad(y, (0, 0, w, tp - t + w))
            return _C.cat([yp.narrow(2, s * w, tp).reshape(b, h, nb, w, hd) for s in range(3)], 3)

        kb, vb = band(k), band(v)
        lm = self._local_mask(t, w, nb, gs, q.dtype)
        scores = [qb.matmul(kb.transpose(-2, -1)) + lm]
        values = [vb]
        if g:
            gi = _C.tensor(g, dtype=_C.int64)
            kg, vg = k.index_select(2, gi), v.index_select(2, gi)
            gm = [[0.0 if i < t and (not self.causal or j <= i) else neg for j in g]
                  for i in range(tp)]
            scores.append(qb.matmul(kg.transpose(-2, -1).unsqueeze(2))
                          + _C.tensor(gm, dtype=q.dtype).reshape(nb, w, len(g)))
            values.append(vg.unsqueeze(2).expand(b, h, nb, len(g), hd))
        p = _C.cat(scores, -1).softmax(-1)
        o, at = None, 0
        for s, val in zip(scores, values):
            n = s.shape[-1]
            part = p.narrow(-1, at, n).matmul(val)
            at += n
            o = part if o is None else o + part
        o = o.reshape(b, h, tp, hd).narrow(2, 0, t)
        if g:
            dm = [[neg if self.causal and j > i else 0.0 for j in range(t)] for i in g]
            og = (q.index_select(2, gi).matmul(k.transpose(-2, -1))
                  + _C.tensor(dm, dtype=q.dtype)).softmax(-1).matmul(v)
            keep = _C.tensor([[0.0 if i in gs else 1.0] for i in range(t)], dtype=q.dtype)
            onehot = _C.tensor([[1.0 if i == j else 0.0 for j in g] for i in range(t)],
                               dtype=q.dtype)
            o = o * keep + onehot.matmul(og)
        return self._out(o)
