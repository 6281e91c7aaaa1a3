"""Installs the compositions of ``_math_ops``, ``_reduce_ops`` and ``_shape_ops`` as
``Tensor`` methods (never replacing one the core already has) and returns the top-level
functions for ``deepseek/__init__.py``; also the top-level spellings of
``nn.functional`` ops (``torch.selu``, ``torch.pdist``, ...), the ``*_copy`` variants of
the view ops, and the ``Tensor`` predicates whose answer is fixed by what deepseek
supports (dense, real, non-quantized tensors)."""

import math

from . import _C, _math_ops, _reduce_ops, _shape_ops, _linalg_ops  # noqa: F401  (registration)
from . import _index_ops, _stats_ops  # noqa: F401,E402  (registration)

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
        """False: deepseek has no complex dtypes and no sparse, quantized, meta, MKL-DNN,
        nested, conjugate or negative-view tensors."""
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
        "is_signed": is_signed, "is_nonzero": is_nonzero,
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

    _linalg_ops._install()
    _math_ops._install()
    for n in _shape_ops.INPLACE:
        if not hasattr(_T, n + "_"):
            setattr(_T, n + "_", _math_ops._make_inplace(n + "_", _math_ops.METHODS[n]))
    for n, v in list(_predicates().items()) + list(_index_ops.PROPERTIES.items()):
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
              "conj", "conj_physical", "resolve_conj", "resolve_neg",
              "adjoint", "real", "get_device", "sum_to_size"):
        if not hasattr(deepseek, n):
            attr = _T.__dict__[n]
            top[n] = (lambda a: (lambda input, *args: a.fget(input)))(attr) \
                if isinstance(attr, property) else \
                (lambda a: (lambda input, *args, **kw: a(input, *args, **kw)))(attr)
            top[n].__name__ = n
            top[n].__doc__ = f"``input.{n}``."
    return top


# torch.<name>_(input, ...) in-place functions: the Tensor method of the same name.
_INPLACE_TOP = ["abs_", "acos_", "acosh_", "addmv_", "arccos_", "arccosh_", "arcsin_",
                "arcsinh_", "arctan_", "arctanh_", "asin_", "asinh_", "atan_", "atanh_",
                "ceil_", "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_",
                "detach_", "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fill_", "fix_",
                "floor_", "frac_", "gcd_", "lcm_", "ldexp_", "log10_", "log1p_", "log2_",
                "log_", "logit_", "nan_to_num_", "neg_", "negative_", "rad2deg_",
                "reciprocal_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_", "sinh_",
                "sqrt_", "square_", "tan_", "tanh_", "trunc_", "xlogy_", "zero_"]


