"""A sweep of differentiable ops through deepseek.func in float64: ``vmap`` against
``torch.func.vmap`` (and no per-example fallback), ``jvp`` against ``torch.func.jvp`` and
against central finite differences, and per-example gradients ``vmap(grad)`` against
torch.func. Each case is written once for both libraries (``lib`` is deepseek or torch,
``F`` its functional module, ``c`` its constants)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deepseek as ds  # noqa: E402
import deepseek.nn.functional as DF  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from deepseek import func  # noqa: E402

from _func_util import close  # noqa: E402

SHAPE = (3, 4)
rng = np.random.default_rng(0)
CONST = {"w": rng.standard_normal((4, 5)), "y": rng.standard_normal(SHAPE),
         "k": rng.standard_normal((2, 1, 2, 2)), "b": rng.standard_normal(5),
         "idx": np.array([[0, 2], [3, 1], [1, 1]], dtype=np.int64),
         "cls": np.array([1, 0, 3], dtype=np.int64), "sel": np.array([3, 0], dtype=np.int64)}

# name: (fn(lib, F, x, c), domain): domain "pos" draws |x| + 0.5, "any" normal values
CASES = {
    "exp": (lambda lib, F, x, c: x.exp(), "any"),
    "log": (lambda lib, F, x, c: x.log(), "pos"),
    "sin": (lambda lib, F, x, c: x.sin(), "any"),
    "cos": (lambda lib, F, x, c: lib.cos(x), "any"),
    "tanh": (lambda lib, F, x, c: x.tanh(), "any"),
    "sigmoid": (lambda lib, F, x, c: x.sigmoid(), "any"),
    "relu": (lambda lib, F, x, c: F.relu(x), "pos"),
    "sqrt": (lambda lib, F, x, c: x.sqrt(), "pos"),
    "rsqrt": (lambda lib, F, x, c: x.rsqrt(), "pos"),
    "abs": (lambda lib, F, x, c: x.abs(), "pos"),
    "square": (lambda lib, F, x, c: x.square(), "any"),
    "reciprocal": (lambda lib, F, x, c: x.reciprocal(), "pos"),
    "log1p": (lambda lib, F, x, c: x.log1p(), "pos"),
    "expm1": (lambda lib, F, x, c: x.expm1(), "any"),
    "erf": (lambda lib, F, x, c: x.erf(), "any"),
    "pow": (lambda lib, F, x, c: x ** 3 + 2 ** x, "any"),
    "silu": (lambda lib, F, x, c: F.silu(x), "any"),
    "gelu": (lambda lib, F, x, c: F.gelu(x), "any"),
    "softplus": (lambda lib, F, x, c: F.softplus(x), "any"),
    "elu": (lambda lib, F, x, c: F.elu(x), "pos"),
    "leaky_relu": (lambda lib, F, x, c: F.leaky_relu(x, 0.1), "pos"),
    "clamp": (lambda lib, F, x, c: x.clamp(-0.5, 0.5) * x, "any"),
    "add_sub_mul_div": (lambda lib, F, x, c: (x + c["y"]) * (x - 1) / (c["y"].abs() + 1),
                        "any"),
    "maximum": (lambda lib, F, x, c: lib.maximum(x, c["y"]), "any"),
    "where": (lambda lib, F, x, c: lib.where(c["y"] > 0, x * 2, -x), "any"),
    "softmax": (lambda lib, F, x, c: F.softmax(x, -1), "any"),
    "log_softmax": (lambda lib, F, x, c: x.log_softmax(0), "any"),
    "logsumexp": (lambda lib, F, x, c: x.logsumexp(-1), "any"),
    "sum_mean": (lambda lib, F, x, c: x.sum(0) + x.mean(), "any"),
    "prod": (lambda lib, F, x, c: x.prod(-1), "pos"),
    "amax": (lambda lib, F, x, c: x.amax(1), "any"),
    "var_std": (lambda lib, F, x, c: x.var(-1) + x.std(0).sum(), "any"),
    "norm": (lambda lib, F, x, c: x.norm() + x.norm(2, 1).sum(), "any"),
    "cumsum": (lambda lib, F, x, c: x.cumsum(1), "any"),
    "matmul": (lambda lib, F, x, c: x @ c["w"], "any"),
    "linear": (lambda lib, F, x, c: F.linear(x, c["w"].t(), c["b"]), "any"),
    "einsum": (lambda lib, F, x, c: lib.einsum("ij,jk->ik", x, c["w"]), "any"),
    "mse_loss": (lambda lib, F, x, c: F.mse_loss(x, c["y"]), "any"),
    "cross_entropy": (lambda lib, F, x, c: F.cross_entropy(x, c["cls"]), "any"),
    "layer_norm": (lambda lib, F, x, c: F.layer_norm(x, (4,)), "any"),
    "reshape_transpose": (lambda lib, F, x, c: x.t().reshape(2, 6).permute(1, 0), "any"),
    "cat_stack": (lambda lib, F, x, c: lib.stack([lib.cat([x, c["y"]], 0), lib.cat([c["y"], x],
                                                                               0)], -1), "any"),
    "index": (lambda lib, F, x, c: x[1:, ::2] * x[0, 1], "any"),
    "gather": (lambda lib, F, x, c: x.gather(1, c["idx"]), "any"),
    "index_select": (lambda lib, F, x, c: x.index_select(1, c["sel"]), "any"),
    "expand_tril_flip": (lambda lib, F, x, c: x.unsqueeze(0).expand(2, 3, 4).tril().flip(0),
                         "any"),
    "conv2d": (lambda lib, F, x, c: F.conv2d(x.reshape(1, 1, 3, 4), c["k"], padding=1), "any"),
    "max_pool2d": (lambda lib, F, x, c: F.max_pool2d(x.reshape(1, 3, 4), 2), "any"),
}


def _consts(lib):
    return {k: lib.tensor(v) for k, v in CONST.items()}


def _input(domain, shape, seed):
    a = np.random.default_rng(seed).standard_normal(shape)
    return np.abs(a) + 0.5 if domain == "pos" else a


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_jvp_fd(name):
    fn, domain = CASES[name]
    cd, ct = _consts(ds), _consts(torch)
    fd = lambda x: fn(ds, DF, x, cd)  # noqa: E731
    ft = lambda x: fn(torch, TF, x, ct)  # noqa: E731
    xb = _input(domain, (4,) + SHAPE, 1)
    func.fallback_counts(reset=True)
    close(func.vmap(fd)(ds.tensor(xb)), torch.func.vmap(ft)(torch.tensor(xb)), 1e-9, 1e-10)
    assert func.fallback_counts() == {}, func.fallback_counts()
    x, v = _input(domain, SHAPE, 2), np.random.default_rng(3).standard_normal(SHAPE)
    o, j = func.jvp(fd, (ds.tensor(x),), (ds.tensor(v),))
    ot, jt = torch.func.jvp(ft, (torch.tensor(x),), (torch.tensor(v),))
    close((o, j), (ot, jt), 1e-9, 1e-10)
    eps = 1e-6
    fdiff = (fd(ds.tensor(x + eps * v)).numpy() - fd(ds.tensor(x - eps * v)).numpy()) / (2 * eps)
    np.testing.assert_allclose(j.numpy(), fdiff, rtol=1e-5, atol=1e-6)
    # per-example gradients of a scalar function of the op
    gd = func.vmap(func.grad(lambda x: (fd(x) * fd(x)).sum()))(ds.tensor(xb))
    gt = torch.func.vmap(torch.func.grad(lambda x: (ft(x) * ft(x)).sum()))(torch.tensor(xb))
    close(gd, gt, 1e-8, 1e-9)
    # vmap over jvp tangents (a batch of directions)
    vs = np.random.default_rng(4).standard_normal((3,) + SHAPE)
    jb = func.vmap(lambda t: func.jvp(fd, (ds.tensor(x),), (t,))[1])(ds.tensor(vs))
    jbt = torch.func.vmap(lambda t: torch.func.jvp(ft, (torch.tensor(x),), (t,))[1])(
        torch.tensor(vs))
    close(jb, jbt, 1e-9, 1e-10)
