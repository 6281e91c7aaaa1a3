"""What PyTorch programs reach for at import time and the layers they use, checked against
real PyTorch: ``torch.nn.modules.<file>.<Class>`` paths, ``nn.parallel``, ``distributed``,
``onnx``, ``backends.cuda.matmul`` flags, pickling models that hold binding
functions, ``nn.RNN`` and the cells, channel dropout, ``finfo``/``iinfo``."""

import io
import pickle

import numpy as np
import pytest

import deepseek as ds
import deepseek.nn as nn

torch = pytest.importorskip("torch")


def _copy_params(src_torch, dst):
    sd = {k: ds.tensor(v.detach().numpy()) for k, v in src_torch.state_dict().items()}
    dst.load_state_dict(sd)


# ------------------------------------------------------------------------- module paths

def test_nn_modules_paths_are_the_same_classes():
    import deepseek.nn.modules.dropout
    from deepseek.nn.modules.rnn import LSTM, RNN, GRU
    from deepseek.nn.modules.linear import Linear, NonDynamicallyQuantizableLinear  # noqa
    from deepseek.nn.modules.activation import MultiheadAttention
    from deepseek.nn.modules.container import ModuleList, Sequential  # noqa: F401
    from deepseek.nn.modules.normalization import LayerNorm
    from deepseek.nn.modules.sparse import Embedding
    from deepseek.nn.modules.transformer import TransformerEncoderLayer
    from deepseek.nn.modules.module import Module
    from deepseek.nn.modules.loss import CrossEntropyLoss
    from deepseek.nn.modules.conv import Conv2d

    assert deepseek.nn.modules.dropout.Dropout is nn.Dropout
    assert (LSTM, RNN, GRU, Linear, MultiheadAttention, LayerNorm, Embedding) == (
        nn.LSTM, nn.RNN, nn.GRU, nn.Linear, nn.MultiheadAttention, nn.LayerNorm, nn.Embedding)
    assert (TransformerEncoderLayer, Module, CrossEntropyLoss, Conv2d) == (
        nn.TransformerEncoderLayer, nn.Module, nn.CrossEntropyLoss, nn.Conv2d)
    # every file PyTorch has exists; a class deepseek lacks says so
    for f in ("activation", "batchnorm", "container", "conv", "dropout", "flatten", "linear",
              "loss", "module", "normalization", "padding", "pooling", "rnn", "sparse",
              "transformer", "upsampling"):
        assert hasattr(ds.nn.modules, f), f
    assert ds.nn.modules.conv.Conv3d is nn.Conv3d  # implemented since (issue 15)
    with pytest.raises(AttributeError,
                       match="does not implement torch.nn.modules.batchnorm.SyncBatchNorm"):
        ds.nn.modules.batchnorm.SyncBatchNorm
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ds.nn.modules.conv.Nope


def test_parallel_distributed_onnx_backends():
    from deepseek.nn.parallel import DistributedDataParallel, DataParallel
    from deepseek.distributed import DistributedDataParallel as DDP2  # noqa: F401

    import deepseek.distributed as dist

    assert DistributedDataParallel.__module__ == "deepseek.distributed.parallel"
    assert dist.is_available() is True and dist.is_initialized() is False
    m = nn.Linear(3, 2)
    dp = DataParallel(m)
    x = ds.randn(4, 3)
    assert (dp(x) == m(x)).all().item() and list(dp.state_dict()) == ["module.weight",
                                                                     "module.bias"]
    with pytest.raises(RuntimeError, match="no CUDA"):
        DataParallel(m, device_ids=[0])
    import deepseek.onnx

    # torch.onnx's entry points exist (the exporter itself is tested in test_onnx.py)
    assert callable(deepseek.onnx.export)
    assert deepseek.onnx.is_in_onnx_export() is False
    # the flag PyTorch programs set at start-up: settable, typo refused as in torch
    assert ds.backends.cuda.matmul.allow_tf32 is torch.backends.cuda.matmul.allow_tf32 is False
    ds.backends.cuda.matmul.allow_tf32 = True
    assert ds.backends.cuda.matmul.allow_tf32 is True
    ds.backends.cuda.matmul.allow_tf32 = False
    with pytest.raises(AttributeError):
        ds.backends.cuda.matmul.allow_tf33 = True
    assert ds.serialization.safe_globals and ds.serialization.add_safe_globals


def test_binding_functions_have_real_modules_and_pickle():
    import deepseek.nn.functional as F

    for name in ("relu", "gelu", "cross_entropy", "linear", "softmax"):
        f = getattr(F, name)
        assert f.__module__ == "deepseek.nn.functional"
        assert pickle.loads(pickle.dumps(f)) is f
    for name in dir(ds._C.functional):
        f = getattr(ds._C.functional, name)
        if callable(f) and not name.startswith("_"):
            assert pickle.loads(pickle.dumps(f)) is f, name


