"""PyTorch's zip checkpoint format both ways: files written by real ``torch.save`` load in
deepseek (state dicts, optimizer state, containers, every dtype torch writes, views and
shared storages), files written by ``deepseek.save`` load in real ``torch.load(weights_only=
True)``, a model + optimizer moves torch -> deepseek -> torch and trains on identically, and
damaged files or refused globals raise errors naming the file."""

import collections
import fractions
import pickle
import zipfile

import numpy as np
import pytest

import deepseek as ds

torch = pytest.importorskip("torch")


def _np(t):
    if isinstance(t, ds.Tensor):
        return (t.float() if t.dtype == ds.bfloat16 else t).detach().numpy()
    return (t.float() if t.dtype == torch.bfloat16 else t).detach().numpy()


def _same(a, b):
    np.testing.assert_array_equal(_np(a), _np(b))


def test_torch_file_all_dtypes_views_and_containers(tmp_path):
    torch.manual_seed(0)
    base = torch.arange(24.0).reshape(4, 6)
    obj = {
        "f32": torch.randn(3, 4), "f64": torch.randn(5, dtype=torch.float64),
        "f16": torch.randn(2, 3).half(), "bf16": torch.randn(7).bfloat16(),
        "i64": torch.arange(-3, 3), "i32": torch.arange(4, dtype=torch.int32),
        "u8": torch.arange(250, 256, dtype=torch.uint8), "bool": torch.tensor([True, False]),
        "i16": torch.tensor([-300, 7], dtype=torch.int16),
        "i8": torch.tensor([-5, 9], dtype=torch.int8),
        "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3),
        # views of one storage: transposed, offset, strided
        "base": base, "t": base.t(), "off": base[1:, 2:], "step": base[:, ::2],
        "param": torch.nn.Parameter(torch.ones(2, 2)),
        "nested": [1, 2.5, "s", None, True, (3, (4, "x")), b"raw", {"k": [torch.ones(1)]}],
        "od": collections.OrderedDict([("b", 1), ("a", 2)]),
        "size": torch.Size([2, 3]), "dtype": torch.float16, "set": {1, 2},
        "big": 2 ** 62, "neg": -(2 ** 40),
    }
    torch.save(obj, tmp_path / "t.pt")
    got = ds.load(tmp_path / "t.pt")
    assert set(got) == set(obj)
    for k in ("f32", "f64", "f16", "bf16", "i64", "i32", "u8", "bool", "scalar", "empty", "base",
              "t", "off", "step", "param"):
        assert got[k].shape == tuple(obj[k].shape), k
        assert str(got[k].dtype).split(".")[-1] == str(obj[k].dtype).split(".")[-1], k
        _same(got[k], obj[k])
    # dtypes deepseek lacks are widened as from_numpy does
    assert got["i16"].dtype == ds.int32 and got["i16"].tolist() == [-300, 7]
    assert got["i8"].dtype == ds.int32 and got["i8"].tolist() == [-5, 9]
    assert isinstance(got["param"], ds.nn.Parameter) and got["param"].requires_grad
    assert got["nested"][:7] == [1, 2.5, "s", None, True, (3, (4, "x")), b"raw"]
    assert got["nested"][7]["k"][0].tolist() == [1.0]
    assert isinstance(got["od"], collections.OrderedDict) and list(got["od"]) == ["b", "a"]
    assert isinstance(got["size"], ds.Size) and got["size"] == (2, 3)
    assert got["dtype"] is ds.float16 and got["set"] == {1, 2}
    assert got["big"] == 2 ** 62 and got["neg"] == -(2 ** 40)


