"""Tensor basics: creation, dtypes, operators, indexing, methods, conversions."""

import math

import numpy as np
import pytest

import deepseek as ds


def close(a, b, tol=1e-5):
    return np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=tol)


def test_creation_and_metadata():
    x = ds.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.dim() == 2 and x.ndim == 2 and x.numel() == 6
    assert x.dtype == ds.float32 == ds.float and str(x.device) == "cpu"
    assert x.device == ds.device("cpu") and x.device.type == "cpu"
    assert ds.tensor([1, 2]).dtype == ds.int64 == ds.long
    assert ds.tensor([True, False]).dtype == ds.bool
    assert ds.tensor(3.5).shape == () and ds.tensor(3.5).item() == 3.5
    assert ds.zeros(2, 3).shape == (2, 3) and ds.ones((4,)).tolist() == [1, 1, 1, 1]
    assert ds.arange(5).dtype == ds.int64 and ds.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert ds.arange(0, 1, 0.25).dtype == ds.float32
    assert ds.full((2,), 7).tolist() == [7, 7] and ds.full((2,), 7).dtype == ds.int64
    assert ds.eye(3).sum().item() == 3.0
    assert ds.randn(3, 4, dtype=ds.float64).dtype == ds.float64
    assert ds.zeros_like(x).shape == x.shape and ds.ones_like(x, dtype=ds.int32).dtype == ds.int32
    assert ds.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ds.tensor([]).shape == (0,)


def test_dtype_names_and_conversions():
    x = ds.tensor([1.5, -2.5])
    assert x.double().dtype == ds.float64 == ds.double
    assert x.half().dtype == ds.float16 == ds.half
    assert x.bfloat16().dtype == ds.bfloat16
    assert x.long().tolist() == [1, -2] and x.long().dtype == ds.int64
    assert x.int().dtype == ds.int32 == ds.int
    assert x.bool().tolist() == [True, True]
    assert x.to(ds.float64).dtype == ds.float64
    assert x.to("cpu").dtype == ds.float32
    assert x.to(dtype=ds.int64).dtype == ds.int64
    assert x.to(ds.zeros(1, dtype=ds.float16)).dtype == ds.float16
    assert x.float() is not None and repr(ds.float32) == "deepseek.float32"
    assert ds.float32.is_floating_point and not ds.int64.is_floating_point
    assert ds.float64.itemsize == 8