def test_save_whole_model_with_relu_activation(tmp_path):
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="relu")
    enc = nn.TransformerEncoder(layer, 2).eval()
    p = tmp_path / "model.pt"
    ds.save(enc, p)
    with pytest.raises(pickle.UnpicklingError, match="TransformerEncoder"):
        ds.load(p)  # weights_only refuses classes
    safe = [nn.TransformerEncoder, nn.TransformerEncoderLayer, nn.MultiheadAttention,
            nn.modules.linear.NonDynamicallyQuantizableLinear, nn.Linear, nn.LayerNorm,
            nn.Dropout, nn.ModuleList, ds.nn.functional.relu]
    with ds.serialization.safe_globals(safe):
        m = ds.load(p)
    x = ds.randn(5, 3, 16)
    assert m.layers[0].activation is ds.nn.functional.relu
    np.testing.assert_allclose(m(x).detach().numpy(), enc(x).detach().numpy(), atol=1e-6)
    m2 = ds.load(p, weights_only=False)
    np.testing.assert_allclose(m2(x).detach().numpy(), enc(x).detach().numpy(), atol=1e-6)


# ------------------------------------------------------------------------------- layers

@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bidirectional,batch_first", [(False, False), (True, True)])
def test_rnn_matches_torch(nonlinearity, bidirectional, batch_first):
    torch.manual_seed(0)
    t = torch.nn.RNN(4, 5, 2, nonlinearity=nonlinearity, bidirectional=bidirectional,
                     batch_first=batch_first)
    d = nn.RNN(4, 5, 2, nonlinearity=nonlinearity, bidirectional=bidirectional,
               batch_first=batch_first)
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    _copy_params(t, d)
    x = np.random.default_rng(0).standard_normal((3, 6, 4)).astype(np.float32)
    h0 = np.random.default_rng(1).standard_normal((4 if bidirectional else 2, 3 if batch_first
                                                   else 6, 5)).astype(np.float32)
    xt, xd = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    ot, ht = t(xt, torch.tensor(h0))
    od, hd = d(xd, ds.tensor(h0))
    np.testing.assert_allclose(od.detach().numpy(), ot.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(hd.detach().numpy(), ht.detach().numpy(), atol=1e-5)
    (ot.sum() + ht.pow(2).sum()).backward()
    (od.sum() + hd.pow(2).sum()).backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), atol=1e-4)
    for (n, pt), pd in zip(t.named_parameters(), d.parameters()):
        np.testing.assert_allclose(pd.grad.numpy(), pt.grad.numpy(), atol=1e-4, err_msg=n)
    # positional nonlinearity as PyTorch takes it, unbatched input
    r = nn.RNN(4, 5, 1, "relu")
    assert r.nonlinearity == "relu" and r(ds.randn(7, 4))[0].shape == (7, 5)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(4, 5, nonlinearity="sigmoid")


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(cls):
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(3, 4)
    d = getattr(nn, cls)(3, 4)
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    _copy_params(t, d)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    h = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    xt, xd = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    hx_t = (torch.tensor(h), torch.tensor(h * 0.5)) if cls == "LSTMCell" else torch.tensor(h)
    hx_d = (ds.tensor(h), ds.tensor(h * 0.5)) if cls == "LSTMCell" else ds.tensor(h)
    yt, yd = t(xt, hx_t), d(xd, hx_d)
    if cls == "LSTMCell":
        lt, ld = yt[0].sum() + (yt[1] ** 2).sum(), yd[0].sum() + (yd[1] ** 2).sum()
        np.testing.assert_allclose(yd[1].detach().numpy(), yt[1].detach().numpy(), atol=1e-5)
        yt, yd = yt[0], yd[0]
    else:
        lt, ld = (yt ** 2).sum(), (yd ** 2).sum()
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), atol=1e-5)
    lt.backward()
    ld.backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), atol=1e-5)
    for (n, pt), pd in zip(t.named_parameters(), d.parameters()):
        np.testing.assert_allclose(pd.grad.numpy(), pt.grad.numpy(), atol=1e-5, err_msg=n)
    # no state given: zeros, unbatched input
    out = d(ds.tensor(x[0]))
    ref = t(torch.tensor(x[0]))
    if cls == "LSTMCell":
        out, ref = out[0], ref[0]
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="input_size"):
        d(ds.randn(2, 5))


@pytest.mark.parametrize("cls,shape", [("Dropout1d", (4, 8, 5)), ("Dropout2d", (4, 8, 3, 3)),
                                       ("Dropout3d", (2, 8, 2, 2, 2))])
def test_channel_dropout(cls, shape):
    ds.manual_seed(0)
    m = getattr(nn, cls)(0.5)
    y = m(ds.ones(*shape)).numpy()
    per_channel = y.reshape(shape[0], shape[1], -1)
    # whole channels are zero or scaled by 2, as in PyTorch
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()
    assert 0 < (per_channel[..., 0] == 0).mean() < 1
    m.eval()
    assert (m(ds.ones(*shape)) == 1).all().item()
    assert (getattr(nn, cls)(1.0)(ds.ones(*shape)) == 0).all().item()
    with pytest.raises(ValueError, match="between 0 and 1"):
        getattr(nn, cls)(1.5)


def test_finfo_iinfo_match_torch():
    for name in ("float16", "bfloat16", "float32", "float64"):
        a, b = ds.finfo(getattr(ds, name)), torch.finfo(getattr(torch, name))
        for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(a, attr) == getattr(b, attr), (name, attr)
    assert ds.finfo().eps == torch.finfo().eps
    for name in ("uint8", "int32", "int64"):
        a, b = ds.iinfo(getattr(ds, name)), torch.iinfo(getattr(torch, name))
        assert (a.bits, a.max, a.min) == (b.bits, b.max, b.min), name
    with pytest.raises(TypeError):
        ds.finfo(ds.int64)
    with pytest.raises(TypeError):
        ds.iinfo(ds.float32)
