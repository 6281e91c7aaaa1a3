#!/usr/bin/env python3
"""Generate golden reference cases for deepseek from PyTorch.

Writes ``DIR/golden.json`` and ``DIR/golden.safetensors`` in the format of
``shared/golden``:

* ``golden.json`` holds ``generator``, ``seed``, ``variant`` and a list of
  ``cases``.  A case names its ``op``, its ``attrs`` (what an implementation
  needs to call the op), ``expr`` (the same call in PyTorch syntax, evaluated
  with ``x0, x1, ...`` bound to the inputs), the tensor names of its
  ``inputs``, ``outputs``, ``cotangents`` and ``grads`` (``null`` for an input
  without a gradient: int64/bool inputs, or every input when no output is
  differentiable) and the ``rtol``/``atol`` a comparison should use.
* ``golden.safetensors`` holds the tensors, named ``case/x0``, ``case/out0``,
  ``case/cot0``, ``case/grad0``; optimizer cases use ``case/p0`` (initial
  parameter), ``case/g0..`` (one gradient per step) and ``case/p1..`` (the
  parameter after each step).

Float inputs are drawn in float64, rounded to float32 (the stored value), and
all math (forward, vector-Jacobian products, optimizer steps) is done in
float64 on those rounded values; results are stored as float32.  Index inputs
are int64, masks are bool.

Every case is computed twice: once by evaluating ``expr`` and once by an
independent attrs-driven implementation (``ATTR_IMPL``); generation fails if
the two disagree, so ``attrs`` and ``expr`` cannot drift apart.

Usage::

    python3 tools/gen_golden.py --out DIR [--seed N] [--variant N]
    python3 tools/gen_golden.py --reproduce-shared [--out DIR] [--compare shared/golden]

``--reproduce-shared`` builds the case list of the shared set (same names,
shapes, attrs and exprs; variant 0).  ``--compare DIR`` checks the case list
against an existing golden set: metadata must match exactly, and outputs and
gradients recomputed from *that set's* inputs and cotangents must agree within
each case's rtol/atol.
"""

import argparse
import json
import math
import os
import sys
import warnings
import zlib

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

F64 = torch.float64
DEFAULT_TOL = (1e-4, 1e-5)
MATMUL_TOL = (1e-4, 1e-4)  # matmul, linear, conv: longer f32 accumulations
OPTIM_TOL = (1e-5, 1e-6)


# --------------------------------------------------------------------------
# Input generators: each returns a function of a torch.Generator.
# Floats are produced in float64 and rounded to float32 later.


def randn(*shape, scale=1.0):
    """Standard normal values times ``scale``."""
    return lambda g: torch.randn(shape, generator=g, dtype=F64) * scale


def pos(*shape):
    """Positive values ``0.5 + |N(0,1)|`` for log/sqrt/rsqrt/div/pow inputs."""
    return lambda g: 0.5 + torch.randn(shape, generator=g, dtype=F64).abs()


def uniform(lo, hi, *shape):
    """Uniform values in ``[lo, hi)`` (e.g. BCE targets)."""
    return lambda g: lo + (hi - lo) * torch.rand(shape, generator=g, dtype=F64)


def probs(*shape):
    """Rows of probabilities along the last dim (KL targets)."""
    return lambda g: torch.softmax(torch.randn(shape, generator=g, dtype=F64), -1)


def logprobs(*shape):
    """Rows of log-probabilities along the last dim."""
    return lambda g: torch.log_softmax(torch.randn(shape, generator=g, dtype=F64), -1)


def ints(lo, hi, *shape, force=None):
    """int64 values in ``[lo, hi)``; ``force`` maps flat positions to fixed
    values (to make sure an ignore_index / padding_idx actually occurs)."""

    def gen(g):
        t = torch.randint(lo, hi, shape, generator=g, dtype=torch.int64)
        for i, v in (force or {}).items():
            t.view(-1)[i] = v
        return t

    return gen


def bools(*shape, p=0.5):
    """Random bool mask, True with probability ``p``; with two or more
    elements the first is True and the last False, so both branches occur."""

    def gen(g):
        m = torch.rand(shape, generator=g, dtype=F64) < p
        if m.numel() >= 2:
            m.view(-1)[0], m.view(-1)[-1] = True, False
        return m

    return gen


def attn_mask(*shape, p=0.6):
    """Bool attention mask (last two dims L x S); every row keeps at least one
    True so that no softmax row is fully masked (which would give NaN)."""

    def gen(g):
        m = torch.rand(shape, generator=g, dtype=F64) < p
        rows = torch.arange(shape[-2])
        m[..., rows, rows % shape[-1]] = True
        return m

    return gen


# --------------------------------------------------------------------------
# Case descriptions.


def case(name, op, attrs, expr, inputs, tol=DEFAULT_TOL):
    """A case computed by evaluating ``expr`` on the generated inputs."""
    return {"name": name, "op": op, "attrs": attrs, "expr": expr, "inputs": inputs, "tol": tol}


def optim(name, attrs, shape, steps=5):
    """An optimizer case: ``steps`` steps of ``attrs['class']`` on one parameter."""
    return {"name": name, "op": "optimizer", "attrs": attrs, "expr": None,
            "shape": tuple(shape), "steps": steps, "tol": OPTIM_TOL}


def rnn_inputs(kind, batch_first, layers, T, B, I, H, scale=0.4):
    """Inputs of a ``_VF.lstm``/``_VF.gru`` case: x, h0 (and c0 for LSTM), then
    per layer w_ih, w_hh, b_ih, b_hh (PyTorch's flat-weights order)."""
    gates = 4 if kind == "lstm" else 3
    x = randn(B, T, I) if batch_first else randn(T, B, I)
    hs = [randn(layers, B, H)] * (2 if kind == "lstm" else 1)
    ws = []
    for l in range(layers):
        ws += [randn(gates * H, I if l == 0 else H, scale=scale), randn(gates * H, H, scale=scale),
               randn(gates * H, scale=scale), randn(gates * H, scale=scale)]
    return [x] + hs + ws


def rnn_expr(kind, batch_first, layers):
    """The ``torch._VF`` call matching :func:`rnn_inputs`."""
    n0 = 3 if kind == "lstm" else 2
    ws = ", ".join(f"x{i}" for i in range(n0, n0 + 4 * layers))
    hx = "(x1, x2)" if kind == "lstm" else "x1"
    return f"torch._VF.{kind}(x0, {hx}, [{ws}], True, {layers}, 0.0, False, False, {batch_first})"


def mha_case(name, E, H, batch_first, B, L):
    """Self-attention through F.multi_head_attention_forward with packed
    in-projection (x1: [3E, E], x2: [3E]) and out-projection (x3: [E, E], x4: [E])."""
    attrs = {"embed_dim": E, "num_heads": H, "batch_first": batch_first}
    x = randn(B, L, E) if batch_first else randn(L, B, E)
    w = [randn(3 * E, E, scale=0.3), randn(3 * E, scale=0.3), randn(E, E, scale=0.3), randn(E, scale=0.3)]
    q = "x0.transpose(0, 1)" if batch_first else "x0"
    expr = (f"F.multi_head_attention_forward({q}, {q}, {q}, {E}, {H}, x1, x2, None, None, False, 0.0, "
            f"x3, x4, training=False, need_weights=False)[0]")
    if batch_first:
        expr += ".transpose(0, 1)"
    return case(name, "multi_head_attention", attrs, expr, [x] + w)


UNARY = {  # op -> expr template for the attribute-free unary ops
    "neg": "torch.neg(x0)", "exp": "torch.exp(x0)", "log": "torch.log(x0)", "sqrt": "torch.sqrt(x0)",
    "rsqrt": "torch.rsqrt(x0)", "abs": "torch.abs(x0)", "relu": "F.relu(x0)",
    "sigmoid": "torch.sigmoid(x0)", "tanh": "torch.tanh(x0)", "silu": "F.silu(x0)",
    "softplus": "F.softplus(x0)", "sin": "torch.sin(x0)", "cos": "torch.cos(x0)",
    "reciprocal": "torch.reciprocal(x0)", "square": "torch.square(x0)", "erf": "torch.erf(x0)",
    "elu": "F.elu(x0)",
}
POSITIVE_ONLY = {"log", "sqrt", "rsqrt", "reciprocal"}
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"]
POSITIVE_BINARY = {"div", "pow"}