def test_deepseek_file_loads_in_torch_weights_only(tmp_path):
    ds.manual_seed(0)
    x = ds.arange(12.0).reshape(3, 4)
    obj = {
        "f32": ds.randn(3, 4), "f64": ds.randn(5, dtype=ds.float64),
        "f16": ds.randn(2, 3).half(), "bf16": ds.randn(7).bfloat16(),
        "i64": ds.arange(-3, 3), "i32": ds.arange(4).int(), "u8": ds.tensor([0, 255]).byte(),
        "bool": ds.tensor([True, False]), "scalar": ds.tensor(2.5), "empty": ds.zeros(0, 3),
        "t": x.t(), "off": x[1:, 2:], "param": ds.nn.Parameter(ds.ones(2)),
        "same": [x, x],
        "containers": collections.OrderedDict(a=[1, 2.5, None, "s", (True, b"b")]),
        "size": ds.Size([4, 5]), "dtype": ds.bfloat16,
    }
    p = tmp_path / "d.pt"
    ds.save(obj, p)
    for mmap in (False, True):
        got = torch.load(p, weights_only=True, mmap=mmap)
        for k in ("f32", "f64", "f16", "bf16", "i64", "i32", "u8", "bool", "scalar", "empty", "t",
                  "off"):
            assert tuple(got[k].shape) == tuple(obj[k].shape), k
            assert str(got[k].dtype) == "torch." + str(obj[k].dtype).split(".")[-1], k
            _same(obj[k], got[k])
    assert isinstance(got["param"], torch.nn.Parameter) and got["param"].requires_grad
    assert got["same"][0] is got["same"][1]  # one object saved once
    assert got["containers"] == collections.OrderedDict(a=[1, 2.5, None, "s", (True, b"b")])
    assert got["size"] == torch.Size([4, 5]) and got["dtype"] is torch.bfloat16
    # and back
    again = ds.load(p)
    _same(again["t"], obj["t"])
    assert again["same"][0] is again["same"][1]
    # a file object works too
    import io

    buf = io.BytesIO()
    ds.save({"w": x}, buf)
    buf.seek(0)
    assert torch.load(buf)["w"].tolist() == x.tolist()
    buf.seek(0)
    assert ds.load(buf)["w"].tolist() == x.tolist()


class _TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 6)
        self.lstm = torch.nn.LSTM(6, 8)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.lstm(self.emb(x))[0])


class _DsNet(ds.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = ds.nn.Embedding(10, 6)
        self.lstm = ds.nn.LSTM(6, 8)
        self.fc = ds.nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.lstm(self.emb(x))[0])


