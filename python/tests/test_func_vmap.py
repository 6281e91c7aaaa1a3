"""deepseek.func.vmap against torch.func.vmap: in_dims/out_dims forms, pytrees, nesting,
chunking, randomness, the batching rules (no per-example fallback where a rule exists)
and the errors."""

import pytest

torch = pytest.importorskip("torch")

import deepseek as ds  # noqa: E402
import deepseek.nn.functional as F  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from deepseek import func  # noqa: E402

from _func_util import arr, both, close  # noqa: E402


@pytest.fixture(autouse=True)
def _no_fallback_by_default():
    func.fallback_counts(reset=True)
    yield


def check(fd, ft, arrays, in_dims=0, out_dims=0, fallback_ok=False, **kw):
    d, t = both(*arrays)
    got = func.vmap(fd, in_dims, out_dims, **kw)(*d)
    want = torch.func.vmap(ft, in_dims, out_dims, **kw)(*t)
    close(got, want)
    if not fallback_ok:
        assert func.fallback_counts() == {}, func.fallback_counts()
    return got


def test_deepseek_vmap_is_func_vmap():
    assert ds.vmap is func.vmap


def test_in_dims_out_dims_forms():
    x, y = arr((4, 3)), arr((3, 4), 1)
    check(lambda a, b: a * b.sum(), lambda a, b: a * b.sum(), [x, y], in_dims=(0, 1))
    check(lambda a, b: a + b, lambda a, b: a + b, [x, y[:, 0].copy()], in_dims=(0, None))
    check(lambda a: a.exp(), lambda a: a.exp(), [x], in_dims=1, out_dims=1)
    check(lambda a: a.exp(), lambda a: a.exp(), [x], in_dims=-1, out_dims=-1)
    check(lambda a: (a, a.sum()), lambda a: (a, a.sum()), [x], out_dims=(1, 0))
    # an output that does not depend on the batch is expanded
    check(lambda a, b: b * 2, lambda a, b: b * 2, [x, y], in_dims=(0, None))
    check(lambda a, b: (a.sum(), b), lambda a, b: (a.sum(), b), [x, y], in_dims=(0, None),
          out_dims=(0, None))


def test_pytree_inputs_and_outputs():
    x, y = arr((5, 2)), arr((5, 2), 1)
    dd, tt = both(x, y)
    f_ds = lambda p: {"s": p["a"] + p["b"][0], "l": [p["b"][1] * 2]}  # noqa: E731
    f_t = lambda p: {"s": p["a"] + p["b"][0], "l": [p["b"][1] * 2]}  # noqa: E731
    got = func.vmap(f_ds, in_dims=({"a": 0, "b": (0, None)},))(
        {"a": dd[0], "b": (dd[1], dd[0][0])})
    want = torch.func.vmap(f_t, in_dims=({"a": 0, "b": (0, None)},))(
        {"a": tt[0], "b": (tt[1], tt[0][0])})
    close(got, want)


def test_nested_vmap_and_chunks():
    x, y = arr((3, 4, 5)), arr((4, 5), 2)
    f = lambda a, b: (a * b).sum(-1)  # noqa: E731
    d, t = both(x, y)
    got = func.vmap(func.vmap(f, in_dims=(0, 0)), in_dims=(0, None))(*d)
    want = torch.func.vmap(torch.func.vmap(f, in_dims=(0, 0)), in_dims=(0, None))(*t)
    close(got, want)
    # inner maps over a different dimension than the outer
    got = func.vmap(func.vmap(lambda a: a.softmax(0), in_dims=1), in_dims=0)(d[0])
    want = torch.func.vmap(torch.func.vmap(lambda a: a.softmax(0), in_dims=1))(t[0])
    close(got, want)
    for cs in (1, 2, 7):
        check(lambda a: a.tanh().sum(0), lambda a: a.tanh().sum(0), [x], chunk_size=cs)


def test_matmul_rules():
    cases = [((6, 3), (3, 4), (0, None)), ((6, 3), (3,), (0, None)), ((4, 3), (6, 3), (None, 0)),
             ((3,), (6, 3, 2), (None, 0)), ((6, 2, 3), (6, 3, 4), (0, 0)),
             ((6, 3), (6, 3), (0, 0)), ((6, 5, 2, 3), (3, 4), (0, None)),
             ((2, 5, 3), (6, 3, 4), (None, 0)), ((6, 3), (2, 3, 4), (0, None))]
    for sa, sb, dims in cases:
        check(lambda a, b: a @ b, lambda a, b: a @ b, [arr(sa), arr(sb, 1)], in_dims=dims)
    check(lambda a, b: ds.einsum("ij,j->i", a, b), lambda a, b: torch.einsum("ij,j->i", a, b),
          [arr((6, 2, 3)), arr((3,), 1)], in_dims=(0, None))
    check(lambda a, b: ds.einsum("ij,jk", a, b), lambda a, b: torch.einsum("ij,jk", a, b),
          [arr((6, 2, 3)), arr((6, 3, 4), 1)])
    check(lambda a, b: a.mm(b), lambda a, b: a.mm(b), [arr((6, 2, 3)), arr((3, 2), 1)],
          in_dims=(0, None))
    check(lambda a, b: a.dot(b), lambda a, b: a.dot(b), [arr((6, 3)), arr((6, 3), 1)])