def _call_method(name):
    def f(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    f.__name__ = name
    f.__doc__ = f"``deepseek.{name}(input, ...)`` is ``input.{name}(...)``."
    return f


def _window(name, fn):
    def window(window_length, periodic=True, *, dtype=None, layout=None, device=None,
               requires_grad=False, **kw):
        import numpy as np

        if window_length < 0:
            raise ValueError(f"{name} requires non-negative window_length, got "
                             f"window_length={window_length}")
        if window_length == 1:
            w = np.ones(1)
        else:
            n = window_length + 1 if periodic else window_length
            w = fn(np.arange(n, dtype=np.float64), n, **kw)[:window_length]
        t = _C.tensor(w).to(dtype or _C.float32)
        return t.requires_grad_(True) if requires_grad else t

    window.__name__ = name
    window.__doc__ = f"The {name.split('_')[0]} window of ``window_length`` points " \
                     f"(``periodic``: one period of a window of ``window_length + 1``)."
    return window


def _hann(k, n):
    import numpy as np

    return 0.5 - 0.5 * np.cos(2 * np.pi * k / (n - 1))


def _hamming(k, n, alpha=0.54, beta=0.46):
    import numpy as np

    return alpha - beta * np.cos(2 * np.pi * k / (n - 1))


def _blackman(k, n):
    import numpy as np

    return 0.42 - 0.5 * np.cos(2 * np.pi * k / (n - 1)) + 0.08 * np.cos(4 * np.pi * k / (n - 1))


def _bartlett(k, n):
    import numpy as np

    return 1 - np.abs(2 * k / (n - 1) - 1)


def _kaiser(k, n, beta=12.0):
    import numpy as np

    return np.i0(beta * np.sqrt(1 - (2 * k / (n - 1) - 1) ** 2)) / np.i0(beta)


def _misc():
    """Top-level functions composed here: windows, ``logspace``, ``isin``, ``fill``,
    ``gradient``, the RNN cells, dtype queries, dropout variants."""
    import deepseek
    from .nn import functional as F

    def fill(input, value):
        """A copy of ``input`` filled with ``value``."""
        return _C.full_like(input, float(value) if not isinstance(value, _T) else
                            value.item()) if not isinstance(value, _T) or value.dim() == 0 \
            else _raise(ValueError("fill only supports 0-dimension value tensor"))

    def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None,
                 requires_grad=False):
        """``base ** linspace(start, end, steps)``."""
        t = (_C.linspace(float(start), float(end), steps, dtype=_C.float64) *
             math.log(base)).exp().to(dtype or _C.float32)
        return t.requires_grad_(True) if requires_grad else t

    def isin(elements, test_elements, *, assume_unique=False, invert=False):
        """True where an element of ``elements`` occurs in ``test_elements``."""
        import numpy as np

        e = elements.detach().numpy() if isinstance(elements, _T) else np.asarray(elements)
        t = test_elements.detach().numpy() if isinstance(test_elements, _T) else \
            np.asarray(test_elements)
        return _C.tensor(np.isin(e, t, invert=invert))

    def gradient(input, *, spacing=1, dim=None, edge_order=1):
        """Second-order central differences in the interior and first-order ones at the
        edges (``edge_order=1``), one tensor per dimension in ``dim`` (all by default);
        ``spacing`` is a number or one per dimension."""
        if edge_order != 1:
            raise NotImplementedError("gradient: only edge_order=1 is supported")
        dims = list(range(input.dim())) if dim is None else \
            ([dim] if isinstance(dim, int) else list(dim))
        sp = spacing if isinstance(spacing, (list, tuple)) else [spacing] * len(dims)
        if len(sp) != len(dims):
            raise ValueError(f"torch.gradient expected spacing to be unspecified, a scalar or "
                             f"a list of length {len(dims)}, but got a list of length "
                             f"{len(sp)}")
        out = []
        for d, h in zip(dims, sp):
            n = input.shape[d]
            if n < 2:
                raise ValueError("torch.gradient expected each dimension size to be at least "
                                 "edge_order+1")
            h = float(h)
            first = (input.narrow(d, 1, 1) - input.narrow(d, 0, 1)) / h
            last = (input.narrow(d, n - 1, 1) - input.narrow(d, n - 2, 1)) / h
            parts = [first]
            if n > 2:
                parts.append((input.narrow(d, 2, n - 2) - input.narrow(d, 0, n - 2)) / (2 * h))
            parts.append(last)
            out.append(_C.cat(parts, d))
        return tuple(out)

    def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
        """One LSTM step: returns ``(h', c')`` (gates i, f, g, o as in ``nn.LSTMCell``)."""
        h, c = hx
        g = input.matmul(w_ih.t()) + h.matmul(w_hh.t())
        if b_ih is not None:
            g = g + b_ih
        if b_hh is not None:
            g = g + b_hh
        i, f, gg, o = g.chunk(4, -1)
        c2 = f.sigmoid() * c + i.sigmoid() * gg.tanh()
        return o.sigmoid() * c2.tanh(), c2

    def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
        """One GRU step (gates r, z, n as in ``nn.GRUCell``)."""
        gi = input.matmul(w_ih.t())
        gh = hx.matmul(w_hh.t())
        if b_ih is not None:
            gi = gi + b_ih
        if b_hh is not None:
            gh = gh + b_hh
        ir, iz, inn = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
        n = (inn + r * hn).tanh()
        return (1 - z) * n + z * hx

    def _rnn_cell(act):
        def cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
            g = input.matmul(w_ih.t()) + hx.matmul(w_hh.t())
            if b_ih is not None:
                g = g + b_ih
            if b_hh is not None:
                g = g + b_hh
            return act(g)

        cell.__doc__ = "One Elman RNN step: ``act(x W_ih^T + b_ih + h W_hh^T + b_hh)``."
        return cell

    def promote_types(type1, type2):
        """The dtype PyTorch's promotion gives two dtypes."""
        return (_C.zeros(1, dtype=type1) + _C.zeros(1, dtype=type2)).dtype

    def result_type(tensor1, tensor2):
        """The dtype of an arithmetic op on the two operands (tensors or numbers)."""
        a = tensor1 if isinstance(tensor1, _T) else _C.tensor(tensor1)
        b = tensor2 if isinstance(tensor2, _T) else _C.tensor(tensor2)
        if isinstance(tensor2, (bool, int, float)) and not isinstance(tensor1, (bool, int,
                                                                                 float)):
            return (a + tensor2).dtype if a.dtype != _C.bool or isinstance(tensor2, bool) \
                else (a.to(_C.int64) + tensor2).dtype if isinstance(tensor2, int) \
                else _C.float32
        if isinstance(tensor1, (bool, int, float)) and not isinstance(tensor2, (bool, int,
                                                                                 float)):
            return result_type(tensor2, tensor1)
        return (a + b).dtype

    def can_cast(from_, to):
        """Whether PyTorch's casting rules allow ``from_`` -> ``to`` in an in-place op."""
        order = {_C.bool: 0, _C.uint8: 1, _C.int32: 1, _C.int64: 1, _C.float16: 2,
                 _C.bfloat16: 2, _C.float32: 2, _C.float64: 2}
        return order[from_] <= order[to]

    def unravel_index(indices, shape):
        """The coordinates of flat ``indices`` in a tensor of ``shape``: one tensor per
        dimension."""
        import numpy as np

        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        a = indices.detach().numpy() if isinstance(indices, _T) else np.asarray(indices)
        n = int(np.prod(shape))
        if a.size and (a.max() >= n or a.min() < -n):
            raise ValueError("unravel_index: index out of bounds for the given shape")
        return tuple(_C.tensor(np.asarray(c).astype(np.int64))
                     for c in np.unravel_index(a % max(n, 1), shape))

    def initial_seed():
        """The seed the global generator was last seeded with (``manual_seed``/``seed``;
        the process starts from the core's fixed default seed, 0)."""
        return _C.default_generator.initial_seed()

    def _drop_(fn, name):
        def f(input, p, train):
            return _C._assign_inplace(input, fn(input, p, train), name)

        f.__name__ = name
        f.__doc__ = f"In-place ``{name[:-1]}``."
        return f

    def feature_dropout(input, p, train):
        """Channel dropout (``F.dropout1d/2d/3d`` by the input's rank)."""
        spatial = input.dim() - 2
        fn = {1: F.dropout1d, 2: F.dropout2d, 3: F.dropout3d}.get(max(spatial, 1))
        return fn(input, p, train)

    fns = {
        "fill": fill, "logspace": logspace, "isin": isin, "gradient": gradient,
        "lstm_cell": lstm_cell, "gru_cell": gru_cell,
        "rnn_tanh_cell": _rnn_cell(lambda g: g.tanh()),
        "rnn_relu_cell": _rnn_cell(lambda g: g.relu()),
        "promote_types": promote_types, "result_type": result_type, "can_cast": can_cast,
        "unravel_index": unravel_index, "initial_seed": initial_seed,
        "hann_window": _window("hann_window", _hann),
        "hamming_window": _window("hamming_window", _hamming),
        "blackman_window": _window("blackman_window", _blackman),
        "bartlett_window": _window("bartlett_window", _bartlett),
        "kaiser_window": _window("kaiser_window", _kaiser),
        "feature_dropout": feature_dropout,
        "dropout_": _drop_(lambda x, p, t: F.dropout(x, p, t), "dropout_"),
        "alpha_dropout_": _drop_(F.alpha_dropout, "alpha_dropout_"),
        "feature_alpha_dropout_": _drop_(F.feature_alpha_dropout, "feature_alpha_dropout_"),
        "feature_dropout_": _drop_(feature_dropout, "feature_dropout_"),
        "constant_pad_nd": _constant_pad_nd,
    }
    for n, f in fns.items():
        if f.__name__ == "<lambda>" or f.__name__ != n:
            f.__name__ = n
    return {n: f for n, f in fns.items() if not hasattr(deepseek, n)}




