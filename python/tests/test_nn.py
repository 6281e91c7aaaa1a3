"""deepseek.nn: Module protocol, layers, losses, init, state dicts, save/load, GC."""

import gc
import math
import weakref

import numpy as np
import pytest

import deepseek as ds
import deepseek.nn as nn
import deepseek.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 3)
        self.register_buffer("steps", ds.zeros(1))
        self.scale = nn.Parameter(ds.ones(1))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_registration_and_traversal():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert len(list(m.parameters())) == 5
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "ReLU", "Linear"]
    assert list(dict(m.named_buffers())) == ["steps"]
    sd = m.state_dict()
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert not sd["fc1.weight"].requires_grad
    assert m.fc1.weight.shape == (8, 4) and isinstance(m.fc1.weight, nn.Parameter)
    with pytest.raises(AttributeError):
        m.nope
    with pytest.raises(TypeError):
        m.scale = ds.ones(1)  # a plain tensor where a Parameter is registered
    del m.act
    assert "act" not in dict(m.named_children())


def test_forward_hooks_train_eval_apply_zero_grad():
    m = Net()
    seen = []
    h = m.register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    y = m(ds.randn(2, 4))
    assert y.shape == (2, 3) and seen == [(2, 3)]
    h.remove()
    m(ds.randn(1, 4))
    assert len(seen) == 1
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    assert m(ds.randn(1, 4)).shape == (1, 3)
    m.eval()
    assert not m.training and not m.fc1.training
    m.train()
    assert m.fc2.training
    visited = []
    m.apply(lambda mod: visited.append(type(mod).__name__))
    assert visited[-1] == "Net" and "Linear" in visited
    m(ds.randn(2, 4)).sum().backward()
    assert m.fc1.weight.grad is not None
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert "Linear(in_features=4, out_features=8, bias=True)" in repr(m)


def test_load_state_dict_strict_and_shapes(tmp_path):
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x = ds.randn(3, 4)
    assert np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    sd = a.state_dict()
    sd.pop("fc2.bias")
    with pytest.raises(RuntimeError, match="Missing key"):
        b.load_state_dict(sd)
    r = b.load_state_dict(sd, strict=False)
    assert r.missing_keys == ["fc2.bias"]
    sd2 = dict(a.state_dict())
    sd2["extra"] = ds.zeros(1)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        b.load_state_dict(sd2)
    sd3 = dict(a.state_dict())
    sd3["fc1.weight"] = ds.zeros(2, 2)
    with pytest.raises(RuntimeError, match="size mismatch"):
        b.load_state_dict(sd3)
    # save/load: safetensors for .safetensors paths, PyTorch's zip format otherwise
    p = tmp_path / "m.safetensors"
    ds.save(a.state_dict(), p)
    assert p.read_bytes()[8:9] == b"{"
    c = Net()
    c.load_state_dict(ds.load(p))
    assert np.allclose(a(x).detach().numpy(), c(x).detach().numpy())
    q = tmp_path / "ckpt.pt"
    ds.save({"model": a.state_dict(), "epoch": 3}, q)
    ck = ds.load(q)
    assert ck["epoch"] == 3 and ck["model"]["fc1.weight"].tolist() == a.fc1.weight.tolist()


def test_state_dict_interop_with_torch(tmp_path):
    torch = pytest.importorskip("torch")
    lstm = nn.LSTM(5, 7, num_layers=2, batch_first=True)
    tl = torch.nn.LSTM(5, 7, num_layers=2, batch_first=True)
    assert [n for n, _ in lstm.named_parameters()] == [n for n, _ in tl.named_parameters()]
    tl.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in lstm.state_dict().items()})
    x = ds.randn(3, 4, 5)
    out, (h, c) = lstm(x)
    tout, (th, tc) = tl(torch.from_numpy(x.numpy()))
    assert np.allclose(out.detach().numpy(), tout.detach().numpy(), atol=1e-5)
    assert np.allclose(c.detach().numpy(), tc.detach().numpy(), atol=1e-5)