def shared_cases():
    """The case list of shared/golden (variant 0): same names, shapes, attrs, exprs."""
    c = []
    for op, expr in UNARY.items():
        gen = pos if op in POSITIVE_ONLY else randn
        c.append(case(op, op, {}, expr, [gen(4, 3, 5)]))
        if op == "tanh":
            c.append(case("gelu", "gelu", {"approximate": "none"}, "F.gelu(x0, approximate='none')", [randn(4, 3, 5)]))
    c += [
        case("gelu_tanh", "gelu", {"approximate": "tanh"}, "F.gelu(x0, approximate='tanh')", [randn(4, 3, 5)]),
        case("pow_scalar", "pow_scalar", {"exponent": 3.0}, "torch.pow(x0, 3.0)", [randn(4, 3, 5)]),
        case("pow_half", "pow_scalar", {"exponent": 0.5}, "torch.pow(x0, 0.5)", [pos(4, 3, 5)]),
        case("leaky_relu", "leaky_relu", {"negative_slope": 0.1}, "F.leaky_relu(x0, 0.1)", [randn(4, 3, 5)]),
        case("clamp", "clamp", {"min": -0.5, "max": 0.7}, "torch.clamp(x0, -0.5, 0.7)", [randn(4, 3, 5)]),
    ]
    for op in BINARY:
        gen = pos if op in POSITIVE_BINARY else randn
        c.append(case(f"{op}_same", op, {}, f"torch.{op}(x0, x1)", [gen(4, 3, 5), gen(4, 3, 5)]))
        c.append(case(f"{op}_bcast", op, {}, f"torch.{op}(x0, x1)", [gen(4, 1, 5), gen(3, 1)]))
    x = [randn(4, 3, 5)]
    c += [
        case("sum", "sum", {"dim": [1], "keepdim": False}, "torch.sum(x0, dim=(1,), keepdim=False)", x),
        case("sum_keep", "sum", {"dim": [-1], "keepdim": True}, "torch.sum(x0, dim=(-1,), keepdim=True)", x),
        case("sum_all", "sum", {"dim": None, "keepdim": False}, "torch.sum(x0)", x),
        case("mean", "mean", {"dim": [0, 2], "keepdim": False}, "torch.mean(x0, dim=(0, 2), keepdim=False)", x),
        case("amax", "amax", {"dim": [1], "keepdim": False}, "torch.amax(x0, dim=(1,), keepdim=False)", x),
        case("amin", "amin", {"dim": [-1], "keepdim": False}, "torch.amin(x0, dim=(-1,), keepdim=False)", x),
        case("logsumexp", "logsumexp", {"dim": [-1], "keepdim": False},
             "torch.logsumexp(x0, dim=(-1,), keepdim=False)", x),
        case("prod", "prod", {"dim": 1, "keepdim": False}, "torch.prod(x0, dim=1, keepdim=False)", x),
        case("norm", "vector_norm", {"ord": 2, "dim": [-1], "keepdim": False},
             "torch.linalg.vector_norm(x0, ord=2, dim=(-1,), keepdim=False)", x),
        case("var", "var", {"dim": [1], "correction": 1, "keepdim": False}, "torch.var(x0, dim=1, correction=1)", x),
        case("std", "std", {"dim": [0], "correction": 0, "keepdim": False}, "torch.std(x0, dim=0, correction=0)", x),
        case("cumsum", "cumsum", {"dim": 1}, "torch.cumsum(x0, dim=1)", x),
        case("argmax", "argmax", {"dim": 1, "keepdim": False}, "torch.argmax(x0, dim=1)", x),
        case("reshape", "reshape", {"shape": [4, -1]}, "torch.reshape(x0, (4, -1))", x),
        case("permute", "permute", {"dims": [2, 0, 1]}, "x0.permute(2, 0, 1) * 1.0", x),
        case("transpose", "transpose", {"dim0": 0, "dim1": 1}, "torch.transpose(x0, 0, 1) * 1.0", x),
        case("cat", "cat", {"dim": 1}, "torch.cat([x0, x1], dim=1)", [randn(4, 2, 5), randn(4, 3, 5)]),
        case("stack", "stack", {"dim": 0}, "torch.stack([x0, x1], dim=0)", [randn(3, 5), randn(3, 5)]),
        case("slice", "slice", {"ranges": [[0, 4, 1], [1, 3, 1], [0, 5, 2]]}, "x0[0:4:1, 1:3:1, 0:5:2] * 1.0", x),
        case("expand", "expand", {"shape": [4, 3, 6]}, "x0.expand(4, 3, 6) * 1.0", [randn(1, 3, 1)]),
        case("unsqueeze", "unsqueeze", {"dim": 1}, "torch.unsqueeze(x0, 1) * 1.0", [randn(3, 5)]),
        case("flatten", "flatten", {"start_dim": 1, "end_dim": -1}, "torch.flatten(x0, 1) * 1.0", x),
        case("split", "split", {"split_size": 2, "dim": -1}, "torch.split(x0, 2, dim=-1)", [randn(3, 4, 6)]),
        case("index_select", "index_select", {"dim": 0}, "torch.index_select(x0, 0, x1)",
             [randn(7, 5), ints(0, 7, 9)]),
        case("gather", "gather", {"dim": 1}, "torch.gather(x0, 1, x1)", [randn(4, 6), ints(0, 6, 4, 3)]),
        case("where", "where", {}, "torch.where(x0, x1, x2)", [bools(3, 5), randn(3, 5), randn(1, 5)]),
        case("masked_fill", "masked_fill", {"value": -2.0}, "x0.masked_fill(x1, -2.0)",
             [randn(3, 5), bools(3, 5, p=0.3)]),
        case("tril", "tril", {"diagonal": 0}, "torch.tril(x0, 0)", [randn(5, 5)]),
        case("pad", "pad", {"pad": [1, 2], "value": 0.0}, "F.pad(x0, (1, 2))", [randn(3, 5)]),
        case("take_along_dim", "take_along_dim", {"dim": -1}, "torch.take_along_dim(x0, x1, dim=-1)",
             [randn(3, 5), ints(0, 5, 3, 2)]),
        case("mm", "matmul", {}, "torch.matmul(x0, x1)", [randn(17, 33), randn(33, 9)], MATMUL_TOL),
        case("bmm", "matmul", {}, "torch.matmul(x0, x1)", [randn(3, 8, 16), randn(3, 16, 5)], MATMUL_TOL),
        case("matmul_bcast", "matmul", {}, "torch.matmul(x0, x1)", [randn(2, 3, 4, 6), randn(6, 5)], MATMUL_TOL),
        case("matvec", "matmul", {}, "torch.matmul(x0, x1)", [randn(7, 6), randn(6)], MATMUL_TOL),
        case("linear", "linear", {}, "F.linear(x0, x1, x2)", [randn(4, 3, 8), randn(6, 8), randn(6)], MATMUL_TOL),
        case("linear_nobias", "linear", {}, "F.linear(x0, x1)", [randn(5, 8), randn(3, 8)], MATMUL_TOL),
        case("einsum", "einsum", {"equation": "bij,bjk->bik"}, "torch.einsum('bij,bjk->bik', x0, x1)",
             [randn(2, 3, 4), randn(2, 4, 5)]),
        case("softmax", "softmax", {"dim": -1}, "F.softmax(x0, dim=-1)", [randn(4, 3, 5, scale=3.0)]),
        case("log_softmax", "log_softmax", {"dim": 1}, "F.log_softmax(x0, dim=1)", [randn(4, 3, 5, scale=3.0)]),
        case("layer_norm", "layer_norm", {"normalized_shape": [5], "eps": 1e-05},
             "F.layer_norm(x0, (5,), x1, x2, eps=1e-5)", [randn(4, 3, 5), randn(5), randn(5)]),
        case("rms_norm", "rms_norm", {"normalized_shape": [5], "eps": 1e-06},
             "F.rms_norm(x0, (5,), x1, eps=1e-6)", [randn(4, 3, 5), randn(5)]),
        case("batch_norm", "batch_norm", {"training": True, "eps": 1e-05},
             "F.batch_norm(x0, None, None, x1, x2, training=True, eps=1e-5)", [randn(6, 4, 5), randn(4), randn(4)]),
        case("group_norm", "group_norm", {"num_groups": 2, "eps": 1e-05}, "F.group_norm(x0, 2, x1, x2, eps=1e-5)",
             [randn(3, 4, 5), randn(4), randn(4)]),
        case("conv1d", "conv1d", {"stride": 1, "padding": 1, "dilation": 1, "groups": 1},
             "F.conv1d(x0, x1, x2, stride=1, padding=1)", [randn(2, 3, 10), randn(4, 3, 3), randn(4)], MATMUL_TOL),
        case("conv2d", "conv2d", {"stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "groups": 1},
             "F.conv2d(x0, x1, x2, stride=2, padding=1)", [randn(2, 3, 9, 9), randn(5, 3, 3, 3), randn(5)],
             MATMUL_TOL),
        case("conv2d_groups", "conv2d", {"stride": [1, 1], "padding": [1, 1], "dilation": [2, 2], "groups": 2},
             "F.conv2d(x0, x1, None, padding=1, groups=2, dilation=2)", [randn(1, 4, 8, 8), randn(6, 2, 3, 3)],
             MATMUL_TOL),
        case("max_pool2d", "max_pool2d", {"kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0]},
             "F.max_pool2d(x0, 2)", [randn(2, 3, 8, 8)]),
        case("avg_pool2d", "avg_pool2d",
             {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "count_include_pad": True},
             "F.avg_pool2d(x0, 3, stride=2, padding=1)", [randn(2, 3, 9, 9)]),
        case("adaptive_avg_pool2d", "adaptive_avg_pool2d", {"output_size": [1, 1]}, "F.adaptive_avg_pool2d(x0, 1)",
             [randn(2, 3, 6, 6)]),
        case("embedding", "embedding", {"padding_idx": None}, "F.embedding(x1, x0)", [randn(11, 6), ints(0, 11, 4, 5)]),
        case("embedding_pad", "embedding", {"padding_idx": 0}, "F.embedding(x1, x0, padding_idx=0)",
             [randn(11, 6), ints(0, 11, 3, 7, force={0: 0})]),
        case("cross_entropy", "cross_entropy", {"ignore_index": -100, "label_smoothing": 0.0, "reduction": "mean"},
             "F.cross_entropy(x0, x1)", [randn(6, 7), ints(0, 7, 6)]),
        case("cross_entropy_ignore", "cross_entropy",
             {"ignore_index": 2, "label_smoothing": 0.0, "reduction": "mean"},
             "F.cross_entropy(x0, x1, ignore_index=2)", [randn(6, 7), ints(0, 7, 6, force={1: 2})]),
        case("cross_entropy_smooth", "cross_entropy",
             {"ignore_index": -100, "label_smoothing": 0.1, "reduction": "mean"},
             "F.cross_entropy(x0, x1, label_smoothing=0.1)", [randn(6, 7), ints(0, 7, 6)]),
        case("cross_entropy_3d_sum", "cross_entropy",
             {"ignore_index": -100, "label_smoothing": 0.0, "reduction": "sum"},
             "F.cross_entropy(x0, x1, reduction='sum')", [randn(2, 7, 5), ints(0, 7, 2, 5)]),
        case("nll_loss", "nll_loss", {"ignore_index": -100, "reduction": "mean"}, "F.nll_loss(x0, x1)",
             [randn(6, 7), ints(0, 7, 6)]),
        case("mse_loss", "mse_loss", {"reduction": "mean"}, "F.mse_loss(x0, x1)", [randn(3, 5), randn(3, 5)]),
        case("l1_loss", "l1_loss", {"reduction": "sum"}, "F.l1_loss(x0, x1, reduction='sum')",
             [randn(3, 5), randn(3, 5)]),
        case("smooth_l1_loss", "smooth_l1_loss", {"reduction": "mean", "beta": 1.0},
             "F.smooth_l1_loss(x0, x1, beta=1.0)", [randn(3, 5), randn(3, 5)]),
        case("bce_logits", "binary_cross_entropy_with_logits", {"reduction": "mean"},
             "F.binary_cross_entropy_with_logits(x0, x1)", [randn(3, 5), uniform(0.0, 1.0, 3, 5)]),
        case("kl_div", "kl_div", {"reduction": "batchmean", "log_target": False},
             "F.kl_div(x0, x1, reduction='batchmean')", [randn(3, 5), probs(3, 5)]),
        case("lstm", "lstm", {"num_layers": 1, "batch_first": True}, rnn_expr("lstm", True, 1),
             rnn_inputs("lstm", True, 1, T=6, B=3, I=5, H=4)),
        case("lstm_2layer", "lstm", {"num_layers": 2, "batch_first": False}, rnn_expr("lstm", False, 2),
             rnn_inputs("lstm", False, 2, T=6, B=3, I=5, H=4)),
        case("gru", "gru", {"num_layers": 1, "batch_first": True}, rnn_expr("gru", True, 1),
             rnn_inputs("gru", True, 1, T=6, B=3, I=5, H=4)),
        case("sdpa_causal", "scaled_dot_product_attention", {"is_causal": True, "scale": None},
             "F.scaled_dot_product_attention(x0, x1, x2, is_causal=True)",
             [randn(2, 3, 5, 4), randn(2, 3, 5, 4), randn(2, 3, 5, 4)]),
        case("sdpa_mask", "scaled_dot_product_attention", {"is_causal": False, "scale": 0.3},
             "F.scaled_dot_product_attention(x0, x1, x2, attn_mask=x3, scale=0.3)",
             [randn(2, 3, 5, 4), randn(2, 3, 7, 4), randn(2, 3, 7, 4), randn(5, 7)]),
        mha_case("mha", 8, 2, True, B=2, L=5),
    ]
    sgd = {"class": "SGD", "lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}
    adam = {"class": "Adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0, "amsgrad": False}
    c += [
        optim("sgd", sgd, (4, 3)),
        optim("sgd_momentum", {**sgd, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, (4, 3)),
        optim("adam", adam, (4, 3)),
        optim("adam_wd_amsgrad", {**adam, "weight_decay": 0.1, "amsgrad": True}, (4, 3)),
        optim("adamw", {**adam, "class": "AdamW", "lr": 0.005, "betas": [0.8, 0.95], "weight_decay": 0.05}, (4, 3)),
        optim("rmsprop", {"class": "RMSprop", "lr": 0.01, "alpha": 0.99, "eps": 1e-08, "weight_decay": 0.0,
                          "momentum": 0.0, "centered": False}, (4, 3)),
    ]
    return c


def variant_cases():
    """Cases for every shared op with other shapes and attrs (held-back style)."""
    c = []
    shapes = [(7,), (2, 3, 2, 2), (6, 5), (3, 1, 4), ()]
    for i, (op, expr) in enumerate(UNARY.items()):
        gen = pos if op in POSITIVE_ONLY else randn
        c.append(case(f"{op}_v", op, {}, expr, [gen(*shapes[i % len(shapes)])]))
    c += [
        case("gelu_v", "gelu", {"approximate": "none"}, "F.gelu(x0, approximate='none')", [randn(5, 6, scale=3.0)]),
        case("gelu_tanh_v", "gelu", {"approximate": "tanh"}, "F.gelu(x0, approximate='tanh')", [randn(2, 7, scale=3.0)]),
        case("pow_scalar_2", "pow_scalar", {"exponent": 2.0}, "torch.pow(x0, 2.0)", [randn(3, 4)]),
        case("pow_scalar_neg", "pow_scalar", {"exponent": -1.5}, "torch.pow(x0, -1.5)", [pos(5)]),
        case("pow_scalar_2_5", "pow_scalar", {"exponent": 2.5}, "torch.pow(x0, 2.5)", [pos(2, 3)]),
        case("leaky_relu_001", "leaky_relu", {"negative_slope": 0.01}, "F.leaky_relu(x0, 0.01)", [randn(4, 6)]),
        case("leaky_relu_03", "leaky_relu", {"negative_slope": 0.3}, "F.leaky_relu(x0, 0.3)", [randn(2, 3, 4)]),
        case("clamp_min", "clamp", {"min": 0.2, "max": None}, "torch.clamp(x0, min=0.2)", [randn(3, 6)]),
        case("clamp_max", "clamp", {"min": None, "max": -0.1}, "torch.clamp(x0, max=-0.1)", [randn(2, 5)]),
    ]
    for op in BINARY:
        gen = pos if op in POSITIVE_BINARY else randn
        c.append(case(f"{op}_same_v", op, {}, f"torch.{op}(x0, x1)", [gen(6, 7), gen(6, 7)]))
        c.append(case(f"{op}_bcast_v", op, {}, f"torch.{op}(x0, x1)", [gen(3, 1), gen(2, 1, 4)]))
        c.append(case(f"{op}_scalar_v", op, {}, f"torch.{op}(x0, x1)", [gen(2, 5), gen()]))
    x3 = [randn(3, 4, 5)]
    x4 = [randn(2, 3, 4, 2)]
    c += [
        case("sum_02_keep", "sum", {"dim": [0, 2], "keepdim": True}, "torch.sum(x0, dim=(0, 2), keepdim=True)", x3),
        case("sum_neg2", "sum", {"dim": [-2], "keepdim": False}, "torch.sum(x0, dim=(-2,), keepdim=False)", x4),
        case("sum_all_keep", "sum", {"dim": None, "keepdim": True}, "torch.sum(x0, dim=None, keepdim=True)", x3),
        case("mean_last_keep", "mean", {"dim": [-1], "keepdim": True}, "torch.mean(x0, dim=(-1,), keepdim=True)", x3),
        case("mean_all", "mean", {"dim": None, "keepdim": False}, "torch.mean(x0)", x4),
        case("mean_12", "mean", {"dim": [1, 2], "keepdim": False}, "torch.mean(x0, dim=(1, 2), keepdim=False)", x4),
        case("amax_02_keep", "amax", {"dim": [0, 2], "keepdim": True}, "torch.amax(x0, dim=(0, 2), keepdim=True)", x3),
        case("amax_all", "amax", {"dim": None, "keepdim": False}, "torch.amax(x0)", [randn(4, 5)]),
        case("amin_1_keep", "amin", {"dim": [1], "keepdim": True}, "torch.amin(x0, dim=(1,), keepdim=True)", x3),
        case("amin_last2", "amin", {"dim": [-1, -2], "keepdim": False},
             "torch.amin(x0, dim=(-1, -2), keepdim=False)", x4),
        case("logsumexp_01_keep", "logsumexp", {"dim": [0, 1], "keepdim": True},
             "torch.logsumexp(x0, dim=(0, 1), keepdim=True)", x3),
        case("logsumexp_wide", "logsumexp", {"dim": [1], "keepdim": False},
             "torch.logsumexp(x0, dim=(1,), keepdim=False)", [randn(4, 6, scale=5.0)]),
        case("prod_last_keep", "prod", {"dim": -1, "keepdim": True}, "torch.prod(x0, dim=-1, keepdim=True)",
             [randn(3, 4)]),
        case("prod_0", "prod", {"dim": 0, "keepdim": False}, "torch.prod(x0, dim=0, keepdim=False)", [randn(3, 2, 4)]),
        case("prod_all", "prod", {"dim": None, "keepdim": False}, "torch.prod(x0)", [pos(2, 3)]),
        case("norm_l1", "vector_norm", {"ord": 1, "dim": [0], "keepdim": False},
             "torch.linalg.vector_norm(x0, ord=1, dim=(0,), keepdim=False)", x3),
        case("norm_all", "vector_norm", {"ord": 2, "dim": None, "keepdim": False},
             "torch.linalg.vector_norm(x0, ord=2, dim=None, keepdim=False)", x3),
        case("norm_l3_keep", "vector_norm", {"ord": 3, "dim": [-1], "keepdim": True},
             "torch.linalg.vector_norm(x0, ord=3, dim=(-1,), keepdim=True)", x4),
        case("var_c0_keep", "var", {"dim": [0, 2], "correction": 0, "keepdim": True},
             "torch.var(x0, dim=(0, 2), correction=0, keepdim=True)", x3),
        case("var_all", "var", {"dim": None, "correction": 1, "keepdim": False},
             "torch.var(x0, dim=None, correction=1)", x3),
        case("var_c2", "var", {"dim": [-1], "correction": 2, "keepdim": False},
             "torch.var(x0, dim=-1, correction=2)", x3),
        case("std_c2", "std", {"dim": [1], "correction": 2, "keepdim": False}, "torch.std(x0, dim=1, correction=2)",
             x3),
        case("std_c1_keep", "std", {"dim": [0, 1], "correction": 1, "keepdim": True},
             "torch.std(x0, dim=(0, 1), correction=1, keepdim=True)", x4),
        case("std_all", "std", {"dim": None, "correction": 0, "keepdim": False},
             "torch.std(x0, dim=None, correction=0)", [randn(5, 3)]),
        case("cumsum_0", "cumsum", {"dim": 0}, "torch.cumsum(x0, dim=0)", x3),
        case("cumsum_last", "cumsum", {"dim": -1}, "torch.cumsum(x0, dim=-1)", [randn(2, 7)]),
        case("argmax_last_keep", "argmax", {"dim": -1, "keepdim": True}, "torch.argmax(x0, dim=-1, keepdim=True)", x3),
        case("argmax_all", "argmax", {"dim": None, "keepdim": False}, "torch.argmax(x0)", x3),
        case("reshape_flat", "reshape", {"shape": [-1]}, "torch.reshape(x0, (-1,))", [randn(2, 3, 4)]),
        case("reshape_3d", "reshape", {"shape": [2, -1, 3]}, "torch.reshape(x0, (2, -1, 3))", [randn(6, 4)]),
        case("permute_2d", "permute", {"dims": [1, 0]}, "x0.permute(1, 0) * 1.0", [randn(3, 5)]),
        case("permute_4d", "permute", {"dims": [0, 2, 3, 1]}, "x0.permute(0, 2, 3, 1) * 1.0", [randn(2, 3, 4, 5)]),
        case("permute_neg", "permute", {"dims": [-1, -3, -2]}, "x0.permute(-1, -3, -2) * 1.0", [randn(2, 3, 4)]),
        case("transpose_neg", "transpose", {"dim0": -1, "dim1": -2}, "torch.transpose(x0, -1, -2) * 1.0", x3),
        case("transpose_02", "transpose", {"dim0": 0, "dim1": 2}, "torch.transpose(x0, 0, 2) * 1.0", x4),
        case("cat_0", "cat", {"dim": 0}, "torch.cat([x0, x1], dim=0)", [randn(2, 3), randn(4, 3)]),
        case("cat_3_last", "cat", {"dim": -1}, "torch.cat([x0, x1, x2], dim=-1)",
             [randn(2, 3, 1), randn(2, 3, 4), randn(2, 3, 2)]),
        case("stack_last", "stack", {"dim": -1}, "torch.stack([x0, x1, x2], dim=-1)",
             [randn(3, 4), randn(3, 4), randn(3, 4)]),
        case("stack_1", "stack", {"dim": 1}, "torch.stack([x0, x1], dim=1)", [randn(2, 3), randn(2, 3)]),
        case("slice_steps", "slice", {"ranges": [[1, 5, 2], [0, 6, 3], [2, 7, 1]]},
             "x0[1:5:2, 0:6:3, 2:7:1] * 1.0", [randn(5, 6, 7)]),
        case("slice_neg", "slice", {"ranges": [[-3, -1, 1], [-5, 7, 2]]}, "x0[-3:-1:1, -5:7:2] * 1.0",
             [randn(4, 7)]),
        case("expand_neg1", "expand", {"shape": [2, -1, 4]}, "x0.expand(2, -1, 4) * 1.0", [randn(3, 1)]),
        case("expand_4d", "expand", {"shape": [2, 4, -1, 3]}, "x0.expand(2, 4, -1, 3) * 1.0", [randn(2, 1, 5, 1)]),
        case("unsqueeze_neg", "unsqueeze", {"dim": -1}, "torch.unsqueeze(x0, -1) * 1.0", [randn(3, 5)]),
        case("unsqueeze_0", "unsqueeze", {"dim": 0}, "torch.unsqueeze(x0, 0) * 1.0", [randn(4)]),
        case("flatten_01", "flatten", {"start_dim": 0, "end_dim": 1}, "torch.flatten(x0, 0, 1) * 1.0", x3),
        case("flatten_12", "flatten", {"start_dim": 1, "end_dim": 2}, "torch.flatten(x0, 1, 2) * 1.0",
             [randn(2, 3, 4, 5)]),
        case("flatten_all", "flatten", {"start_dim": 0, "end_dim": -1}, "torch.flatten(x0, 0, -1) * 1.0", x4),
        case("split_sizes", "split", {"split_size": [1, 3, 2], "dim": 1}, "torch.split(x0, [1, 3, 2], dim=1)",
             [randn(2, 6, 3)]),
        case("split_uneven", "split", {"split_size": 4, "dim": -1}, "torch.split(x0, 4, dim=-1)", [randn(3, 6)]),
        case("index_select_1", "index_select", {"dim": 1}, "torch.index_select(x0, 1, x1)",
             [randn(3, 6), ints(0, 6, 8, force={0: 2, 1: 2})]),
        case("index_select_neg", "index_select", {"dim": -1}, "torch.index_select(x0, -1, x1)",
             [randn(2, 3, 4), ints(0, 4, 5)]),
        case("gather_0", "gather", {"dim": 0}, "torch.gather(x0, 0, x1)", [randn(4, 3), ints(0, 4, 6, 2)]),
        case("gather_neg", "gather", {"dim": -1}, "torch.gather(x0, -1, x1)", [randn(2, 3, 5), ints(0, 5, 2, 3, 4)]),
        case("where_bcast", "where", {}, "torch.where(x0, x1, x2)", [bools(1, 5), randn(3, 5), randn(3, 1)]),
        case("where_scalar", "where", {}, "torch.where(x0, x1, x2)", [bools(2, 3, 4), randn(), randn(4)]),
        case("masked_fill_bcast", "masked_fill", {"value": 3.5}, "x0.masked_fill(x1, 3.5)",
             [randn(3, 5), bools(1, 5)]),
        case("masked_fill_3d", "masked_fill", {"value": 0.25}, "x0.masked_fill(x1, 0.25)",
             [randn(2, 3, 4), bools(2, 3, 4, p=0.4)]),
        case("tril_m1", "tril", {"diagonal": -1}, "torch.tril(x0, -1)", [randn(4, 5)]),
        case("tril_p1", "tril", {"diagonal": 1}, "torch.tril(x0, 1)", [randn(2, 5, 3)]),
        case("pad_4_value", "pad", {"pad": [1, 2, 0, 3], "value": 0.5}, "F.pad(x0, (1, 2, 0, 3), value=0.5)",
             [randn(2, 3, 4)]),
        case("pad_2_value", "pad", {"pad": [0, 2], "value": -1.0}, "F.pad(x0, (0, 2), value=-1.0)",
             [randn(2, 2, 3, 2)]),
        case("take_along_dim_0", "take_along_dim", {"dim": 0}, "torch.take_along_dim(x0, x1, dim=0)",
             [randn(4, 3), ints(0, 4, 2, 3)]),
        case("take_along_dim_none", "take_along_dim", {"dim": None}, "torch.take_along_dim(x0, x1)",
             [randn(3, 4), ints(0, 12, 5)]),
        case("mm_k1", "matmul", {}, "torch.matmul(x0, x1)", [randn(5, 1), randn(1, 6)], MATMUL_TOL),
        case("mm_v", "matmul", {}, "torch.matmul(x0, x1)", [randn(9, 20), randn(20, 13)], MATMUL_TOL),
        case("vecmat", "matmul", {}, "torch.matmul(x0, x1)", [randn(6), randn(6, 4)], MATMUL_TOL),
        case("dot", "matmul", {}, "torch.matmul(x0, x1)", [randn(7), randn(7)], MATMUL_TOL),
        case("matmul_bcast_both", "matmul", {}, "torch.matmul(x0, x1)", [randn(2, 1, 3, 4), randn(5, 4, 2)],
             MATMUL_TOL),
        case("matvec_batched", "matmul", {}, "torch.matmul(x0, x1)", [randn(2, 3, 4), randn(4)], MATMUL_TOL),
        case("linear_4d", "linear", {}, "F.linear(x0, x1, x2)", [randn(2, 3, 4, 8), randn(5, 8), randn(5)],
             MATMUL_TOL),
        case("linear_1d_nobias", "linear", {}, "F.linear(x0, x1)", [randn(8), randn(3, 8)], MATMUL_TOL),
        case("einsum_mm", "einsum", {"equation": "ij,jk->ik"}, "torch.einsum('ij,jk->ik', x0, x1)",
             [randn(3, 4), randn(4, 5)]),
        case("einsum_qk", "einsum", {"equation": "bhqd,bhkd->bhqk"}, "torch.einsum('bhqd,bhkd->bhqk', x0, x1)",
             [randn(2, 2, 3, 4), randn(2, 2, 5, 4)]),
        case("einsum_av", "einsum", {"equation": "bqk,bkd->bqd"}, "torch.einsum('bqk,bkd->bqd', x0, x1)",
             [randn(2, 3, 5), randn(2, 5, 4)]),
        case("softmax_0", "softmax", {"dim": 0}, "F.softmax(x0, dim=0)", [randn(4, 3, 5, scale=3.0)]),
        case("softmax_1", "softmax", {"dim": 1}, "F.softmax(x0, dim=1)", [randn(2, 6, scale=3.0)]),
        case("log_softmax_last", "log_softmax", {"dim": -1}, "F.log_softmax(x0, dim=-1)", [randn(3, 7, scale=3.0)]),
        case("log_softmax_0", "log_softmax", {"dim": 0}, "F.log_softmax(x0, dim=0)", [randn(5, 2, scale=3.0)]),
        case("layer_norm_2d", "layer_norm", {"normalized_shape": [3, 5], "eps": 1e-06},
             "F.layer_norm(x0, (3, 5), x1, x2, eps=1e-6)", [randn(2, 3, 5), randn(3, 5), randn(3, 5)]),
        case("layer_norm_noaffine", "layer_norm", {"normalized_shape": [6], "eps": 1e-05},
             "F.layer_norm(x0, (6,), eps=1e-5)", [randn(4, 6)]),
        case("rms_norm_2d", "rms_norm", {"normalized_shape": [2, 4], "eps": 1e-05},
             "F.rms_norm(x0, (2, 4), x1, eps=1e-5)", [randn(3, 2, 4), randn(2, 4)]),
        case("rms_norm_noweight", "rms_norm", {"normalized_shape": [7], "eps": 1e-06},
             "F.rms_norm(x0, (7,), eps=1e-6)", [randn(2, 7)]),
        case("batch_norm_2d", "batch_norm", {"training": True, "eps": 1e-05},
             "F.batch_norm(x0, None, None, x1, x2, training=True, eps=1e-5)", [randn(8, 3), randn(3), randn(3)]),
        case("batch_norm_4d", "batch_norm", {"training": True, "eps": 0.001},
             "F.batch_norm(x0, None, None, x1, x2, training=True, eps=1e-3)",
             [randn(3, 2, 4, 4), randn(2), randn(2)]),
        case("group_norm_3", "group_norm", {"num_groups": 3, "eps": 1e-05}, "F.group_norm(x0, 3, x1, x2, eps=1e-5)",
             [randn(2, 6, 4), randn(6), randn(6)]),
        case("group_norm_1_4d", "group_norm", {"num_groups": 1, "eps": 0.0001},
             "F.group_norm(x0, 1, x1, x2, eps=1e-4)", [randn(2, 6, 3, 3), randn(6), randn(6)]),
        case("group_norm_inst", "group_norm", {"num_groups": 4, "eps": 1e-05},
             "F.group_norm(x0, 4, x1, x2, eps=1e-5)", [randn(3, 4, 5), randn(4), randn(4)]),
        case("conv1d_s2_g2", "conv1d", {"stride": 2, "padding": 1, "dilation": 1, "groups": 2},
             "F.conv1d(x0, x1, x2, stride=2, padding=1, groups=2)",
             [randn(2, 4, 11), randn(6, 2, 3), randn(6)], MATMUL_TOL),
        case("conv1d_dil_nobias", "conv1d", {"stride": 1, "padding": 0, "dilation": 2, "groups": 1},
             "F.conv1d(x0, x1, None, dilation=2)", [randn(1, 3, 12), randn(2, 3, 4)], MATMUL_TOL),
        case("conv2d_mixed", "conv2d", {"stride": [2, 1], "padding": [0, 2], "dilation": [1, 2], "groups": 2},
             "F.conv2d(x0, x1, x2, stride=(2, 1), padding=(0, 2), dilation=(1, 2), groups=2)",
             [randn(2, 6, 7, 9), randn(4, 3, 3, 2), randn(4)], MATMUL_TOL),
        case("conv2d_1x1", "conv2d", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1},
             "F.conv2d(x0, x1, None)", [randn(2, 5, 4, 4), randn(3, 5, 1, 1)], MATMUL_TOL),
        case("conv2d_k5_s3", "conv2d", {"stride": [3, 3], "padding": [2, 2], "dilation": [1, 1], "groups": 1},
             "F.conv2d(x0, x1, x2, stride=3, padding=2)", [randn(1, 2, 10, 8), randn(3, 2, 5, 5), randn(3)],
             MATMUL_TOL),
        case("conv2d_depthwise", "conv2d", {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 4},
             "F.conv2d(x0, x1, x2, padding=1, groups=4)", [randn(2, 4, 5, 6), randn(8, 1, 3, 3), randn(8)],
             MATMUL_TOL),
        case("max_pool2d_k3s2p1", "max_pool2d", {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]},
             "F.max_pool2d(x0, 3, stride=2, padding=1)", [randn(2, 2, 9, 7)]),
        case("max_pool2d_rect", "max_pool2d", {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 0]},
             "F.max_pool2d(x0, (2, 3), stride=(1, 2), padding=(1, 0))", [randn(1, 3, 6, 7)]),
        case("avg_pool2d_nopadcount", "avg_pool2d",
             {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "count_include_pad": False},
             "F.avg_pool2d(x0, 3, stride=2, padding=1, count_include_pad=False)", [randn(2, 3, 8, 7)]),
        case("avg_pool2d_rect", "avg_pool2d",
             {"kernel_size": [2, 3], "stride": [2, 1], "padding": [1, 1], "count_include_pad": True},
             "F.avg_pool2d(x0, (2, 3), stride=(2, 1), padding=(1, 1))", [randn(1, 2, 5, 6)]),
        case("avg_pool2d_k2", "avg_pool2d",
             {"kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0], "count_include_pad": False},
             "F.avg_pool2d(x0, 2, count_include_pad=False)", [randn(1, 1, 4, 6)]),
        case("adaptive_avg_pool2d_2x3", "adaptive_avg_pool2d", {"output_size": [2, 3]},
             "F.adaptive_avg_pool2d(x0, (2, 3))", [randn(2, 3, 7, 8)]),
        case("adaptive_avg_pool2d_3x3", "adaptive_avg_pool2d", {"output_size": [3, 3]},
             "F.adaptive_avg_pool2d(x0, 3)", [randn(1, 2, 5, 7)]),
        case("adaptive_avg_pool2d_4x2", "adaptive_avg_pool2d", {"output_size": [4, 2]},
             "F.adaptive_avg_pool2d(x0, (4, 2))", [randn(1, 1, 6, 5)]),
        case("embedding_3d_idx", "embedding", {"padding_idx": None}, "F.embedding(x1, x0)",
             [randn(9, 4), ints(0, 9, 2, 3, 4, force={0: 5, 7: 5})]),
        case("embedding_pad3", "embedding", {"padding_idx": 3}, "F.embedding(x1, x0, padding_idx=3)",
             [randn(8, 5), ints(0, 8, 10, force={2: 3, 6: 3})]),
        case("cross_entropy_none_all", "cross_entropy",
             {"ignore_index": 1, "label_smoothing": 0.2, "reduction": "none"},
             "F.cross_entropy(x0, x1, ignore_index=1, reduction='none', label_smoothing=0.2)",
             [randn(5, 6), ints(0, 6, 5, force={0: 1, 3: 1, 4: 0})]),
        case("cross_entropy_4d_mean", "cross_entropy",
             {"ignore_index": -100, "label_smoothing": 0.1, "reduction": "mean"},
             "F.cross_entropy(x0, x1, label_smoothing=0.1)",
             [randn(2, 5, 3, 2), ints(0, 5, 2, 3, 2, force={1: -100, 8: -100})]),
        case("cross_entropy_sum_all", "cross_entropy",
             {"ignore_index": 3, "label_smoothing": 0.15, "reduction": "sum"},
             "F.cross_entropy(x0, x1, ignore_index=3, reduction='sum', label_smoothing=0.15)",
             [randn(7, 4), ints(0, 4, 7, force={2: 3, 5: 3})]),
        case("cross_entropy_mean_ignore_smooth", "cross_entropy",
             {"ignore_index": 0, "label_smoothing": 0.3, "reduction": "mean"},
             "F.cross_entropy(x0, x1, ignore_index=0, label_smoothing=0.3)",
             [randn(6, 5), ints(0, 5, 6, force={0: 0, 1: 2})]),
        case("cross_entropy_3d_none", "cross_entropy",
             {"ignore_index": -100, "label_smoothing": 0.0, "reduction": "none"},
             "F.cross_entropy(x0, x1, reduction='none')", [randn(3, 4, 5), ints(0, 4, 3, 5)]),
        case("cross_entropy_unbatched", "cross_entropy",
             {"ignore_index": -100, "label_smoothing": 0.0, "reduction": "mean"},
             "F.cross_entropy(x0, x1)", [randn(6), ints(0, 6)]),
        case("nll_loss_ignore_none", "nll_loss", {"ignore_index": 0, "reduction": "none"},
             "F.nll_loss(x0, x1, ignore_index=0, reduction='none')",
             [logprobs(5, 4), ints(0, 4, 5, force={1: 0, 2: 3})]),
        case("nll_loss_3d_sum", "nll_loss", {"ignore_index": -100, "reduction": "sum"},
             "F.nll_loss(x0, x1, reduction='sum')", [randn(3, 4, 5), ints(0, 4, 3, 5, force={4: -100})]),
        case("nll_loss_ignore_mean", "nll_loss", {"ignore_index": 2, "reduction": "mean"},
             "F.nll_loss(x0, x1, ignore_index=2)", [randn(7, 3), ints(0, 3, 7, force={0: 2, 3: 2})]),
        case("mse_loss_none", "mse_loss", {"reduction": "none"}, "F.mse_loss(x0, x1, reduction='none')",
             [randn(2, 3, 4), randn(2, 3, 4)]),
        case("mse_loss_sum", "mse_loss", {"reduction": "sum"}, "F.mse_loss(x0, x1, reduction='sum')",
             [randn(6), randn(6)]),
        case("l1_loss_mean", "l1_loss", {"reduction": "mean"}, "F.l1_loss(x0, x1)", [randn(4, 5), randn(4, 5)]),
        case("l1_loss_none", "l1_loss", {"reduction": "none"}, "F.l1_loss(x0, x1, reduction='none')",
             [randn(3, 2), randn(3, 2)]),
        case("smooth_l1_b05", "smooth_l1_loss", {"reduction": "mean", "beta": 0.5},
             "F.smooth_l1_loss(x0, x1, beta=0.5)", [randn(4, 6, scale=0.5), randn(4, 6, scale=0.5)]),
        case("smooth_l1_b05_none", "smooth_l1_loss", {"reduction": "none", "beta": 0.5},
             "F.smooth_l1_loss(x0, x1, reduction='none', beta=0.5)", [randn(3, 5, scale=0.5), randn(3, 5, scale=0.5)]),
        case("smooth_l1_b2_sum", "smooth_l1_loss", {"reduction": "sum", "beta": 2.0},
             "F.smooth_l1_loss(x0, x1, reduction='sum', beta=2.0)", [randn(2, 7, scale=1.5), randn(2, 7, scale=1.5)]),
        case("bce_logits_sum", "binary_cross_entropy_with_logits", {"reduction": "sum"},
             "F.binary_cross_entropy_with_logits(x0, x1, reduction='sum')",
             [randn(4, 3, scale=2.0), uniform(0.0, 1.0, 4, 3)]),
        case("bce_logits_none", "binary_cross_entropy_with_logits", {"reduction": "none"},
             "F.binary_cross_entropy_with_logits(x0, x1, reduction='none')", [randn(2, 5), uniform(0.0, 1.0, 2, 5)]),
        case("kl_div_logt_batchmean", "kl_div", {"reduction": "batchmean", "log_target": True},
             "F.kl_div(x0, x1, reduction='batchmean', log_target=True)", [logprobs(4, 6), logprobs(4, 6)]),
        case("kl_div_logt_sum", "kl_div", {"reduction": "sum", "log_target": True},
             "F.kl_div(x0, x1, reduction='sum', log_target=True)", [logprobs(3, 5), logprobs(3, 5)]),
        case("kl_div_mean", "kl_div", {"reduction": "mean", "log_target": False},
             "F.kl_div(x0, x1, reduction='mean')", [logprobs(2, 3, 4), probs(2, 3, 4)]),
        case("kl_div_logt_none", "kl_div", {"reduction": "none", "log_target": True},
             "F.kl_div(x0, x1, reduction='none', log_target=True)", [logprobs(3, 4), logprobs(3, 4)]),
        case("lstm_3layer_bf", "lstm", {"num_layers": 3, "batch_first": True}, rnn_expr("lstm", True, 3),
             rnn_inputs("lstm", True, 3, T=5, B=2, I=3, H=4)),
        case("lstm_3layer", "lstm", {"num_layers": 3, "batch_first": False}, rnn_expr("lstm", False, 3),
             rnn_inputs("lstm", False, 3, T=4, B=3, I=6, H=5)),
        case("lstm_1layer_t1", "lstm", {"num_layers": 1, "batch_first": False}, rnn_expr("lstm", False, 1),
             rnn_inputs("lstm", False, 1, T=1, B=2, I=2, H=3)),
        case("gru_2layer", "gru", {"num_layers": 2, "batch_first": False}, rnn_expr("gru", False, 2),
             rnn_inputs("gru", False, 2, T=5, B=2, I=3, H=4)),
        case("gru_2layer_bf", "gru", {"num_layers": 2, "batch_first": True}, rnn_expr("gru", True, 2),
             rnn_inputs("gru", True, 2, T=4, B=3, I=6, H=5)),
        case("sdpa_boolmask", "scaled_dot_product_attention", {"is_causal": False, "scale": None},
             "F.scaled_dot_product_attention(x0, x1, x2, attn_mask=x3)",
             [randn(2, 2, 4, 3), randn(2, 2, 6, 3), randn(2, 2, 6, 3), attn_mask(4, 6)]),
        case("sdpa_boolmask_bcast", "scaled_dot_product_attention", {"is_causal": False, "scale": 0.5},
             "F.scaled_dot_product_attention(x0, x1, x2, attn_mask=x3, scale=0.5)",
             [randn(2, 3, 4, 5), randn(2, 3, 6, 5), randn(2, 3, 6, 5), attn_mask(2, 1, 4, 6)]),
        case("sdpa_causal_lq_lt_lk", "scaled_dot_product_attention", {"is_causal": True, "scale": None},
             "F.scaled_dot_product_attention(x0, x1, x2, is_causal=True)",
             [randn(1, 2, 3, 4), randn(1, 2, 6, 4), randn(1, 2, 6, 4)]),
        case("sdpa_causal_lq_gt_lk", "scaled_dot_product_attention", {"is_causal": True, "scale": None},
             "F.scaled_dot_product_attention(x0, x1, x2, is_causal=True)",
             [randn(2, 1, 6, 4), randn(2, 1, 4, 4), randn(2, 1, 4, 4)]),
        case("sdpa_causal_scale", "scaled_dot_product_attention", {"is_causal": True, "scale": 0.7},
             "F.scaled_dot_product_attention(x0, x1, x2, is_causal=True, scale=0.7)",
             [randn(1, 3, 5, 2), randn(1, 3, 5, 2), randn(1, 3, 5, 2)]),
        case("sdpa_3d_floatmask_ev", "scaled_dot_product_attention", {"is_causal": False, "scale": None},
             "F.scaled_dot_product_attention(x0, x1, x2, attn_mask=x3)",
             [randn(3, 4, 5), randn(3, 6, 5), randn(3, 6, 2), randn(4, 6)]),
        mha_case("mha_e12_h3_seqfirst", 12, 3, False, B=2, L=4),
        mha_case("mha_e6_h1", 6, 1, True, B=3, L=2),
        mha_case("mha_e8_h4", 8, 4, True, B=1, L=7),
    ]
    sgd = {"class": "SGD", "lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}
    adam = {"class": "Adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0, "amsgrad": False}
    rms = {"class": "RMSprop", "lr": 0.01, "alpha": 0.99, "eps": 1e-08, "weight_decay": 0.0, "momentum": 0.0,
           "centered": False}
    c += [
        optim("sgd_dampening", {**sgd, "lr": 0.05, "momentum": 0.9, "dampening": 0.5}, (5,), steps=6),
        optim("sgd_momentum_wd", {**sgd, "lr": 0.2, "momentum": 0.5, "weight_decay": 0.1}, (2, 3, 2), steps=4),
        optim("sgd_wd", {**sgd, "weight_decay": 0.05}, (3, 3)),
        optim("sgd_nesterov_v", {**sgd, "lr": 0.03, "momentum": 0.8, "nesterov": True}, (6,)),
        optim("adam_wd", {**adam, "lr": 0.003, "betas": [0.85, 0.99], "eps": 1e-06, "weight_decay": 0.05}, (4, 2),
              steps=6),
        optim("adam_amsgrad", {**adam, "lr": 0.02, "betas": [0.9, 0.9], "amsgrad": True}, (7,)),
        optim("adamw_amsgrad", {**adam, "class": "AdamW", "eps": 1e-07, "weight_decay": 0.1, "amsgrad": True},
              (3, 4), steps=6),
        optim("adamw_v", {**adam, "class": "AdamW", "lr": 0.002, "betas": [0.95, 0.98], "weight_decay": 0.2},
              (2, 5)),
        optim("rmsprop_centered_mom_wd", {**rms, "alpha": 0.9, "eps": 1e-06, "weight_decay": 0.05,
                                          "momentum": 0.8, "centered": True}, (4, 3), steps=6),
        optim("rmsprop_centered", {**rms, "lr": 0.005, "alpha": 0.95, "centered": True}, (5,)),
        optim("rmsprop_momentum", {**rms, "momentum": 0.9}, (2, 2, 2), steps=4),
    ]
    return c


# --------------------------------------------------------------------------
# Attrs-driven implementations, used to cross-check every expr.


def _dims(d, x):
    """attrs dim list -> tuple; None -> every dim."""
    return tuple(range(x.dim())) if d is None else tuple(d)


def _rnn(mode, a, xs):
    """Run nn.LSTM / nn.GRU with the case's weights (functional_call)."""
    n_state = 2 if mode == "LSTM" else 1
    x, hx, ws = xs[0], tuple(xs[1:1 + n_state]), xs[1 + n_state:]
    mod = getattr(torch.nn, mode)(ws[0].shape[1], ws[1].shape[1], a["num_layers"], batch_first=a["batch_first"])
    names = [f"{k}_l{l}" for l in range(a["num_layers"]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    out, h = torch.func.functional_call(mod.to(F64), dict(zip(names, ws)), (x, hx if n_state == 2 else hx[0]))
    return (out, *h) if n_state == 2 else (out, h)


def _attention(q, k, v, mask=None, causal=False, scale=None):
    """softmax(q k^T * scale + mask) v written out; causal is top-left aligned."""
    s = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    return torch.softmax(s, -1) @ v


def _mha(a, xs):
    """Self-attention with packed in-projection, written out."""
    x, w_in, b_in, w_out, b_out = xs
    if not a["batch_first"]:
        x = x.transpose(0, 1)
    B, L, E = x.shape
    H = a["num_heads"]
    q, k, v = (t.reshape(B, L, H, E // H).transpose(1, 2) for t in F.linear(x, w_in, b_in).chunk(3, -1))
    o = F.linear(_attention(q, k, v).transpose(1, 2).reshape(B, L, E), w_out, b_out)
    return o if a["batch_first"] else o.transpose(0, 1)


ATTR_IMPL = {
    **{op: (lambda f: lambda a, x: f(x[0]))(fn) for op, fn in {
        "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
        "abs": torch.abs, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": F.silu,
        "softplus": F.softplus, "sin": torch.sin, "cos": torch.cos, "reciprocal": torch.reciprocal,
        "square": torch.square, "erf": torch.erf, "elu": F.elu}.items()},
    **{op: (lambda f: lambda a, x: f(x[0], x[1]))(getattr(torch, op)) for op in BINARY},
    "gelu": lambda a, x: F.gelu(x[0], approximate=a["approximate"]),
    "pow_scalar": lambda a, x: x[0] ** a["exponent"],
    "leaky_relu": lambda a, x: F.leaky_relu(x[0], a["negative_slope"]),
    "clamp": lambda a, x: torch.clamp(x[0], min=a["min"], max=a["max"]),
    "sum": lambda a, x: x[0].sum(_dims(a["dim"], x[0]), keepdim=a["keepdim"]),
    "mean": lambda a, x: x[0].mean(_dims(a["dim"], x[0]), keepdim=a["keepdim"]),
    "amax": lambda a, x: x[0].amax(_dims(a["dim"], x[0]), keepdim=a["keepdim"]),
    "amin": lambda a, x: x[0].amin(_dims(a["dim"], x[0]), keepdim=a["keepdim"]),
    "logsumexp": lambda a, x: x[0].logsumexp(_dims(a["dim"], x[0]), keepdim=a["keepdim"]),
    "prod": lambda a, x: (x[0].reshape(-1).prod() if a["dim"] is None
                          else x[0].prod(a["dim"], keepdim=a["keepdim"])),
    "vector_norm": lambda a, x: (x[0].abs() ** a["ord"]).sum(_dims(a["dim"], x[0]), keepdim=a["keepdim"])
    ** (1.0 / a["ord"]),
    "var": lambda a, x: x[0].var(_dims(a["dim"], x[0]), correction=a["correction"], keepdim=a["keepdim"]),
    "std": lambda a, x: x[0].std(_dims(a["dim"], x[0]), correction=a["correction"], keepdim=a["keepdim"]),
    "cumsum": lambda a, x: x[0].cumsum(a["dim"]),
    "argmax": lambda a, x: (x[0].reshape(-1).argmax() if a["dim"] is None
                            else x[0].argmax(a["dim"], keepdim=a["keepdim"])),
    "reshape": lambda a, x: x[0].reshape(a["shape"]),
    "permute": lambda a, x: x[0].permute(a["dims"]),
    "transpose": lambda a, x: x[0].transpose(a["dim0"], a["dim1"]),
    "cat": lambda a, x: torch.cat(x, a["dim"]),
    "stack": lambda a, x: torch.stack(x, a["dim"]),
    "slice": lambda a, x: x[0][tuple(slice(*r) for r in a["ranges"])],
    "expand": lambda a, x: x[0].expand(a["shape"]),
    "unsqueeze": lambda a, x: x[0].unsqueeze(a["dim"]),
    "flatten": lambda a, x: x[0].flatten(a["start_dim"], a["end_dim"]),
    "split": lambda a, x: x[0].split(a["split_size"], a["dim"]),
    "index_select": lambda a, x: x[0].index_select(a["dim"], x[1]),
    "gather": lambda a, x: x[0].gather(a["dim"], x[1]),
    "where": lambda a, x: torch.where(x[0], x[1], x[2]),
    "masked_fill": lambda a, x: x[0].masked_fill(x[1], a["value"]),
    "tril": lambda a, x: x[0].tril(a["diagonal"]),
    "pad": lambda a, x: F.pad(x[0], a["pad"], value=a["value"]),
    "take_along_dim": lambda a, x: (x[0].reshape(-1)[x[1]] if a["dim"] is None
                                    else x[0].gather(a["dim"], x[1])),
    "matmul": lambda a, x: x[0] @ x[1],
    "linear": lambda a, x: x[0] @ x[1].T + (x[2] if len(x) > 2 else 0.0),
    "einsum": lambda a, x: torch.einsum(a["equation"], *x),
    "softmax": lambda a, x: torch.softmax(x[0], a["dim"]),
    "log_softmax": lambda a, x: torch.log_softmax(x[0], a["dim"]),
    "layer_norm": lambda a, x: F.layer_norm(x[0], a["normalized_shape"], *x[1:], eps=a["eps"]),
    "rms_norm": lambda a, x: F.rms_norm(x[0], a["normalized_shape"], *x[1:], eps=a["eps"]),
    "batch_norm": lambda a, x: F.batch_norm(x[0], None, None, x[1], x[2], training=a["training"], eps=a["eps"]),
    "group_norm": lambda a, x: F.group_norm(x[0], a["num_groups"], x[1], x[2], eps=a["eps"]),
    "conv1d": lambda a, x: F.conv1d(x[0], x[1], x[2] if len(x) > 2 else None, a["stride"], a["padding"],
                                    a["dilation"], a["groups"]),
    "conv2d": lambda a, x: F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, a["stride"], a["padding"],
                                    a["dilation"], a["groups"]),
    "max_pool2d": lambda a, x: F.max_pool2d(x[0], a["kernel_size"], a["stride"], a["padding"]),
    "avg_pool2d": lambda a, x: F.avg_pool2d(x[0], a["kernel_size"], a["stride"], a["padding"],
                                            count_include_pad=a["count_include_pad"]),
    "adaptive_avg_pool2d": lambda a, x: F.adaptive_avg_pool2d(x[0], a["output_size"]),
    "embedding": lambda a, x: F.embedding(x[1], x[0], padding_idx=a["padding_idx"]),
    "cross_entropy": lambda a, x: F.cross_entropy(x[0], x[1], ignore_index=a["ignore_index"],
                                                  reduction=a["reduction"], label_smoothing=a["label_smoothing"]),
    "nll_loss": lambda a, x: F.nll_loss(x[0], x[1], ignore_index=a["ignore_index"], reduction=a["reduction"]),
    "mse_loss": lambda a, x: F.mse_loss(x[0], x[1], reduction=a["reduction"]),
    "l1_loss": lambda a, x: F.l1_loss(x[0], x[1], reduction=a["reduction"]),
    "smooth_l1_loss": lambda a, x: F.smooth_l1_loss(x[0], x[1], reduction=a["reduction"], beta=a["beta"]),
    "binary_cross_entropy_with_logits": lambda a, x: F.binary_cross_entropy_with_logits(
        x[0], x[1], reduction=a["reduction"]),
    "kl_div": lambda a, x: F.kl_div(x[0], x[1], reduction=a["reduction"], log_target=a["log_target"]),
    "lstm": lambda a, x: _rnn("LSTM", a, x),
    "gru": lambda a, x: _rnn("GRU", a, x),
    "scaled_dot_product_attention": lambda a, x: _attention(x[0], x[1], x[2], x[3] if len(x) > 3 else None,
                                                            a["is_causal"], a["scale"]),
    "multi_head_attention": _mha,
}


# --------------------------------------------------------------------------
# Building cases.


def as_tuple(out):
    """An op result as a tuple of tensors."""
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def stored(t):
    """The stored form of a tensor: floats as float32, int64 and bool as is."""
    return t.detach().to(torch.float32).contiguous() if t.is_floating_point() else t.detach().contiguous()


def case_generator(seed, name):
    """A generator seeded from (seed, case name): cases are independent of order."""
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}/{name}".encode()))


def build_op_case(spec, seed, given=None):
    """Compute one op case.  ``given`` (inputs, cotangents) replaces the random
    tensors, for comparisons against an existing golden set.

    Returns (json entry, {tensor name: tensor})."""
    name = spec["name"]
    g = case_generator(seed, name)
    ins = given[0] if given else [stored(gen(g)) for gen in spec["inputs"]]
    xs = [t.double().requires_grad_() if t.is_floating_point() else t for t in ins]
    env = {"torch": torch, "F": F, **{f"x{i}": x for i, x in enumerate(xs)}}
    outs = as_tuple(eval(spec["expr"], env))  # noqa: S307 - expr is our own case table
    check = as_tuple(ATTR_IMPL[spec["op"]](spec["attrs"], xs))
    if len(check) != len(outs) or any(
            o.shape != c.shape or not torch.allclose(o.double(), c.double(), rtol=1e-9, atol=1e-12, equal_nan=True)
            for o, c in zip(outs, check)):
        raise AssertionError(f"{name}: expr and attrs disagree")
    diff = [o for o in outs if o.is_floating_point()]
    if given:
        cots = [c.double() for c in given[1]]
    else:
        cots = [stored(torch.randn(o.shape, generator=g, dtype=F64)).double() for o in diff]
    grads = [None] * len(xs)
    wrt = [i for i, x in enumerate(xs) if x.is_floating_point()]
    if diff and wrt:
        res = torch.autograd.grad(diff, [xs[i] for i in wrt], cots, allow_unused=True)
        for i, gr in zip(wrt, res):
            grads[i] = torch.zeros_like(xs[i]) if gr is None else gr
    tensors = {}
    entry = {"name": name, "op": spec["op"], "attrs": spec["attrs"], "expr": spec["expr"],
             "inputs": [], "outputs": [], "rtol": spec["tol"][0], "atol": spec["tol"][1],
             "cotangents": [], "grads": []}
    for kind, key, items in (("x", "inputs", ins), ("out", "outputs", outs), ("cot", "cotangents", cots)):
        for i, t in enumerate(items):
            tensors[f"{name}/{kind}{i}"] = stored(t)
            entry[key].append(f"{name}/{kind}{i}")
    for i, gr in enumerate(grads):
        if gr is None or not diff:
            entry["grads"].append(None)
        else:
            tensors[f"{name}/grad{i}"] = stored(gr)
            entry["grads"].append(f"{name}/grad{i}")
    return entry, tensors


def build_optim_case(spec, seed, given=None):
    """Run ``steps`` steps of a torch.optim class in float64 on one parameter.

    Inputs: p0 (initial parameter), g0.. (gradient of each step); outputs:
    p1.. (the parameter after each step)."""
    name, attrs = spec["name"], spec["attrs"]
    g = case_generator(seed, name)
    if given:
        p0, gs = given[0][0], given[0][1:]
    else:
        p0 = stored(torch.randn(spec["shape"], generator=g, dtype=F64))
        gs = [stored(torch.randn(spec["shape"], generator=g, dtype=F64)) for _ in range(spec["steps"])]
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in attrs.items() if k != "class"}
    p = torch.nn.Parameter(p0.double().clone())
    opt = getattr(torch.optim, attrs["class"])([p], **kw)
    outs = []
    for gr in gs:
        p.grad = gr.double().clone()
        opt.step()
        outs.append(stored(p))
    tensors = {f"{name}/p0": p0, **{f"{name}/g{i}": t for i, t in enumerate(gs)},
               **{f"{name}/p{i + 1}": t for i, t in enumerate(outs)}}
    entry = {"name": name, "op": "optimizer", "attrs": attrs, "expr": None,
             "inputs": [f"{name}/p0"] + [f"{name}/g{i}" for i in range(len(gs))],
             "outputs": [f"{name}/p{i + 1}" for i in range(len(outs))],
             "cotangents": [], "grads": [], "rtol": spec["tol"][0], "atol": spec["tol"][1]}
    return entry, tensors


def build(spec, seed, given=None):
    """Build an op or optimizer case."""
    fn = build_optim_case if spec["op"] == "optimizer" else build_op_case
    return fn(spec, seed, given)


def write(out_dir, cases, seed, variant):
    """Build every case and write golden.json + golden.safetensors."""
    os.makedirs(out_dir, exist_ok=True)
    entries, tensors = [], {}
    for spec in cases:
        entry, ts = build(spec, seed)
        entries.append(entry)
        tensors.update(ts)
    doc = {"generator": f"PyTorch {torch.__version__}", "seed": seed, "variant": variant, "cases": entries}
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(doc, f, indent=1)
    save_file(tensors, os.path.join(out_dir, "golden.safetensors"))
    print(f"wrote {len(entries)} cases, {len(tensors)} tensors to {out_dir}")


def meta(entry, tensors):
    """Everything about a case but its values: names, op, attrs, expr, tolerances,
    and the dtype/shape of each tensor."""
    desc = {k: v for k, v in entry.items() if k not in ("inputs", "outputs", "cotangents", "grads")}
    for key in ("inputs", "outputs", "cotangents", "grads"):
        desc[key] = [None if n is None else (n, str(tensors[n].dtype), list(tensors[n].shape)) for n in entry[key]]
    return desc


def compare(cases, seed, golden_dir):
    """Check a case list against a golden set; returns the number of failures."""
    with open(os.path.join(golden_dir, "golden.json")) as f:
        doc = json.load(f)
    ref_t = load_file(os.path.join(golden_dir, "golden.safetensors"))
    ref = {e["name"]: e for e in doc["cases"]}
    mine = {s["name"] for s in cases}
    failures = 0
    for name in sorted(set(ref) - mine):
        print(f"MISSING  {name}: in {golden_dir} but not generated")
        failures += 1
    worst_all = 0.0
    for spec in cases:
        name = spec["name"]
        if name not in ref:
            print(f"EXTRA    {name}: generated but not in {golden_dir}")
            failures += 1
            continue
        r = ref[name]
        # Metadata (names, attrs, expr, dtypes and shapes) of our own random build ...
        m_mine, m_ref = meta(*build(spec, seed)), meta(r, ref_t)
        if m_mine != m_ref:
            diffs = [k for k in m_ref if m_mine.get(k) != m_ref[k]]
            print(f"META     {name}: differs in {diffs}")
            for k in diffs:
                print(f"           ours:   {m_mine.get(k)}\n           theirs: {m_ref[k]}")
            failures += 1
            continue
        # ... and values recomputed from the golden set's own inputs and cotangents.
        given = ([ref_t[n] for n in r["inputs"]], [ref_t[n] for n in r["cotangents"]])
        entry, ts = build(spec, seed, given)
        worst = 0.0  # max over elements of |a-b| / (atol + rtol*|b|); <= 1 passes
        for n in entry["outputs"] + [x for x in entry["grads"] if x]:
            a, b = ts[n], ref_t[n]
            if not a.is_floating_point():
                worst = max(worst, 0.0 if torch.equal(a, b) else math.inf)
                continue
            err = (a.double() - b.double()).abs() / (entry["atol"] + entry["rtol"] * b.double().abs())
            worst = max(worst, err.max().item() if err.numel() else 0.0)
        worst_all = max(worst_all, worst)
        status = "ok" if worst <= 1.0 else "VALUES"
        failures += status != "ok"
        if status != "ok":
            print(f"{status:8s} {name}: worst error / tolerance = {worst:.3g}")
    print(f"compared {len(cases)} cases with {golden_dir}: {failures} failures; "
          f"worst error / tolerance over all cases = {worst_all:.3g}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write DIR/golden.json and DIR/golden.safetensors")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--variant", type=int, default=1, help="variant number recorded in the JSON (default 1)")
    ap.add_argument("--reproduce-shared", action="store_true",
                    help="use the shared set's case list (variant 0) instead of the variant cases")
    ap.add_argument("--compare", metavar="DIR", help="check the case list against the golden set in DIR")
    args = ap.parse_args()
    if not args.out and not args.compare:
        ap.error("give --out and/or --compare")
    torch.set_num_threads(1)
    # F.kl_div(reduction='mean') warns that it differs from 'batchmean'; that is intended here.
    warnings.filterwarnings("ignore", message="reduction: 'mean' divides the total loss")
    cases = shared_cases() if args.reproduce_shared else variant_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    if args.out:
        write(args.out, cases, args.seed, 0 if args.reproduce_shared else args.variant)
    if args.compare:
        sys.exit(1 if compare(cases, args.seed, args.compare) else 0)


if __name__ == "__main__":
    main()