def test_reduction_and_dim_rules():
    x = arr((5, 3, 4))
    for f in [lambda a: a.sum(), lambda a: a.sum(0), lambda a: a.sum((0, 1), keepdim=True),
              lambda a: a.mean(-1), lambda a: a.amax(1), lambda a: a.max(),
              lambda a: a.max(1)[0], lambda a: a.min(0, keepdim=True)[1], lambda a: a.prod(1),
              lambda a: a.var(0), lambda a: a.std(), lambda a: a.logsumexp(1),
              lambda a: a.argmax(), lambda a: a.argmax(1), lambda a: a.norm(),
              lambda a: a.norm(2, 1), lambda a: a.softmax(-1), lambda a: a.log_softmax(0),
              lambda a: a.cumsum(1), lambda a: a.sort(0)[0], lambda a: a.topk(2)[0],
              lambda a: a.all(), lambda a: (a > 0).any(1)]:
        check(f, f, [x])


def test_view_and_shape_rules():
    x = arr((5, 2, 3, 4))
    for f in [lambda a: a.reshape(6, 4), lambda a: a.view(-1), lambda a: a.permute(2, 0, 1),
              lambda a: a.transpose(0, 2), lambda a: a.unsqueeze(1).squeeze(),
              lambda a: a.flatten(1), lambda a: a.expand(2, 2, 3, 4),
              lambda a: a[0, 1:, ::2], lambda a: a[..., 1], lambda a: a[:, None],
              lambda a: a[:, ds.tensor([2, 0]) if isinstance(a, ds.func.BatchedTensor)
                          else torch.tensor([2, 0])],
              lambda a: a.select(1, 2), lambda a: a.narrow(2, 1, 2), lambda a: a.chunk(2, 2)[1],
              lambda a: a.split(1, 0)[1], lambda a: a.unbind(1)[2], lambda a: a.flip(0),
              lambda a: a.t() if a.dim() == 2 else a.mT, lambda a: a.movedim(0, -1),
              lambda a: a.repeat(1, 2, 1), lambda a: a.tril(), lambda a: a.unflatten(2, (2, 2)),
              lambda a: a.diagonal(0, 1, 2), lambda a: a.contiguous().clone()]:
        check(f, f, [x])
    check(lambda a, b: ds.cat([a, b], 1), lambda a, b: torch.cat([a, b], 1),
          [arr((5, 2, 3)), arr((2, 4), 1)], in_dims=(0, None))
    check(lambda a, b: ds.stack([a, b], -1), lambda a, b: torch.stack([a, b], -1),
          [arr((5, 2, 3)), arr((5, 2, 3), 1)])
    check(lambda c, a, b: ds.where(c > 0, a, b), lambda c, a, b: torch.where(c > 0, a, b),
          [arr((5, 3)), arr((3,), 1), arr((5, 3), 2)], in_dims=(0, None, 0))


def test_gather_and_masking():
    x = arr((5, 4, 3))
    import numpy as np

    idx = np.random.default_rng(0).integers(0, 3, (5, 4, 2)).astype(np.int64)
    d, t = both(x, idx)
    got = func.vmap(lambda a, i: a.gather(1, i))(*d)
    want = torch.func.vmap(lambda a, i: a.gather(1, i))(*t)
    close(got, want)
    check(lambda a: a.masked_fill(a > 0, 0.5), lambda a: a.masked_fill(a > 0, 0.5), [x])
    check(lambda a: a.clamp(-0.5, 0.5) ** 2 - 1 / (a.abs() + 1),
          lambda a: a.clamp(-0.5, 0.5) ** 2 - 1 / (a.abs() + 1), [x])