def test_repr_like_pytorch():
    assert repr(ds.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(ds.tensor([1, 2])) == "tensor([1, 2])"
    r = repr(ds.tensor([1.0], requires_grad=True))
    assert "requires_grad=True" in r


def test_arithmetic_with_scalars_and_broadcasting():
    a = ds.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = ds.tensor([10.0, 20.0])
    assert (a + b).tolist() == [[11, 22], [13, 24]]
    assert (a - 1).tolist() == [[0, 1], [2, 3]]
    assert (1 - a).tolist() == [[0, -1], [-2, -3]]
    assert (2 * a).tolist() == [[2, 4], [6, 8]]
    assert close((a / 2).tolist(), [[0.5, 1], [1.5, 2]])
    assert close((1 / a).tolist(), [[1, 0.5], [1 / 3, 0.25]])
    assert (a ** 2).tolist() == [[1, 4], [9, 16]]
    assert close((2 ** a).tolist(), [[2, 4], [8, 16]])
    assert (-a).tolist() == [[-1, -2], [-3, -4]]
    assert (a @ a).tolist() == [[7, 10], [15, 22]]
    assert (a // 3).tolist() == [[0, 0], [1, 1]]
    assert (a % 3).tolist() == [[1, 2], [0, 1]]
    assert abs(-a).tolist() == a.tolist()
    i = ds.tensor([1, 2, 3])
    assert (i + 1).dtype == ds.int64 and (i + 1.5).dtype == ds.float32
    assert (i / 2).dtype == ds.float32 and (i * 2).tolist() == [2, 4, 6]
    assert (ds.tensor([True]) + 1).dtype == ds.int64
    # PyTorch's zero-dim rule: a dimensioned tensor's dtype beats a 0-d one of its category
    assert (a + ds.tensor(1.0, dtype=ds.float64)).dtype == ds.float32
    assert (ds.tensor(2.0, dtype=ds.float64) * a).dtype == ds.float32
    assert (ds.ones(2, dtype=ds.int32) + ds.tensor(1)).dtype == ds.int32
    assert (ds.ones(2, dtype=ds.int32) + ds.tensor(1.5, dtype=ds.float64)).dtype == ds.float64
    assert (ds.ones(2, dtype=ds.bool) + ds.tensor(1)).dtype == ds.int64


def test_comparisons_and_logic():
    a = ds.tensor([1.0, 2.0, 3.0])
    assert (a == 2).tolist() == [False, True, False]
    assert (a < 2).tolist() == [True, False, False]
    assert (a >= ds.tensor([1.0, 3.0, 2.0])).tolist() == [True, False, True]
    assert (a != 2).dtype == ds.bool
    m = a > 1
    assert (m & (a < 3)).tolist() == [False, True, False]
    assert (m | (a < 2)).tolist() == [True, True, True]
    assert (~m).tolist() == [True, False, False]
    assert (a == None) is False  # noqa: E711


def test_inplace_ops_keep_identity():
    a = ds.zeros(3)
    b = a
    a += 1
    assert a is b and a.tolist() == [1, 1, 1]
    a.mul_(3).add_(ds.ones(3), alpha=2)
    assert a.tolist() == [5, 5, 5]
    a.sub_(1).div_(2)
    assert a.tolist() == [2, 2, 2]
    a.zero_()
    assert a.tolist() == [0, 0, 0]
    a.fill_(4).clamp_(max=3)
    assert a.tolist() == [3, 3, 3]
    v = a[1:]
    v.fill_(9)
    assert a.tolist() == [3, 9, 9]
    a.copy_(ds.tensor([1.0, 2.0, 3.0]))
    assert a.tolist() == [1, 2, 3]


def test_indexing():
    x = ds.arange(24).reshape(2, 3, 4)
    n = np.arange(24).reshape(2, 3, 4)
    for idx in [0, -1, (1, 2), (slice(None), 1), (slice(0, 3, 2),), (Ellipsis, 1),
                (None, 0), (0, Ellipsis, None), (slice(None), slice(None, None, 2), 3),
                (slice(1, None), slice(-2, None))]:
        assert x[idx].tolist() == n[idx].tolist(), idx
    assert x[1, 2, 3].item() == 23
    mask = ds.tensor([True, False])
    assert x[mask].tolist() == n[np.array([True, False])].tolist()
    m2 = x > 20
    assert x[m2].tolist() == n[n > 20].tolist()
    idx = ds.tensor([2, 0])
    assert x[:, idx].tolist() == n[:, [2, 0]].tolist()
    assert x[[1, 0]].tolist() == n[[1, 0]].tolist()
    rows, cols = ds.tensor([0, 1, 1]), ds.tensor([1, 2, 0])
    assert x[rows, cols].tolist() == n[[0, 1, 1], [1, 2, 0]].tolist()
    # PyTorch applies the int first (unlike numpy): x[0][:, idx]
    assert x[0, :, ds.tensor([3, -1])].tolist() == n[0][:, [3, -1]].tolist()
    with pytest.raises(IndexError):
        x[5]
    with pytest.raises(IndexError):
        x[0, 0, 0, 0]
    with pytest.raises(ValueError):
        x[::-1]


def test_setitem():
    x = ds.zeros(3, 4)
    x[0] = 1.0
    x[1, 1:3] = ds.tensor([5.0, 6.0])
    x[:, -1] = 7
    x[x > 6] = -1.0
    assert x.tolist() == [[1, 1, 1, -1], [0, 5, 6, -1], [0, 0, 0, -1]]
    p = ds.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError):
        p[0] = 1.0
    with ds.no_grad():
        p[0] = 1.0
    assert p.tolist() == [1.0, 0.0]


def test_shape_methods():
    x = ds.arange(6).float()
    assert x.view(2, 3).shape == (2, 3) and x.view(-1, 2).shape == (3, 2)
    assert x.reshape((3, 2)).shape == (3, 2)
    y = x.view(2, 3)
    assert y.t().shape == (3, 2) and y.T.shape == (3, 2) and y.transpose(0, 1).shape == (3, 2)
    assert y.permute(1, 0).tolist() == y.t().tolist()
    assert y.unsqueeze(0).shape == (1, 2, 3) and y.unsqueeze(0).squeeze(0).shape == (2, 3)
    assert y.unsqueeze(-1).squeeze().shape == (2, 3)
    assert y[:, :1].expand(2, 4).shape == (2, 4) and y[:, :1].expand(-1, 4).shape == (2, 4)
    assert not y.t().is_contiguous() and y.t().contiguous().is_contiguous()
    assert y.flatten().shape == (6,)
    assert [t.shape for t in y.split(1, dim=1)] == [(2, 1)] * 3
    assert [t.shape for t in y.chunk(2, 0)] == [(1, 3)] * 2
    assert [t.tolist() for t in y.unbind(0)] == [[0, 1, 2], [3, 4, 5]]
    assert y.flip(1).tolist() == [[2, 1, 0], [5, 4, 3]]
    assert y.repeat(1, 2).shape == (2, 6)
    assert ds.cat([y, y], dim=0).shape == (4, 3) and ds.stack([y, y]).shape == (2, 2, 3)
    assert len(y) == 2 and [r.tolist() for r in y] == [[0, 1, 2], [3, 4, 5]]


def test_reductions():
    x = ds.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    n = x.numpy()
    assert x.sum().item() == 21 and x.sum(dim=0).tolist() == [5, 7, 9]
    assert x.sum(1, keepdim=True).shape == (2, 1) and x.sum((0, 1)).item() == 21
    assert close(x.mean(0).tolist(), n.mean(0))
    assert x.max().item() == 6 and x.min().item() == 1
    v, i = x.max(dim=1)
    assert v.tolist() == [5, 6] and i.tolist() == [1, 2]
    r = x.min(dim=0, keepdim=True)
    assert r.values.shape == (1, 3) and r.indices.tolist() == [[0, 1, 0]]
    assert x.argmax().item() == 5 and x.argmax(dim=1).tolist() == [1, 2]
    assert close(x.std().item(), n.std(ddof=1)) and close(x.var(1, unbiased=False).tolist(), n.var(1))
    assert close(x.logsumexp(1).tolist(), np.log(np.exp(n).sum(1)))
    assert x.cumsum(1).tolist() == np.cumsum(n, 1).tolist()
    assert x.prod().item() == 720 and x.amax(0).tolist() == [4, 5, 6]
    assert close(x.norm().item(), np.linalg.norm(n))
    assert close(x.softmax(-1).sum(-1).tolist(), [1, 1])
    assert (x > 0).all().item() is True and (x > 5).any().item() is True
    assert ds.sum(x, dim=1).tolist() == [9, 12] and ds.max(x).item() == 6


def test_math_methods():
    x = ds.tensor([0.5, 1.0, 2.0])
    n = x.numpy()
    for name, f in [("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("sin", np.sin),
                    ("cos", np.cos), ("tanh", np.tanh), ("abs", np.abs), ("log1p", np.log1p)]:
        assert close(getattr(x, name)().tolist(), f(n)), name
        assert close(getattr(ds, name)(x).tolist(), f(n)), name
    assert close(x.sigmoid().tolist(), 1 / (1 + np.exp(-n)))
    assert close(x.rsqrt().tolist(), 1 / np.sqrt(n))
    assert close(x.pow(3).tolist(), n ** 3) and close(x.clamp(0.7, 1.5).tolist(), np.clip(n, 0.7, 1.5))
    m = ds.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert m.matmul(m).tolist() == [[7, 10], [15, 22]] and m.mm(m).tolist() == [[7, 10], [15, 22]]
    assert m.masked_fill(m > 2, 0.0).tolist() == [[1, 2], [0, 0]]
    assert m.gather(1, ds.tensor([[1], [0]])).tolist() == [[2], [3]]
    assert m.index_select(0, ds.tensor([1])).tolist() == [[3, 4]]
    assert ds.where(m > 2, m, ds.zeros(2, 2)).tolist() == [[0, 0], [3, 4]]
    assert ds.where(m > 2, m, 0.0).tolist() == [[0, 0], [3, 4]]
    assert m.tril().tolist() == [[1, 0], [3, 4]] and m.triu(1).tolist() == [[0, 2], [0, 0]]
    assert ds.einsum("ij,jk->ik", m, m).tolist() == [[7, 10], [15, 22]]
    assert close(m.log_softmax(1).exp().sum(1).tolist(), [1, 1])


def test_item_tolist_numpy_roundtrip():
    x = ds.tensor([[1.5, 2.5]])
    assert isinstance(x[0, 0].item(), float) and isinstance(ds.tensor(3).item(), int)
    assert isinstance(ds.tensor(True).item(), bool)
    a = x.numpy()
    assert a.dtype == np.float32 and a.shape == (1, 2)
    for arr in [np.arange(6, dtype=np.int64).reshape(2, 3), np.ones((2, 2), dtype=np.float64),
                np.array([True, False]), np.arange(4, dtype=np.int32),
                np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]]:
        t = ds.from_numpy(arr)
        assert t.numpy().tolist() == arr.tolist() and t.numpy().dtype == arr.dtype
    assert np.asarray(x).tolist() == [[1.5, 2.5]]
    assert ds.tensor(np.array([1.0, 2.0])).dtype == ds.float64
    assert float(ds.tensor(2.5)) == 2.5 and int(ds.tensor(7)) == 7
    assert [1, 2, 3][ds.tensor(1)] == 2
    with pytest.raises(RuntimeError):
        ds.ones(2, requires_grad=True).numpy()


def test_dlpack_roundtrip_and_numpy():
    x = ds.arange(12).reshape(3, 4).float()
    y = ds.from_dlpack(x)
    assert y.tolist() == x.tolist() and y.dtype == ds.float32
    n = np.from_dlpack(x)
    assert n.tolist() == x.tolist()
    z = ds.from_dlpack(np.arange(6, dtype=np.int64).reshape(2, 3)[:, ::2])
    assert z.tolist() == [[0, 2], [3, 5]]
    assert x.__dlpack_device__() == (1, 0)


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    x = ds.arange(6).reshape(2, 3).double()
    t = torch.from_dlpack(x)
    assert t.tolist() == x.tolist() and t.dtype == torch.float64
    back = ds.from_dlpack(torch.arange(4, dtype=torch.int32).reshape(2, 2).t())
    assert back.tolist() == [[0, 2], [1, 3]] and back.dtype == ds.int32
    # no copies: writes through one side are seen by the other
    t[0, 0] = 7.0
    assert x[0, 0].item() == 7.0
    src = torch.zeros(3)
    mine = ds.from_dlpack(src)
    mine.add_(2.0)
    assert src.tolist() == [2.0, 2.0, 2.0]


def test_numpy_shares_memory_both_ways():
    import gc
    import weakref

    x = ds.zeros(2, 3)
    a = x.numpy()
    a[0, 1] = 5.0                      # numpy writes are seen by the tensor
    assert x[0, 1].item() == 5.0
    x.add_(1.0)                        # in-place tensor ops are seen by the array
    assert a.tolist() == [[1, 6, 1], [1, 1, 1]]
    xt = x.t()                         # views export their strides
    assert xt.numpy().strides == (4, 12) and xt.numpy()[1, 0] == 6.0
    del x, xt
    gc.collect()
    assert a.sum() == 11.0             # the array keeps the storage alive

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = ds.from_numpy(arr)
    arr[1, 2] = -1.0
    assert t[1, 2].item() == -1.0
    t.mul_(2.0)
    assert arr.tolist() == [[0, 2, 4], [6, 8, -2]]
    assert np.shares_memory(t.numpy(), arr)
    strided = np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2]
    s = ds.from_numpy(strided)
    strided[2, 1] = 100
    assert s.tolist() == [[0, 2], [4, 6], [8, 100]]
    # the tensor keeps the array alive
    base = np.ones(4)
    ref = weakref.ref(base)
    u = ds.from_numpy(base)
    del base
    gc.collect()
    assert ref() is not None and u.sum().item() == 4.0
    del u
    gc.collect()
    assert ref() is None

    # read-only, negative strides and int16 are copied; ds.tensor always copies
    ro = np.ones(3, dtype=np.float32)
    ro.flags.writeable = False
    assert ds.from_numpy(ro).tolist() == [1, 1, 1]
    assert ds.from_numpy(np.arange(3.0)[::-1]).tolist() == [2, 1, 0]
    assert ds.from_numpy(np.arange(3, dtype=np.int16)).dtype == ds.int32
    c = np.zeros(2, dtype=np.float32)
    ds.tensor(c).add_(1.0)
    assert c.tolist() == [0, 0]
    # as_tensor shares when it can, converts when asked
    assert np.shares_memory(ds.as_tensor(c).numpy(), c)
    assert ds.as_tensor(c, dtype=ds.float64).dtype == ds.float64
    assert ds.as_tensor([1, 2]).tolist() == [1, 2]
    y = ds.ones(2)
    assert ds.as_tensor(y) is y
    # numpy(force=True) copies, also for a tensor that requires grad
    w = ds.ones(2, requires_grad=True)
    f = w.numpy(force=True)
    f[0] = 3.0
    assert w.tolist() == [1, 1]