def _torch_step(m, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(m(x).reshape(-1, 10), y.reshape(-1))
    loss.backward()
    opt.step()
    return loss.item()


def _ds_step(m, opt, x, y):
    opt.zero_grad()
    loss = ds.nn.functional.cross_entropy(m(x).reshape(-1, 10), y.reshape(-1))
    loss.backward()
    opt.step()
    return loss.item()


def test_model_and_optimizer_torch_to_deepseek_to_torch(tmp_path):
    torch.manual_seed(1)
    g = np.random.default_rng(0)
    xs = [g.integers(0, 10, size=(5, 3)) for _ in range(4)]
    ys = [g.integers(0, 10, size=(5, 3)) for _ in range(4)]
    tm = _TorchNet()
    topt = torch.optim.Adam(tm.parameters(), lr=0.01)
    _torch_step(tm, topt, torch.tensor(xs[0]), torch.tensor(ys[0]))
    torch.save({"model": tm.state_dict(), "optim": topt.state_dict(), "epoch": 1},
               tmp_path / "ck.pt")

    ck = ds.load(tmp_path / "ck.pt")
    dm = _DsNet()
    dm.load_state_dict(ck["model"])
    dopt = ds.optim.Adam(dm.parameters(), lr=0.01)
    dopt.load_state_dict(ck["optim"])
    assert ck["epoch"] == 1
    # one more step on each side: the same loss and the same parameters
    lt = _torch_step(tm, topt, torch.tensor(xs[1]), torch.tensor(ys[1]))
    ld = _ds_step(dm, dopt, ds.tensor(xs[1]), ds.tensor(ys[1]))
    assert abs(lt - ld) < 1e-5
    ds.save({"model": dm.state_dict(), "optim": dopt.state_dict(), "epoch": 2},
            tmp_path / "ck2.pt")

    back = torch.load(tmp_path / "ck2.pt", weights_only=True)
    tm2 = _TorchNet()
    tm2.load_state_dict(back["model"])
    topt2 = torch.optim.Adam(tm2.parameters(), lr=0.01)
    topt2.load_state_dict(back["optim"])
    for (n, a), b in zip(tm.state_dict().items(), tm2.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
    l1 = _torch_step(tm, topt, torch.tensor(xs[2]), torch.tensor(ys[2]))
    l2 = _torch_step(tm2, topt2, torch.tensor(xs[2]), torch.tensor(ys[2]))
    assert abs(l1 - l2) < 1e-5


def test_damaged_files_raise_naming_the_file(tmp_path):
    p = tmp_path / "good.pt"
    torch.save({"w": torch.arange(1000.0), "b": torch.ones(3)}, p)
    data = p.read_bytes()
    # truncated anywhere: a clear error naming the file
    for cut in (10, len(data) // 3, len(data) // 2, len(data) - 30):
        q = tmp_path / "cut.pt"
        q.write_bytes(data[:cut])
        with pytest.raises(pickle.UnpicklingError, match="cut.pt"):
            ds.load(q)
    # a flipped byte in the tensor data: the record's CRC-32 catches it
    with zipfile.ZipFile(p) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("data/0"))
    off = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100
    bad = bytearray(data)
    bad[off] ^= 0xFF
    q = tmp_path / "flipped.pt"
    q.write_bytes(bytes(bad))
    with pytest.raises(pickle.UnpicklingError, match="flipped.pt"):
        ds.load(q)
    # a zip that is not a checkpoint
    z = tmp_path / "other.pt"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(pickle.UnpicklingError, match="other.pt.*data.pkl"):
        ds.load(z)


def test_restricted_unpickler_refuses_globals_and_safe_globals(tmp_path):
    p = tmp_path / "frac.pt"
    torch.save({"x": fractions.Fraction(1, 3), "w": torch.ones(2)}, p)
    with pytest.raises(pickle.UnpicklingError, match=r"frac.pt.*fractions\.Fraction"):
        ds.load(p)
    with ds.serialization.safe_globals([fractions.Fraction]):
        assert ds.load(p)["x"] == fractions.Fraction(1, 3)
    with pytest.raises(pickle.UnpicklingError):
        ds.load(p)
    assert ds.load(p, weights_only=False)["x"] == fractions.Fraction(1, 3)
    ds.serialization.add_safe_globals([fractions.Fraction])
    try:
        assert fractions.Fraction in ds.serialization.get_safe_globals()
        assert ds.load(p)["x"] == fractions.Fraction(1, 3)
    finally:
        ds.serialization.clear_safe_globals()
    # a pickle that would run code is refused without running it
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"evil.pt.*os\.system"):
        ds.load(evil)
    assert not (tmp_path / "pwned").exists()


def test_big_tensor_round_trip_is_buffer_speed(tmp_path):
    import time

    x = ds.randn(4096, 4096)  # 64 MiB
    p = tmp_path / "big.pt"
    t0 = time.perf_counter()
    ds.save({"x": x}, p)
    t1 = time.perf_counter()
    y = ds.load(p)["x"]
    t2 = time.perf_counter()
    assert (y == x).all().item()
    assert torch.load(p)["x"].shape == (4096, 4096)
    # no per-element Python work: well under a second each for 64 MiB
    assert t1 - t0 < 5 and t2 - t1 < 5, (t1 - t0, t2 - t1)


def test_safetensors_by_extension(tmp_path):
    sd = {"w": ds.ones(2, 2)}
    ds.save(sd, tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").read_bytes()[8:9] == b"{"
    assert ds.load(tmp_path / "m.safetensors")["w"].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    with pytest.raises(TypeError, match="safetensors"):
        ds.save({"epoch": 1}, tmp_path / "x.safetensors")