def test_reference_cycles_are_collected():
    class A(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

    a, b = A(), A()
    a.peer = b
    b.peer = a  # a cycle through registered sub-modules
    a.self_ref = a
    refs = [weakref.ref(a), weakref.ref(b), weakref.ref(a.lin.weight)]
    assert len(list(a.modules())) == 4  # the memo stops the cycle
    del a, b
    gc.collect()
    assert all(r() is None for r in refs)


def test_layers_shapes_and_defaults():
    ds.manual_seed(0)
    x = ds.randn(2, 3, 8, 8)
    assert nn.Conv2d(3, 4, 3, padding=1)(x).shape == (2, 4, 8, 8)
    assert nn.Conv2d(3, 4, 3, stride=2, padding="valid")(x).shape == (2, 4, 3, 3)
    assert nn.Conv2d(3, 4, 3, padding="same")(x).shape == (2, 4, 8, 8)
    assert nn.Conv1d(3, 5, 3)(ds.randn(2, 3, 10)).shape == (2, 5, 8)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(2, stride=1)(x).shape == (2, 3, 7, 7)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    assert nn.Flatten()(x).shape == (2, 192)
    assert nn.LayerNorm(8)(x).shape == x.shape and nn.RMSNorm([8])(x).shape == x.shape
    assert nn.Dropout(0.5).eval()(x).tolist() == x.tolist()
    d = nn.Dropout(0.5)(ds.ones(1000))
    assert 300 < (d == 0).sum().item() < 700 and set(d.tolist()) <= {0.0, 2.0}
    seq = nn.Sequential(nn.Linear(4, 5), nn.GELU(), nn.Linear(5, 2), nn.Softmax(dim=-1))
    y = seq(ds.randn(3, 4))
    assert y.shape == (3, 2) and np.allclose(y.sum(-1).tolist(), 1, atol=1e-5)
    assert isinstance(seq[0], nn.Linear) and len(seq) == 4
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(list(ml.parameters())) == 6 and len(ml) == 3
    for act in [nn.Tanh(), nn.Sigmoid(), nn.SiLU(), nn.LeakyReLU(0.2), nn.ELU(), nn.Softplus()]:
        assert act(ds.randn(4)).shape == (4,)
    lin = nn.Linear(100, 10)
    bound = 1 / math.sqrt(100)
    assert lin.weight.abs().max().item() <= bound and lin.bias.abs().max().item() <= bound
    e = nn.Embedding(10, 3, padding_idx=0)
    assert e.weight[0].tolist() == [0, 0, 0]
    out = e(ds.tensor([[0, 1], [2, 3]]))
    assert out.shape == (2, 2, 3)
    out.sum().backward()
    assert e.weight.grad[0].tolist() == [0, 0, 0]


def test_batchnorm_running_stats():
    bn = nn.BatchNorm1d(3)
    x = ds.randn(16, 3) * 2 + 5
    y = bn(x)
    assert np.allclose(y.mean(0).tolist(), 0, atol=1e-4)
    assert bn.num_batches_tracked.item() == 1
    assert np.allclose(bn.running_mean.tolist(), (0.1 * x.mean(0)).tolist(), atol=1e-5)
    bn.eval()
    y2 = bn(x)
    assert not np.allclose(y2.tolist(), y.tolist())
    bn2 = nn.BatchNorm2d(4)
    assert bn2(ds.randn(2, 4, 3, 3)).shape == (2, 4, 3, 3)
    assert "running_var" in bn2.state_dict()
    with pytest.raises(ValueError):
        bn2(ds.randn(2, 4))


def test_lstm_gru_options():
    ds.manual_seed(1)
    lstm = nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True, dropout=0.0)
    x = ds.randn(3, 5, 4)
    out, (h, c) = lstm(x)
    assert out.shape == (3, 5, 12) and h.shape == (4, 3, 6) and c.shape == (4, 3, 6)
    out2, _ = lstm(x, (h, c))
    assert out2.shape == out.shape
    out.sum().backward()
    assert lstm.weight_ih_l0_reverse.grad is not None
    names = [n for n, _ in lstm.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_hh_l1_reverse" in names
    gru = nn.GRU(4, 6, num_layers=1)
    o, hn = gru(ds.randn(5, 3, 4))
    assert o.shape == (5, 3, 6) and hn.shape == (1, 3, 6)
    o1, (h1, c1) = nn.LSTM(4, 6)(ds.randn(5, 4))  # unbatched
    assert o1.shape == (5, 6) and h1.shape == (1, 6)
    with pytest.raises(ValueError):
        lstm(ds.randn(3, 5, 7))
    with pytest.raises(TypeError, match="LSTM"):
        lstm(ds.randint(0, 3, (3, 5, 4)))


def test_mha_and_transformer():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = ds.randn(2, 5, 8)
    out, w = mha(x, x, x)
    assert out.shape == (2, 5, 8) and w.shape == (2, 5, 5)
    enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    assert enc(x).shape == (2, 5, 8)
    assert enc(x, is_causal=True).shape == (2, 5, 8)
    names = [n for n, _ in enc.named_parameters()]
    assert "self_attn.in_proj_weight" in names and "self_attn.out_proj.weight" in names
    assert "linear1.weight" in names and "norm2.bias" in names


def test_losses_match_functional():
    logits = ds.randn(4, 5, requires_grad=True)
    t = ds.tensor([0, 1, 4, 2])
    assert nn.CrossEntropyLoss()(logits, t).item() == pytest.approx(F.cross_entropy(logits, t).item())
    assert nn.CrossEntropyLoss(reduction="sum")(logits, t).item() == pytest.approx(
        F.cross_entropy(logits, t, reduction="sum").item())
    assert nn.NLLLoss()(logits.log_softmax(1), t).item() == pytest.approx(
        F.cross_entropy(logits, t).item(), rel=1e-5)
    a, b = ds.randn(3, 2), ds.randn(3, 2)
    assert nn.MSELoss()(a, b).item() == pytest.approx(((a - b) ** 2).mean().item(), rel=1e-5)
    assert nn.L1Loss()(a, b).item() == pytest.approx((a - b).abs().mean().item(), rel=1e-5)
    assert nn.BCEWithLogitsLoss()(a, (b > 0).float()).item() > 0
    assert nn.SmoothL1Loss()(a, b).item() >= 0 and nn.HuberLoss()(a, b).item() >= 0


def test_functional_extras():
    x = ds.randn(3, 4)
    assert np.allclose(F.normalize(x, dim=1).norm(dim=1).tolist(), 1, atol=1e-5)
    assert F.one_hot(ds.tensor([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert F.pad(x, (1, 1)).shape == (3, 6)
    assert F.cosine_similarity(x, x).shape == (3,)
    assert F.relu6(ds.tensor([-1.0, 7.0])).tolist() == [0, 6]


def test_module_to_and_cuda_errors():
    m = Net()
    w = m.fc1.weight
    m.to(ds.float64)
    assert m.fc1.weight.dtype == ds.float64 and m.steps.dtype == ds.float64
    assert m.fc1.weight is w and w.requires_grad and w.is_leaf
    assert m(ds.randn(2, 4, dtype=ds.float64)).dtype == ds.float64
    m.float().to("cpu").cpu()
    assert m.fc1.weight.dtype == ds.float32
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        m.cuda()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        m.to("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        ds.ones(2).cuda()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        ds.ones(2).to("cuda:0")
    with pytest.raises(RuntimeError):
        ds.zeros(2, device="cuda")
    assert ds.cuda.is_available() is False and ds.cuda.device_count() == 0


def test_init_functions():
    w = ds.empty(20, 30)
    nn.init.xavier_uniform_(w)
    a = math.sqrt(6 / 50)
    assert w.abs().max().item() <= a
    nn.init.zeros_(w)
    assert w.abs().sum().item() == 0
    nn.init.kaiming_normal_(w)
    assert w.std().item() > 0
    nn.init.constant_(w, 0.5)
    assert w.mean().item() == pytest.approx(0.5)


def test_deepcopy_and_transformer_encoder():
    import copy

    m = Net()
    m2 = copy.deepcopy(m)
    assert m2.fc1.weight is not m.fc1.weight
    assert m2.fc1.weight.tolist() == m.fc1.weight.tolist()
    with ds.no_grad():
        m2.fc1.weight.fill_(0.0)
    assert m.fc1.weight.abs().sum().item() > 0
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), num_layers=2)
    assert enc(ds.randn(5, 2, 8)).shape == (5, 2, 8)
    assert len([n for n, _ in enc.named_parameters() if n.endswith("in_proj_weight")]) == 2


def test_mha_matches_torch_with_weights_and_masks():
    torch = pytest.importorskip("torch")
    ds.manual_seed(0)
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    t = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    t.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in m.state_dict().items()})
    x = ds.randn(2, 5, 8)
    tx = torch.from_numpy(x.numpy())
    kp = ds.tensor([[False, False, False, True, True], [False] * 5])
    am = ds.ones(5, 5, dtype=ds.bool).triu(1)
    o, w = m(x, x, x, key_padding_mask=kp, attn_mask=am)
    to, tw = t(tx, tx, tx, key_padding_mask=torch.from_numpy(kp.numpy()),
               attn_mask=torch.from_numpy(am.numpy()))
    assert np.allclose(o.detach().numpy(), to.detach().numpy(), atol=1e-5)
    assert np.allclose(w.detach().numpy(), tw.detach().numpy(), atol=1e-5)
    o2, w2 = m(x, x, x, need_weights=False, attn_mask=am)
    to2, _ = t(tx, tx, tx, need_weights=False, attn_mask=torch.from_numpy(am.numpy()))
    assert w2 is None and np.allclose(o2.detach().numpy(), to2.detach().numpy(), atol=1e-5)
    _, w3 = m(x, x, x, average_attn_weights=False)
    assert w3.shape == (2, 2, 5, 5)


def test_mha_weights_and_padding_without_torch():
    m = nn.MultiheadAttention(4, 2)
    x = ds.randn(3, 2, 4)
    kp = ds.tensor([[False, False, True], [False, False, False]])
    o, w = m(x, x, x, key_padding_mask=kp)
    assert o.shape == (3, 2, 4) and w.shape == (2, 3, 3)
    assert np.allclose(w.sum(-1).tolist(), 1, atol=1e-5)
    assert np.allclose(w[0, :, 2].tolist(), 0)  # the padded key gets no weight
    enc = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)
    assert enc(x, src_key_padding_mask=kp).shape == (3, 2, 4)