def test_functional_rules():
    x, w, b = arr((6, 5)), arr((3, 5), 1), arr((3,), 2)
    check(lambda a, w, b: F.linear(a, w, b), lambda a, w, b: TF.linear(a, w, b), [x, w, b],
          in_dims=(0, None, None))
    # batched weights (an ensemble)
    check(lambda a, w, b: F.linear(a, w, b), lambda a, w, b: TF.linear(a, w, b),
          [x, arr((6, 3, 5), 3), b], in_dims=(0, 0, None))
    for name in ("relu", "gelu", "silu", "sigmoid", "tanh", "softplus", "elu"):
        check(getattr(F, name), getattr(TF, name), [x])
    check(lambda a: F.softmax(a, -1), lambda a: TF.softmax(a, -1), [arr((6, 2, 5))])
    check(lambda a: F.log_softmax(a, 0), lambda a: TF.log_softmax(a, 0), [arr((6, 2, 5))])
    img, k = arr((4, 2, 6, 6)), arr((3, 2, 3, 3), 1)
    check(lambda a, k: F.conv2d(a, k, padding=1), lambda a, k: TF.conv2d(a, k, padding=1),
          [img, k], in_dims=(0, None))
    check(lambda a, k: F.conv2d(a, k, stride=2), lambda a, k: TF.conv2d(a, k, stride=2),
          [arr((4, 2, 2, 6, 6)), k], in_dims=(0, None))
    check(lambda a: F.max_pool2d(a, 2), lambda a: TF.max_pool2d(a, 2), [img])
    check(lambda a: F.layer_norm(a, (5,)), lambda a: TF.layer_norm(a, (5,)), [arr((6, 2, 5))])
    import numpy as np

    tgt = np.random.default_rng(1).integers(0, 5, (6,)).astype(np.int64)
    check(lambda a, y: F.cross_entropy(a, y), lambda a, y: TF.cross_entropy(a, y), [x, tgt])
    tgt2 = np.random.default_rng(2).integers(0, 5, (6, 2)).astype(np.int64)
    for red in ("mean", "sum", "none"):
        check(lambda a, y: F.cross_entropy(a, y, reduction=red),
              lambda a, y: TF.cross_entropy(a, y, reduction=red), [arr((6, 2, 5)), tgt2])
        check(lambda a, y: F.mse_loss(a, y, reduction=red),
              lambda a, y: TF.mse_loss(a, y, reduction=red), [x, arr((6, 5), 4)])
    check(lambda a, y: F.nll_loss(F.log_softmax(a, -1), y),
          lambda a, y: TF.nll_loss(TF.log_softmax(a, -1), y), [x, tgt])


def test_fallback_runs_per_example_and_is_counted():
    x = arr((4, 6))
    # kthvalue has a rule; Tensor.roll has none and loops
    check(lambda a: a.roll(1, 0), lambda a: a.roll(1, 0), [x], fallback_ok=True)
    assert func.fallback_counts().get("Tensor.roll") == 1


def test_randomness():
    x = ds.zeros(8, 3)
    with pytest.raises(RuntimeError, match="randomness"):
        func.vmap(lambda a: a + ds.randn(3))(x)
    with pytest.raises(RuntimeError, match="randomness"):
        func.vmap(lambda a: F.dropout(a + 1, 0.5))(x)
    ds.manual_seed(0)
    diff = func.vmap(lambda a: a + ds.randn(3), randomness="different")(x)
    same = func.vmap(lambda a: a + ds.randn(3), randomness="same")(x)
    assert tuple(diff.shape) == (8, 3) and tuple(same.shape) == (8, 3)
    assert float((diff[0] - diff[1]).abs().sum()) > 0
    assert float((same - same[0]).abs().sum()) == 0
    d = func.vmap(lambda a: F.dropout(a + 1, 0.5), randomness="different")(ds.zeros(64, 32))
    s = func.vmap(lambda a: F.dropout(a + 1, 0.5), randomness="same")(ds.zeros(64, 32))
    assert float((d[0] - d[1]).abs().sum()) > 0 and float((s - s[0]).abs().sum()) == 0
    kept = float((d != 0).float().mean())
    assert 0.4 < kept < 0.6 and set(d.reshape(-1).tolist()) <= {0.0, 2.0}
    # dropout in eval mode is not random
    func.vmap(lambda a: F.dropout(a, 0.5, training=False))(x)
    with pytest.raises(RuntimeError):
        func.vmap(lambda a: a, randomness="sometimes")


def test_errors():
    with pytest.raises(ValueError):
        func.vmap(lambda a, b: a + b)(ds.zeros(2, 3), ds.zeros(3, 3))
    with pytest.raises(ValueError):
        func.vmap(lambda a: a, in_dims=(0, 0))(ds.zeros(2))
    with pytest.raises(ValueError):
        func.vmap(lambda a: a, in_dims=2)(ds.zeros(2, 3))
    with pytest.raises(ValueError):
        func.vmap(lambda a, n: a * n)(ds.zeros(2), 3)
    with pytest.raises(ValueError):
        func.vmap(lambda a: a, in_dims=None)(ds.zeros(2))
    with pytest.raises(RuntimeError, match="data-dependent"):
        func.vmap(lambda a: a * 2 if a.sum() > 0 else a)(ds.ones(2, 3))
    with pytest.raises(ValueError):
        func.vmap(lambda a: a.sum(), out_dims=None)(ds.ones(2, 3))
    assert func.vmap(lambda a, n: a * n, in_dims=(0, None))(ds.ones(2), 3).tolist() == [3, 3]


