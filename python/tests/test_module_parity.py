"""The Python modules (``deepseek.nn``, written in Python over tensor ops) and the Rust ones
(``deepseek::nn``, reached through ``deepseek._C.NativeModule``) are two implementations of
the same PyTorch modules. For each pair: the same parameter and buffer names and shapes, and
for the same weights the same outputs, input gradients and parameter gradients."""

import pytest

import deepseek
import deepseek.nn as nn
from deepseek._C import NativeModule

# (class name, constructor kwargs, input shapes (float inputs) or ("int", shape, high))
CASES = [
    ("Linear", dict(in_features=5, out_features=3), [(4, 5)]),
    ("Linear", dict(in_features=5, out_features=3, bias=False), [(2, 4, 5)]),
    ("Embedding", dict(num_embeddings=10, embedding_dim=4), [("int", (3, 5), 10)]),
    ("Embedding", dict(num_embeddings=10, embedding_dim=4, padding_idx=1), [("int", (7,), 10)]),
    ("Conv2d", dict(in_channels=3, out_channels=4, kernel_size=3, padding=1), [(2, 3, 6, 6)]),
    ("Conv2d", dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, groups=2,
                    bias=False), [(1, 4, 7, 8)]),
    ("Conv1d", dict(in_channels=3, out_channels=5, kernel_size=3, dilation=2), [(2, 3, 11)]),
    ("MaxPool2d", dict(kernel_size=2), [(2, 3, 6, 6)]),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1), [(1, 2, 7, 7)]),
    ("LayerNorm", dict(normalized_shape=6), [(3, 4, 6)]),
    ("LayerNorm", dict(normalized_shape=[4, 6], eps=1e-3, elementwise_affine=False), [(3, 4, 6)]),
    ("RMSNorm", dict(normalized_shape=6), [(3, 6)]),
    ("BatchNorm1d", dict(num_features=4), [(8, 4)]),
    ("BatchNorm2d", dict(num_features=3, momentum=0.3), [(4, 3, 5, 5)]),
    ("LSTM", dict(input_size=4, hidden_size=5), [(6, 2, 4)]),
    ("LSTM", dict(input_size=4, hidden_size=3, num_layers=2, batch_first=True,
                  bidirectional=True), [(2, 5, 4)]),
    ("GRU", dict(input_size=4, hidden_size=5, batch_first=True), [(3, 6, 4)]),
    ("MultiheadAttention", dict(embed_dim=8, num_heads=2), [(5, 2, 8)] * 3),
    ("MultiheadAttention", dict(embed_dim=8, num_heads=4, batch_first=True),
     [(2, 5, 8), (2, 7, 8), (2, 7, 8)]),
    ("TransformerEncoderLayer", dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0),
     [(5, 2, 8)]),
    ("TransformerEncoderLayer", dict(d_model=8, nhead=4, dim_feedforward=12, dropout=0.0,
                                     activation="gelu", batch_first=True, norm_first=True),
     [(2, 5, 8)]),
]


def _inputs(specs):
    out = []
    for s in specs:
        if s[0] == "int":
            out.append(deepseek.randint(0, s[2], s[1]))
        else:
            out.append(deepseek.randn(*s).requires_grad_())
    return out


def _outputs(r):
    """A module's result as a flat list of tensors (LSTM: out, h, c; MHA: out)."""
    if isinstance(r, tuple):
        flat = []
        for x in r:
            flat.extend(_outputs(x))
        return flat
    return [] if r is None else [r]


def _close(a, b, what):
    assert tuple(a.shape) == tuple(b.shape), f"{what}: shapes {a.shape} vs {b.shape}"
    diff = (a.detach().double() - b.detach().double()).abs().max().item() if a.numel() else 0.0
    scale = max(1.0, b.detach().double().abs().max().item() if b.numel() else 0.0)
    assert diff <= 1e-5 * scale, f"{what}: max difference {diff}"


@pytest.mark.parametrize("kind,kwargs,specs", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_python_and_rust_modules_agree(kind, kwargs, specs):
    deepseek.manual_seed(7)
    py = getattr(nn, kind)(**kwargs)
    rs = NativeModule(kind, **kwargs)

    py_params = dict(py.named_parameters())
    rs_params = dict(rs.named_parameters())
    assert sorted(py_params) == sorted(rs_params), "parameter names differ"
    py_bufs = dict(py.named_buffers())
    rs_bufs = dict(rs.named_buffers())
    assert sorted(py_bufs) == sorted(rs_bufs), "buffer names differ"
    with deepseek.no_grad():
        for name, p in py_params.items():
            assert tuple(p.shape) == tuple(rs_params[name].shape), name
            rs_params[name].copy_(p)
        for name, b in py_bufs.items():
            assert tuple(b.shape) == tuple(rs_bufs[name].shape), name
            rs_bufs[name].copy_(b)

    xs = _inputs(specs)
    xs_rs = [x.detach().requires_grad_() if x.dtype.is_floating_point else x for x in xs]
    if kind == "MultiheadAttention":
        py_out = _outputs(py(*xs, need_weights=False))
    else:
        py_out = _outputs(py(*xs))
    rs_out = list(rs.forward(*xs_rs))
    assert len(py_out) == len(rs_out)
    for i, (a, b) in enumerate(zip(rs_out, py_out)):
        _close(a, b, f"{kind} output {i}")

    # One backward through every output, with the same random weights on both sides.
    ws = [deepseek.randn(*o.shape) for o in py_out]
    sum(((o * w).sum() for o, w in zip(py_out, ws)), deepseek.tensor(0.0)).backward()
    sum(((o * w).sum() for o, w in zip(rs_out, ws)), deepseek.tensor(0.0)).backward()
    for i, (a, b) in enumerate(zip(xs_rs, xs)):
        if b.dtype.is_floating_point:
            _close(a.grad, b.grad, f"{kind} grad of input {i}")
    for name, p in py_params.items():
        assert (p.grad is None) == (rs_params[name].grad is None), name
        if p.grad is not None:
            _close(rs_params[name].grad, p.grad, f"{kind} grad of {name}")
    for name, b in py_bufs.items():
        _close(rs_bufs[name], b, f"{kind} buffer {name} after forward")


def test_native_module_bad_arguments():
    with pytest.raises(ValueError, match="no Rust module"):
        NativeModule("Nope")
    with pytest.raises(TypeError, match="missing required argument 'out_features'"):
        NativeModule("Linear", in_features=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        NativeModule("Linear", in_features=3, out_features=2, bogus=1)
    with pytest.raises(ValueError, match="divisible"):
        NativeModule("MultiheadAttention", embed_dim=6, num_heads=4)
    m = NativeModule("Linear", in_features=3, out_features=2)
    with pytest.raises(TypeError, match="takes 1 tensor"):
        m.forward()
