"""``deepseek.nn.functional``: PyTorch's ``F``. Most functions are the Rust ones from
``deepseek._C.functional``; a few are compositions written here."""

from .. import _C
from .._C import functional as _C_F
_NAMES = [
    "relu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "softplus",
    "elu",
    "leaky_relu",
    "softmax",
    "log_softmax",
    "dropout",
    "linear",
    "embedding",
    "pad",
    "layer_norm",
    "rms_norm",
    "batch_norm",
    "group_norm",
    "conv1d",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "scaled_dot_product_attention",
    "one_hot",
]
import sys as _sys

# The binding's functions pickle by reference to deepseek._C.functional (functions not
# re-exported here, such as lstm, included).
_sys.modules.setdefault("deepseek._C.functional", _C_F)
for _n in dir(_C_F):
    _f = getattr(_C_F, _n)
    if callable(_f) and getattr(_f, "__module__", None) in ("functional", None):
        _f.__module__ = "deepseek._C.functional"
for _n in _NAMES:
    globals()[_n] = getattr(_C_F, _n)
    # PyTorch's F.relu reports torch.nn.functional; these report where a program finds them,
    # so a model holding one (TransformerEncoderLayer(activation="relu")) pickles by reference.
    globals()[_n].__module__ = __name__
del _n, _f


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """PyTorch's functional multi-head attention over [L, N, E] inputs; returns
    ``(output, weights or None)``."""
    from .attention import _mha

    unsupported = {"bias_k": bias_k, "bias_v": bias_v, "q_proj_weight": q_proj_weight,
                   "static_k": static_k, "static_v": static_v}
    for k, v in unsupported.items():
        if v is not None:
            raise NotImplementedError(f"multi_head_attention_forward: {k} is not supported")
    if add_zero_attn or use_separate_proj_weight:
        raise NotImplementedError("multi_head_attention_forward: add_zero_attn and "
                                  "use_separate_proj_weight are not supported")
    if query.shape[-1] != embed_dim_to_check:
        raise ValueError(f"was expecting embedding dimension of {embed_dim_to_check}, but got "
                         f"{query.shape[-1]}")
    return _mha(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                out_proj_weight, out_proj_bias, attn_mask, key_padding_mask, is_causal,
                dropout_p, training, need_weights, average_attn_weights)


def normalize(x, p=2.0, dim=1, eps=1e-12, out=None):
    """``x / max(||x||_p, eps)`` along ``dim``."""
    n = x.norm(p, dim, keepdim=True).clamp(min=eps)
    return x / n


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``cosine_similarity(x1, x2, dim=1, eps=1e-8)``: ``x1·x2 / max(|x1| |x2|, eps)`` along
    ``dim``.
    """
    n1 = x1.norm(2, dim).clamp(min=eps)
    n2 = x2.norm(2, dim).clamp(min=eps)
    return (x1 * x2).sum(dim) / (n1 * n2)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` along the last dimension."""
    return (x1 - x2 + eps).norm(p, -1, keepdim)


def _channel_dropout(x, p, training, spatial, who):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if x.dim() not in (spatial + 1, spatial + 2):
        raise ValueError(f"{who}: Expected {spatial + 1}D or {spatial + 2}D input, but "
                         f"received a {x.dim()}D input")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    shape = list(x.shape[:x.dim() - spatial]) + [1] * spatial
    keep = (_C.rand(*shape) >= p).to(x.dtype) / (1.0 - p)
    return x * keep


def dropout1d(x, p=0.5, training=True, inplace=False):
    """Zeroes whole channels of [N, C, L] (or [C, L]) inputs with probability ``p``, scaling
    the rest by ``1 / (1 - p)``."""
    return _channel_dropout(x, p, training, 1, "dropout1d")


def dropout2d(x, p=0.5, training=True, inplace=False):
    """Zeroes whole channels of [N, C, H, W] (or [C, H, W]) inputs with probability ``p``,
    scaling the rest by ``1 / (1 - p)``."""
    return _channel_dropout(x, p, training, 2, "dropout2d")


def dropout3d(x, p=0.5, training=True, inplace=False):
    """Zeroes whole channels of [N, C, D, H, W] (or [C, D, H, W]) inputs with probability
    ``p``, scaling the rest by ``1 / (1 - p)``."""
    return _channel_dropout(x, p, training, 3, "dropout3d")


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """``avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True)``: average pooling over (N, C, L).
    """
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = k if stride is None else (stride if isinstance(stride, int) else stride[0])
    p = padding if isinstance(padding, int) else padding[0]
    y = avg_pool2d(x.unsqueeze(-2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad)
    return y.squeeze(-2)


def softmin(x, dim=None, dtype=None):
    """``softmin(input, dim=None, dtype=None)``: ``softmax(-input, dim)``."""
    return softmax(-x, dim, dtype=dtype)


from . import _activations, _losses, _spatial, _pooling  # noqa: E402
from ._activations import *  # noqa: E402,F401,F403
from ._losses import *  # noqa: E402,F401,F403
from ._spatial import *  # noqa: E402,F401,F403
from ._pooling import *  # noqa: E402,F401,F403

# Report (and pickle by reference to) the place programs find them, as the bindings do.
for _m in (_activations, _losses, _spatial, _pooling):
    for _n in _m.__all__:
        globals()[_n].__module__ = __name__
        if _n in _NAMES:  # a binding function wrapped here pickles as deepseek._C.functional
            getattr(_C_F, _n).__module__ = "deepseek._C.functional"
del _m, _n