def test_dlpack_shares_memory():
    x = ds.zeros(2, 2)
    n = np.from_dlpack(x)
    n[1, 1] = 4.0
    assert x[1, 1].item() == 4.0
    arr = np.arange(4, dtype=np.float64)
    y = ds.from_dlpack(arr)
    arr[0] = 9.0
    assert y[0].item() == 9.0
    y.add_(1.0)
    assert arr.tolist() == [10, 2, 3, 4]


def test_pickle_and_deepcopy():
    import copy
    import pickle

    x = ds.tensor([[1.0, 2.0]], requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert y.tolist() == x.tolist() and y.requires_grad
    z = copy.deepcopy(ds.tensor([1, 2]))
    assert z.tolist() == [1, 2] and z.dtype == ds.int64


def test_hash_and_identity():
    a, b = ds.zeros(1), ds.zeros(1)
    assert len({a, b}) == 2 and {a: 1}[a] == 1


def test_math_isfinite_helpers():
    x = ds.tensor([1.0, math.inf, math.nan])
    assert ds.isfinite(x).tolist() == [True, False, False]
    assert ds.isnan(x).tolist() == [False, False, True]
    assert ds.nan_to_num(x).tolist()[0] == 1.0


def test_setitem_with_integer_indices():
    x = ds.zeros(3, 4)
    x[ds.tensor([0, 2])] = 1.0
    assert x.tolist() == [[1] * 4, [0] * 4, [1] * 4]
    x[[1, 1], [0, 3]] = ds.tensor([5.0, 6.0])
    assert x[1].tolist() == [5, 0, 0, 6]
    x[:, ds.tensor([1, -1])] = -2.0
    assert x.tolist() == [[1, -2, 1, -2], [5, -2, 0, -2], [1, -2, 1, -2]]
    y = ds.zeros(4, dtype=ds.int64)
    y[ds.tensor([3, 3, 0])] = ds.tensor([7, 8, 9])
    assert y.tolist() == [9, 0, 0, 8]  # the last value wins for a repeated index
    b = ds.zeros(3, dtype=ds.bool)
    b[[2]] = True
    assert b.tolist() == [False, False, True]
    z = ds.arange(24).reshape(2, 3, 4)
    n = np.arange(24).reshape(2, 3, 4)
    z[ds.tensor([1]), :, ds.tensor([0])] = 100
    n[[1], :, [0]] = 100
    assert z.tolist() == n.tolist()


def test_sort_topk_multinomial():
    x = ds.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], requires_grad=True)
    v, i = x.sort(dim=1)
    assert v.tolist() == [[1, 2, 3], [0, 4, 5]] and i.tolist() == [[1, 2, 0], [0, 2, 1]]
    t = ds.topk(x, 2)
    assert t.values.tolist() == [[3, 2], [5, 4]] and t.indices.tolist() == [[0, 2], [1, 2]]
    t.values.sum().backward()
    assert x.grad.tolist() == [[1, 0, 1], [0, 1, 1]]
    assert x.argsort(descending=True)[0].tolist() == [0, 2, 1]
    ds.manual_seed(0)
    p = ds.tensor([0.0, 0.2, 0.8])
    s = ds.multinomial(p, 1000, replacement=True)
    counts = [(s == k).sum().item() for k in range(3)]
    assert counts[0] == 0 and 100 < counts[1] < 320 and counts[2] > 650
    ds.manual_seed(1)
    a = ds.multinomial(p, 2).tolist()
    ds.manual_seed(1)
    assert ds.multinomial(p, 2).tolist() == a and sorted(a) == [1, 2]