def test_module_functions_with_plain_first_argument():
    c, x, w = arr((3,)), arr((5, 3), 1), arr((4, 3), 2)
    (cd, xd, wd), (ct, xt, wt) = both(c, x, w)
    for name in ("maximum", "add", "mul", "sub", "div", "minimum"):
        got = func.vmap(lambda a: getattr(ds, name)(cd, a))(xd)
        want = torch.func.vmap(lambda a: getattr(torch, name)(ct, a))(xt)
        close(got, want)
    close(func.vmap(lambda a: ds.matmul(wd, a))(xd),
          torch.func.vmap(lambda a: torch.matmul(wt, a))(xt))
    close(func.vmap(lambda a: ds.sum(ds.exp(a), 0))(xd),
          torch.func.vmap(lambda a: torch.sum(torch.exp(a), 0))(xt))
    assert func.fallback_counts() == {}


def test_more_functional_rules():
    import numpy as np

    idx = np.random.default_rng(0).integers(0, 7, (5, 3)).astype(np.int64)
    emb = arr((7, 4), 1)
    check(lambda i, e: F.embedding(i, e), lambda i, e: TF.embedding(i, e), [idx, emb],
          in_dims=(0, None))
    check(lambda a: F.pad(a, (1, 2)), lambda a: TF.pad(a, (1, 2)), [arr((5, 2, 3))])
    rm, rv = arr((3,), 2), arr((3,), 3, low=0.5)
    check(lambda a, m, v: F.batch_norm(a, m, v, training=False),
          lambda a, m, v: TF.batch_norm(a, m, v, training=False), [arr((5, 4, 3)), rm, rv],
          in_dims=(0, None, None))
    check(lambda a: F.group_norm(a, 2), lambda a: TF.group_norm(a, 2), [arr((5, 2, 4, 3))])
    q, k, v = arr((5, 2, 4, 8)), arr((5, 2, 6, 8), 1), arr((5, 2, 6, 8), 2)
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v), [q, k, v])
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True),
          [arr((5, 2, 6, 8)), k, v], in_dims=(0, None, 0))


def test_randomness_creation_and_like_functions():
    x = ds.zeros(6, 4)
    ds.manual_seed(3)
    for fn in (lambda a: a + ds.rand(4), lambda a: a + ds.rand_like(a),
               lambda a: a + ds.randn_like(a), lambda a: a + ds.randint(0, 100, (4,)).float()):
        d = func.vmap(fn, randomness="different")(x)
        s = func.vmap(fn, randomness="same")(x)
        assert tuple(d.shape) == (6, 4) == tuple(s.shape)
        assert float((d[0] - d[1]).abs().sum()) > 0
        assert float((s - s[0]).abs().sum()) == 0
        with pytest.raises(RuntimeError, match="randomness"):
            func.vmap(fn)(x)
    # nested: the outer level draws per example, the inner one shares
    r = func.vmap(func.vmap(lambda a: a + ds.rand(()), randomness="same"),
                  randomness="different")(ds.zeros(3, 5))
    assert float((r[0] - r[1]).abs().sum()) > 0
    assert float((r - r[:, :1]).abs().sum()) == 0
    # randperm per example
    p = func.vmap(lambda a: ds.randperm(5), randomness="different")(x)
    assert tuple(p.shape) == (6, 5) and sorted(p[0].tolist()) == [0, 1, 2, 3, 4]


def test_conv_with_batched_weights_and_layers_without_rules():
    img, k, b = arr((4, 2, 6, 6)), arr((4, 3, 2, 3, 3), 1), arr((4, 3), 2)
    check(lambda a, k, b: F.conv2d(a, k, b, padding=1),
          lambda a, k, b: TF.conv2d(a, k, b, padding=1), [img, k, b])
    check(lambda a, k: F.conv2d(a, k, stride=2, groups=1),
          lambda a, k: TF.conv2d(a, k, stride=2, groups=1), [arr((2, 3, 2, 7, 7)), k[:2]])
    check(lambda a, k: F.conv1d(a, k, padding=1), lambda a, k: TF.conv1d(a, k, padding=1),
          [arr((4, 2, 9)), arr((3, 2, 3), 3)], in_dims=(0, None))
    # a layer calling a compiled function without a rule (MultiheadAttention -> mha) runs
    # once per example, correctly
    ds.manual_seed(0)
    layer = ds.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
    x = ds.tensor(arr((3, 5, 8)))
    out = func.vmap(lambda t: layer(t.unsqueeze(0)).squeeze(0))(x)
    close(out, layer(x), atol=1e-5)
    assert func.fallback_counts() == {"mha": 1}
