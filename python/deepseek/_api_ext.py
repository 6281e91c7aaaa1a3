"""Installs the compositions of ``_math_ops``, ``_reduce_ops`` and ``_shape_ops`` as
``Tensor`` methods (never replacing one the core already has) and returns the top-level
functions for ``deepseek/__init__.py``; also the top-level spellings of
``nn.functional`` ops (``torch.selu``, ``torch.pdist``, ...), the ``*_copy`` variants of
the view ops, and the ``Tensor`` predicates whose answer is fixed by what deepseek
supports (dense, real, non-quantized tensors)."""

from . import _C, _math_ops, _reduce_ops, _shape_ops  # noqa: F401  (registration)

_T = _C.Tensor

# torch.<name> that are nn.functional's functions (same signatures in PyTorch).
_NN_TOP = ["selu", "selu_", "celu", "celu_", "rrelu", "rrelu_", "threshold", "threshold_",
           "prelu", "hardshrink", "pdist", "pixel_shuffle", "pixel_unshuffle",
           "channel_shuffle", "native_channel_shuffle", "cosine_similarity",
           "pairwise_distance", "alpha_dropout", "feature_alpha_dropout", "bilinear",
           "instance_norm", "layer_norm", "group_norm", "batch_norm", "embedding",
           "embedding_bag", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
           "max_pool1d", "max_pool2d", "avg_pool1d", "adaptive_avg_pool1d",
           "adaptive_max_pool1d", "kl_div", "binary_cross_entropy_with_logits",
           "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
           "poisson_nll_loss", "triplet_margin_loss", "rms_norm", "relu_", "dropout"]

# View ops whose ``*_copy`` form returns a fresh tensor (PyTorch's functionalization names).
_COPIES = ["detach", "diagonal", "expand", "permute", "select", "squeeze", "t", "transpose",
           "unsqueeze", "unbind", "split", "split_with_sizes", "unfold", "view", "narrow",
           "alias"]


def _top_nn(name):
    from .nn import functional as F

    f = getattr(F, name)
    if name == "dropout":
        def dropout(input, p, train):
            """``F.dropout(input, p, training=train)``."""
            return F.dropout(input, p, train)

        return dropout
    return f


def _copy_fn(name):
    def f(input, *args, **kwargs):
        src = input if name == "alias" else getattr(input, name)(*args, **kwargs)
        if isinstance(src, (tuple, list)):
            return tuple(s.clone() for s in src)
        return src.clone()

    f.__name__ = name + "_copy"
    f.__doc__ = f"``input.{name}(...)`` as a new tensor (not a view)."
    return f


def _predicates():
    def false(self):
        return False

    def is_signed(self):
        """Whether the dtype is signed (every deepseek dtype except uint8 and bool)."""
        return self.dtype not in (_C.uint8, _C.bool)

    def is_nonzero(self):
        """The truth value of a one-element tensor."""
        if self.numel() != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous"
                               if self.numel() else
                               "Boolean value of Tensor with no values is ambiguous")
        return bool(self.item() != 0)

    def is_same_size(self, other):
        """Whether ``other`` has the same shape."""
        return tuple(self.shape) == tuple(other.shape)

    def get_device(self):
        """-1 for CPU tensors, else the device index."""
        d = self.device
        return -1 if getattr(d, "type", str(d)) == "cpu" else (getattr(d, "index", 0) or 0)

    def is_cpu(self):
        return getattr(self.device, "type", str(self.device)) == "cpu"

    def identity(self):
        """Returns ``self`` (real tensors: nothing to conjugate or resolve)."""
        return self

    def real(self):
        """The real part: the tensor itself (deepseek has no complex tensors)."""
        return self

    def adjoint(self):
        """The conjugate transpose of the last two dimensions (the transpose, for real
        tensors)."""
        return self.transpose(-2, -1)

    def new_empty(self, size, *args, dtype=None, device=None, requires_grad=False, **kw):
        """An uninitialised (here: zero) tensor of ``size`` with ``self``'s dtype."""
        shape = tuple(size) if isinstance(size, (tuple, list)) else (size,) + tuple(args)
        t = _C.zeros(*shape, dtype=dtype or self.dtype)
        return t.requires_grad_(True) if requires_grad else t

    def sum_to_size(self, *size):
        """Sums ``self`` down to ``size`` (which it must broadcast from)."""
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) \
            else tuple(size)
        lead = self.dim() - len(shape)
        if lead < 0:
            raise ValueError(f"size {list(shape)} is not expandable to size "
                             f"{list(self.shape)}")
        x = self.sum(list(range(lead))) if lead else self
        dims = [i for i, (a, b) in enumerate(zip(x.shape, shape)) if b == 1 and a != 1]
        for i, (a, b) in enumerate(zip(x.shape, shape)):
            if b != 1 and a != b:
                raise ValueError(f"size {list(shape)} is not expandable to size "
                                 f"{list(self.shape)}")
        return x.sum(dims, keepdim=True) if dims else x

    props = {
        "is_complex": false, "is_sparse": property(false), "is_quantized": property(false),
        "is_meta": property(false), "is_mkldnn": property(false), "is_nested": property(false),
        "is_sparse_csr": property(false), "is_neg": false, "is_conj": false,
        "is_inference": false, "is_signed": is_signed, "is_nonzero": is_nonzero,
        "is_same_size": is_same_size, "get_device": get_device, "is_cpu": property(is_cpu),
        "conj": identity, "conj_physical": identity, "resolve_conj": identity,
        "resolve_neg": identity, "real": property(real), "adjoint": adjoint,
        "H": property(_h),
        "mH": property(adjoint), "new_empty": new_empty, "sum_to_size": sum_to_size,
    }
    return props


def _h(self):
    """The conjugate transpose of a matrix (its transpose: deepseek tensors are real)."""
    if self.dim() not in (0, 2):
        raise ValueError(f"tensor.H is only supported on matrices (2-D tensors). Got "
                         f"{self.dim()}-D tensor.")
    return self.t() if self.dim() == 2 else self


def install():
    """Sets the Tensor methods; returns ``{name: function}`` for the deepseek namespace."""
    import deepseek

    _math_ops._install()
    for n in _shape_ops.INPLACE:
        if not hasattr(_T, n + "_"):
            setattr(_T, n + "_", _math_ops._make_inplace(n + "_", _math_ops.METHODS[n]))
    for n, v in _predicates().items():
        if n not in _T.__dict__:
            setattr(_T, n, v)
    top = {}
    for n, f in _math_ops.FUNCTIONS.items():
        if not hasattr(deepseek, n):
            top[n] = f
    for n in _NN_TOP:
        if not hasattr(deepseek, n):
            top[n] = _top_nn(n)
    for n in _COPIES:
        top[n + "_copy"] = _copy_fn(n)
    for n in ("is_complex", "is_nonzero", "is_same_size", "is_signed", "is_conj", "is_neg",
              "is_inference", "conj", "conj_physical", "resolve_conj", "resolve_neg",
              "adjoint", "real", "get_device", "sum_to_size"):
        if not hasattr(deepseek, n):
            attr = _T.__dict__[n]
            top[n] = (lambda a: (lambda input, *args: a.fget(input)))(attr) \
                if isinstance(attr, property) else \
                (lambda a: (lambda input, *args, **kw: a(input, *args, **kw)))(attr)
            top[n].__name__ = n
            top[n].__doc__ = f"``input.{n}``."
    return top
