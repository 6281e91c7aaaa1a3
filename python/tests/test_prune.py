"""deepseek.nn.utils.prune against torch.nn.utils.prune: the same masks for the same amounts
(deterministic criteria), PyTorch's names and hooks, and a compressed save that shrinks."""

import os

import numpy as np
import pytest

import deepseek
from deepseek import nn
from deepseek.nn.utils import prune

torch = pytest.importorskip("torch")
import torch.nn.utils.prune as tprune  # noqa: E402


def _pair(tmod, dmod):
    with deepseek.no_grad():
        for n, p in dmod.named_parameters():
            p.copy_(deepseek.from_numpy(dict(tmod.named_parameters())[n].detach().numpy().copy()))
    return tmod, dmod


def _lin(a, b, seed=0):
    torch.manual_seed(seed)
    return _pair(torch.nn.Linear(a, b), nn.Linear(a, b))


def _conv(seed=0):
    torch.manual_seed(seed)
    return _pair(torch.nn.Conv2d(3, 8, 3), nn.Conv2d(3, 8, 3))


def _mask(m, name="weight"):
    return getattr(m, name + "_mask").detach().numpy()


@pytest.mark.parametrize("amount", [0.3, 0.5, 17, 0])
def test_l1_unstructured(amount):
    tl, dl = _lin(20, 30)
    tprune.l1_unstructured(tl, "weight", amount)
    prune.l1_unstructured(dl, "weight", amount)
    np.testing.assert_array_equal(_mask(dl), _mask(tl))
    assert sorted(n for n, _ in dl.named_parameters()) == ["bias", "weight_orig"]
    assert [n for n, _ in dl.named_buffers()] == ["weight_mask"]
    assert sorted(dl.state_dict()) == sorted(tl.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 20)).astype(np.float32)
    np.testing.assert_allclose(dl(deepseek.from_numpy(x)).detach().numpy(),
                               tl(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert prune.is_pruned(dl)


@pytest.mark.parametrize("n,dim", [(2, 0), (1, 1), (float("inf"), 0), (2, -1)])
def test_ln_structured(n, dim):
    tl, dl = _lin(24, 16)
    tprune.ln_structured(tl, "weight", amount=0.5, n=n, dim=dim)
    prune.ln_structured(dl, "weight", amount=0.5, n=n, dim=dim)
    np.testing.assert_array_equal(_mask(dl), _mask(tl))


def test_conv_structured_and_iterative():
    tc, dc = _conv()
    for mod, p in ((tc, tprune), (dc, prune)):
        p.ln_structured(mod, "weight", amount=0.25, n=2, dim=0)
        p.l1_unstructured(mod, "weight", amount=0.3)
        p.ln_structured(mod, "weight", amount=2, n=1, dim=1)
        p.l1_unstructured(mod, "bias", amount=3)
    np.testing.assert_array_equal(_mask(dc), _mask(tc))
    np.testing.assert_array_equal(_mask(dc, "bias"), _mask(tc, "bias"))
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(dc(deepseek.from_numpy(x)).detach().numpy(),
                               tc(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_global_unstructured():
    t1, d1 = _lin(10, 20, seed=1)
    t2, d2 = _lin(20, 5, seed=2)
    tprune.l1_unstructured(t1, "weight", 0.2)
    prune.l1_unstructured(d1, "weight", 0.2)
    tprune.global_unstructured([(t1, "weight"), (t2, "weight"), (t2, "bias")],
                               pruning_method=tprune.L1Unstructured, amount=0.4)
    prune.global_unstructured([(d1, "weight"), (d2, "weight"), (d2, "bias")],
                              pruning_method=prune.L1Unstructured, amount=0.4)
    for t, d, name in ((t1, d1, "weight"), (t2, d2, "weight"), (t2, d2, "bias")):
        np.testing.assert_array_equal(_mask(d, name), _mask(t, name))


def test_random_and_remove():
    deepseek.manual_seed(0)
    _, dl = _lin(10, 10)
    prune.random_unstructured(dl, "weight", amount=0.3)
    assert int((_mask(dl) == 0).sum()) == 30
    prune.random_structured(dl, "weight", amount=2, dim=0)
    rows = (_mask(dl).sum(axis=1) == 0).sum()
    assert rows >= 2
    pruned = dl.weight.detach().numpy().copy()
    prune.remove(dl, "weight")
    assert isinstance(dl.weight, nn.Parameter)
    np.testing.assert_array_equal(dl.weight.detach().numpy(), pruned)
    assert "weight_orig" not in dict(dl.named_parameters())
    assert not prune.is_pruned(dl)
    with pytest.raises(ValueError, match="has to be pruned"):
        prune.remove(dl, "weight")


def test_bad_input():
    _, dl = _lin(4, 4)
    with pytest.raises(ValueError):
        prune.l1_unstructured(dl, "weight", 1.5)
    with pytest.raises(ValueError):
        prune.l1_unstructured(dl, "weight", 17)
    with pytest.raises(TypeError):
        prune.l1_unstructured(dl, "weight", "half")
    with pytest.raises(ValueError, match="multidimensional"):
        prune.ln_structured(dl, "bias", 0.5, n=2, dim=0)
    assert not prune.is_pruned(dl)  # failed attempts roll back
    assert "weight" in dict(dl.named_parameters())
    with deepseek.no_grad():
        dl.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        prune.l1_unstructured(dl, "weight", 0.5)
    with pytest.raises(AttributeError):
        prune.l1_unstructured(dl, "nothing", 0.5)


def test_compressed_save_shrinks(tmp_path):
    deepseek.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 64))
    dense = tmp_path / "dense.safetensors"
    deepseek._C.save_file(model.state_dict(), str(dense))
    for m in (model[0], model[2]):
        prune.l1_unstructured(m, "weight", amount=0.6)
    x = deepseek.randn(3, 256)
    want = model(x).detach().numpy()
    path = tmp_path / "pruned.safetensors"
    prune.save_pruned(model, path)
    ratio = os.path.getsize(path) / os.path.getsize(dense)
    assert ratio < 0.5, ratio  # 40% of the weights + 1 bit each
    fresh = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 64))
    fresh.load_state_dict(prune.load_pruned(path))
    np.testing.assert_allclose(fresh(x).detach().numpy(), want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="save_pruned"):
        prune.load_pruned(dense)