def _raise(e):
    raise e


def install_misc():
    """The in-place top-level functions and ``_misc``."""
    import deepseek

    top = {n: _call_method(n) for n in _INPLACE_TOP if not hasattr(deepseek, n)}
    top.update(_misc())
    top.update(_misc2())
    top.update(_misc3())
    for n in ("unique_consecutive", "histogram"):
        if n in top and n not in _T.__dict__:
            setattr(_T, n, top[n])
    return top


_MATMUL_PRECISION = ["highest"]


def _misc2():
    """More top-level functions: sampling (``normal``, ``randint_like``), creation
    (``scalar_tensor``, ``range``, ``asarray``, ``frombuffer``), ``unique_consecutive``,
    ``histogram``, ``cond``/``while_loop``, ``typename`` and friends."""
    import numpy as np

    import deepseek
    from . import amp, nn

    def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, **kw):
        """Samples N(mean, std^2): ``mean``/``std`` tensors (broadcast; the result has
        their shape) or numbers with ``size``."""
        if isinstance(mean, _T) or isinstance(std, _T):
            m = mean if isinstance(mean, _T) else None
            s = std if isinstance(std, _T) else None
            ref = m if m is not None else s
            if not ref.is_floating_point():
                raise TypeError("normal expects floating point mean and std")
            if s is not None and bool((s < 0).any()):
                raise ValueError("normal expects all elements of std >= 0.0")
            shape = tuple((m if m is not None else ref).shape)
            if m is not None and s is not None and tuple(m.shape) != tuple(s.shape):
                shape = tuple(broadcast_shapes(m.shape, s.shape))
            z = (_C.randn(*shape, generator=generator, dtype=ref.dtype) if shape
                 else _C.randn(1, generator=generator, dtype=ref.dtype)[0])
            return (z * (std if s is None else s) + (mean if m is None else m)).detach()
        if size is None:
            raise TypeError("normal() with number mean and std needs a size")
        if std < 0:
            raise ValueError(f"normal expects std >= 0.0, but found std {std}")
        return _C.randn(*size, generator=generator, dtype=dtype or _C.float32) * std + mean

    def broadcast_shapes(*s):
        return _shape_ops.broadcast_shapes(*s)

    def randint_like(input, low=0, high=None, *, dtype=None, **kw):
        """Random integers in [low, high) with ``input``'s shape (and dtype)."""
        if high is None:
            low, high = 0, low
        if high <= low:
            raise ValueError(f"random_ expects 'from' to be less than 'to', but got "
                             f"from={low} >= to={high}")
        u = _C.rand(*input.shape, dtype=_C.float64)
        return ((u * (high - low)).floor() + low).to(dtype or input.dtype)

    def scalar_tensor(s, *, dtype=None, **kw):
        """A 0-d tensor holding ``s`` (float32 by default)."""
        return _C.full((), float(s), dtype=dtype or _C.float32)

    def range_(start=0, end=None, step=1, *, dtype=None, **kw):
        """Deprecated ``torch.range``: ``start`` to ``end`` inclusive (float32)."""
        if end is None:
            start, end = 0, start
        if step == 0:
            raise ValueError("step must be nonzero")
        n = int(math.floor((end - start) / step)) + 1
        if n < 0:
            raise ValueError("upper bound and larger bound inconsistent with step sign")
        return (_C.arange(n, dtype=_C.float64) * step + start).to(dtype or _C.float32)

    def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
        """A tensor from ``obj`` (a tensor, a numpy array, a buffer, nested sequences),
        sharing memory where possible unless ``copy=True``."""
        if isinstance(obj, _T):
            t = obj if dtype is None else obj.to(dtype)
            if copy:
                t = t.clone()
        elif isinstance(obj, np.ndarray) and not copy and dtype is None:
            t = _C.as_tensor(obj)
        elif isinstance(obj, (bytes, bytearray, memoryview)):
            t = frombuffer(obj, dtype=dtype or _C.float32)
        else:
            t = _C.tensor(obj, dtype=dtype) if dtype is not None else _C.tensor(obj)
        return t.requires_grad_(True) if requires_grad else t

    def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False):
        """A 1-D tensor over the bytes of ``buffer`` interpreted as ``dtype``."""
        name = str(dtype).split(".")[-1]
        npd = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
               "int64": np.int64, "int32": np.int32, "uint8": np.uint8, "bool": np.bool_}
        if name not in npd:
            raise TypeError(f"frombuffer: unsupported dtype {dtype}")
        a = np.frombuffer(buffer, dtype=npd[name], count=count, offset=offset)
        if a.size == 0:
            raise ValueError("both buffer length and count must be greater than 0")
        t = _C.tensor(a.copy())
        return t.requires_grad_(True) if requires_grad else t

    def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
        """Collapses runs of equal consecutive elements (of the flattened ``input``, or of
        slices along ``dim``); optionally the inverse indices and the run lengths."""
        a = input.detach().numpy()
        if dim is None:
            flat = a.reshape(-1)
            if flat.size == 0:
                starts = np.zeros(0, dtype=np.int64)
            else:
                starts = np.concatenate([[0], np.nonzero(flat[1:] != flat[:-1])[0] + 1])
            vals = input.reshape(-1).index_select(0, _C.tensor(starts.astype(np.int64)))
            inv_shape = a.shape
        else:
            d = dim % input.dim()
            moved = np.moveaxis(a, d, 0).reshape(a.shape[d], -1)
            diff = (moved[1:] != moved[:-1]).any(1) if moved.shape[0] > 1 else np.zeros(0, bool)
            starts = np.concatenate([[0], np.nonzero(diff)[0] + 1]) if moved.shape[0] else \
                np.zeros(0, dtype=np.int64)
            vals = input.index_select(d, _C.tensor(starts.astype(np.int64)))
            inv_shape = (a.shape[d],)
        n = int(np.prod(inv_shape))
        run = np.zeros(n, dtype=np.int64)
        run[starts[1:]] = 1
        inverse = np.cumsum(run).reshape(inv_shape)
        counts = np.diff(np.append(starts, n))
        out = (vals,)
        if return_inverse:
            out += (_C.tensor(inverse.astype(np.int64)),)
        if return_counts:
            out += (_C.tensor(counts.astype(np.int64)),)
        return out[0] if len(out) == 1 else out

    def histogram(input, bins=100, *, range=None, weight=None, density=False):
        """``(hist, bin_edges)``: counts (or weighted sums, or a density) of the values in
        ``bins`` equal bins (an int) or between the given edges (a 1-D tensor)."""
        import collections

        a = input.detach().numpy().reshape(-1).astype(np.float64)
        b = bins.detach().numpy() if isinstance(bins, _T) else bins
        w = None if weight is None else weight.detach().numpy().reshape(-1)
        if isinstance(b, int) and range is None and a.size:
            lo, hi = float(a.min()), float(a.max())
            rng = (lo, hi)
        else:
            rng = range
        h, edges = np.histogram(a, bins=b, range=rng, weights=w, density=density)
        res = collections.namedtuple("histogram", ["hist", "bin_edges"])
        return res(_C.tensor(h.astype(np.float64)).to(input.dtype),
                   _C.tensor(edges.astype(np.float64)).to(input.dtype))

    def cond(pred, true_fn, false_fn, operands=()):
        """``true_fn(*operands)`` if ``pred`` (a bool or one-element tensor) else
        ``false_fn(*operands)``."""
        p = bool(pred.item()) if isinstance(pred, _T) else bool(pred)
        return true_fn(*operands) if p else false_fn(*operands)

    def while_loop(cond_fn, body_fn, carried_inputs):
        """Runs ``carried_inputs = body_fn(*carried_inputs)`` while ``cond_fn`` holds."""
        vals = tuple(carried_inputs)
        while bool(cond_fn(*vals)):
            out = body_fn(*vals)
            vals = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        return vals

    def typename(obj):
        """``'torch.FloatTensor'``-style names for tensors, the qualified name otherwise."""
        if isinstance(obj, _T):
            return {"float32": "torch.FloatTensor", "float64": "torch.DoubleTensor",
                    "float16": "torch.HalfTensor", "bfloat16": "torch.BFloat16Tensor",
                    "int64": "torch.LongTensor", "int32": "torch.IntTensor",
                    "uint8": "torch.ByteTensor", "bool": "torch.BoolTensor"}[
                str(obj.dtype).split(".")[-1]]
        module = getattr(obj, "__module__", "") or ""
        qual = getattr(obj, "__qualname__", type(obj).__qualname__)
        return f"{module}.{qual}" if module not in ("", "builtins") else qual

    def is_storage(obj):
        """False: deepseek exposes no storage objects."""
        return False

    def set_float32_matmul_precision(precision):
        """Records the float32 matmul precision ('highest', 'high' or 'medium'); deepseek's
        CPU matmul always computes in full float32, as PyTorch's CPU kernels do."""
        if precision not in ("highest", "high", "medium"):
            raise ValueError(f"Invalid precision {precision!r}, expected one of 'highest', "
                             f"'high', 'medium'")
        _MATMUL_PRECISION[0] = precision

    def get_float32_matmul_precision():
        """The value given to ``set_float32_matmul_precision`` ('highest' by default)."""
        return _MATMUL_PRECISION[0]

    def get_default_device():
        """The device new tensors are created on (deepseek creates them on the CPU)."""
        return _C.device("cpu")

    def frobenius_norm(input, dim=(), keepdim=False):
        """``sqrt(sum(x^2))`` over ``dim`` (all dimensions when empty)."""
        dims = list(builtins_range(input.dim())) if dim in ((), [], None) else dim
        return input.norm(2, dims, keepdim)

    fns = {"normal": normal, "randint_like": randint_like, "scalar_tensor": scalar_tensor,
           "range": range_, "asarray": asarray, "frombuffer": frombuffer,
           "unique_consecutive": unique_consecutive, "histogram": histogram,
           "cond": cond, "while_loop": while_loop, "typename": typename,
           "is_storage": is_storage,
           "set_float32_matmul_precision": set_float32_matmul_precision,
           "get_float32_matmul_precision": get_float32_matmul_precision,
           "get_default_device": get_default_device, "frobenius_norm": frobenius_norm,
           "GradScaler": amp.GradScaler, "ModuleDict": nn.ModuleDict,
           "ParameterDict": nn.ParameterDict}
    for n, f in fns.items():
        if callable(f) and getattr(f, "__name__", n) != n and not isinstance(f, type):
            f.__name__ = n
    return {n: f for n, f in fns.items() if not hasattr(deepseek, n)}