def test_pad_sequence():
    from deepseek.nn.utils.rnn import pad_sequence

    a, b = ds.tensor([1, 2, 3]), ds.tensor([4])
    assert pad_sequence([a, b], batch_first=True).tolist() == [[1, 2, 3], [4, 0, 0]]
    assert pad_sequence([a, b], padding_value=-1).tolist() == [[1, 4], [2, -1], [3, -1]]
    assert pad_sequence([a, b], batch_first=True, padding_side="left").tolist() == [[1, 2, 3], [0, 0, 4]]


def test_backends_flags():
    ds.backends.cudnn.benchmark = True
    assert ds.backends.cudnn.is_available() is False and ds.backends.mps.is_available() is False


def test_load_pytorch_files(tmp_path):
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(3, 2)
    torch.save(lin.state_dict(), tmp_path / "lin.pt")
    m0 = nn.Linear(3, 2)
    m0.load_state_dict(ds.load(tmp_path / "lin.pt"))  # PyTorch's zip format
    assert np.allclose(m0.weight.detach().numpy(), lin.weight.detach().numpy())
    save_file = pytest.importorskip("safetensors.torch").save_file
    save_file(lin.state_dict(), str(tmp_path / "lin.safetensors"))
    m = nn.Linear(3, 2)
    m.load_state_dict(ds.load(tmp_path / "lin.safetensors"))
    x = np.random.rand(4, 3).astype(np.float32)
    assert np.allclose(m(ds.from_numpy(x)).detach().numpy(),
                       lin(torch.from_numpy(x)).detach().numpy(), atol=1e-6)