def test_tensor_constructor_forms():
    t = ds.Tensor(2, 3)
    assert t.shape == (2, 3) and t.dtype == ds.float32
    assert ds.Tensor([1, 2]).dtype == ds.float32 and ds.Tensor([1, 2]).tolist() == [1.0, 2.0]
    assert ds.Tensor().shape == (0,)
    src = ds.ones(2)
    shared = ds.Tensor(src)
    shared.add_(1)
    assert src.tolist() == [2.0, 2.0]
    assert ds.LongTensor([1, 2]).dtype == ds.int64 and ds.FloatTensor(3).shape == (3,)
    p = ds.nn.Parameter(ds.Tensor(4, 5))
    ds.nn.init.kaiming_uniform_(p)
    assert p.requires_grad and p.abs().sum().item() > 0


def test_star_import_keeps_builtins():
    ns = {}
    exec("from deepseek import *\nr = (float('1.5'), int('2'), bool(0), tensor([1]).tolist())", ns)
    assert ns["r"] == (1.5, 2, False, [1])


def test_tensor_from_numpy_scalars_like_torch():
    """numpy scalars (what indexing a numpy array gives) become 0-d tensors of their dtype,
    as in PyTorch (they used to raise a TypeError naming their own, supported, dtype)."""
    torch = pytest.importorskip("torch")
    arr = np.arange(4, dtype=np.float32) / 3
    for v in (np.float64(0.5), np.float32(1.5), arr[1], np.int64(3), np.int32(-2),
              np.bool_(True), np.float16(0.25), np.uint8(7)):
        d, t = ds.tensor(v), torch.tensor(v)
        assert d.shape == () and str(d.dtype) == str(t.dtype).replace("torch.", "deepseek."), v
        assert d.item() == t.item()