builtins_range = range


def _misc3():
    """Top-level spellings of functions that live elsewhere (``conv3d``, ``ctc_loss``,
    ...), and ``native_*`` forms returning the saved statistics."""
    import deepseek
    from .nn import functional as F

    def native_layer_norm(input, normalized_shape, weight, bias, eps):
        """``(layer_norm(input), mean, rstd)`` with the statistics over the normalised
        dimensions (kept as size 1)."""
        dims = list(range(input.dim() - len(normalized_shape), input.dim()))
        mean = input.mean(dims, keepdim=True)
        rstd = (input.var(dims, keepdim=True, correction=0) + eps).rsqrt()
        out = (input - mean) * rstd
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        return out, mean, rstd

    def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
        """``(group_norm(input), mean, rstd)`` with [N, group] statistics."""
        x = input.reshape(N, group, -1)
        mean = x.mean(2, keepdim=True)
        rstd = (x.var(2, keepdim=True, correction=0) + eps).rsqrt()
        out = ((x - mean) * rstd).reshape(*input.shape)
        shape = [1, C] + [1] * (input.dim() - 2)
        if weight is not None:
            out = out * weight.reshape(*shape)
        if bias is not None:
            out = out + bias.reshape(*shape)
        return out, mean.reshape(N, group), rstd.reshape(N, group)

    def native_dropout(input, p, train):
        """``(output, mask)``: dropout and the bool mask of the kept elements."""
        if train is False or p == 0:
            return input.clone(), _C.ones(*input.shape, dtype=_C.bool)
        keep = _C.rand(*input.shape, dtype=input.dtype if input.is_floating_point()
                       else _C.float32) >= p
        scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
        return input * keep.to(input.dtype) * scale, keep

    def norm_except_dim(v, pow=2, dim=0):
        """The ``pow``-norm over every dimension but ``dim`` (kept as size 1); ``dim=-1``
        the norm of everything."""
        if dim == -1:
            return v.norm(pow)
        others = [i for i in range(v.dim()) if i != dim % v.dim()]
        return v.norm(pow, others, keepdim=True)

    def is_distributed(input):
        """False: deepseek tensors are not distributed tensors."""
        return False

    fns = {"conv3d": F.conv3d, "conv_transpose3d": F.conv_transpose3d,
           "ctc_loss": F.ctc_loss, "max_pool3d": F.max_pool3d,
           "max_pool1d_with_indices": F.max_pool1d_with_indices,
           "native_layer_norm": native_layer_norm, "native_group_norm": native_group_norm,
           "native_dropout": native_dropout, "norm_except_dim": norm_except_dim,
           "is_distributed": is_distributed, "index_put_": _call_method("index_put_"),
           "resize_as_": _call_method("resize_as_"), "as_strided_": _call_method("as_strided_"),
           "conj_physical_": _call_method("conj_physical_"),
           "i0_": _call_method("i0_")}
    for n, f in fns.items():
        if f.__name__ != n and n.endswith("_") is False and f.__module__ == __name__:
            f.__name__ = n
    for n, f in (("hardshrink", F.hardshrink), ("prelu", F.prelu)):
        if n not in _T.__dict__:
            setattr(_T, n, f)
    if "narrow_copy" not in _T.__dict__:
        _T.narrow_copy = _copy_fn("narrow")
    if "is_distributed" not in _T.__dict__:
        _T.is_distributed = is_distributed
    return {n: f for n, f in fns.items() if not hasattr(deepseek, n)}


def _constant_pad_nd(input, pad, value=0):
    """``constant_pad_nd(input, pad, value=0)``: pad with a constant; ``pad`` lists (left,
    right) pairs from the last dim backwards (``F.pad(input, pad, 'constant', value)``)."""
    from .nn import functional as F
    return F.pad(input, list(pad), "constant", value)
