"""deepseek.utils.data, deepseek.trainer.Trainer and deepseek.amp (GradScaler on the CPU)."""

import math

import numpy as np
import pytest

import deepseek as ds
import deepseek.nn as nn
from deepseek.amp import GradScaler, autocast
from deepseek.optim import SGD, AdamW
from deepseek.trainer import Trainer
from deepseek.utils.data import DataLoader, Dataset, TensorDataset, random_split


def test_dataloader_batches_shuffle_drop_last():
    x = ds.arange(10).float().unsqueeze(1)
    y = ds.arange(10)
    dl = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 and [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dl = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(dl) == 2 and len(list(dl)) == 2
    ds.manual_seed(0)
    a = [b[1].tolist() for b in DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True)]
    ds.manual_seed(0)
    b = [b[1].tolist() for b in DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True)]
    assert a == b and sorted(a[0] + a[1]) == list(range(10)) and a[0] != [0, 1, 2, 3, 4]

    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return ds.tensor([float(i)]), i * i

    xs, ys = next(iter(DataLoader(Squares(), batch_size=3)))
    assert xs.shape == (3, 1) and ys.tolist() == [0, 1, 4]
    parts = random_split(Squares(), [3, 2])
    assert [len(p) for p in parts] == [3, 2]
    with pytest.raises(ValueError):
        TensorDataset(ds.zeros(3), ds.zeros(4))


def make_data(n=64, seed=0):
    ds.manual_seed(seed)
    x = ds.randn(n, 4)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def test_trainer_fits_and_accumulates(capsys):
    ds.manual_seed(0)
    x, y = make_data()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    val = DataLoader(TensorDataset(x, y), batch_size=32)
    trainer = Trainer(model=model, optimizer=AdamW(model.parameters(), lr=5e-2),
                      gradient_accumulation_steps=2)
    hist = trainer.fit(train, val, epochs=5)
    assert len(hist["train_loss"]) == 5 and len(hist["val_loss"]) == 5
    assert hist["val_loss"][-1] < hist["val_loss"][0] * 0.7
    assert trainer.global_step == 5 * 4  # 8 batches / 2 accumulation steps per epoch
    assert "epoch 5/5" in capsys.readouterr().out


def test_trainer_accumulation_equals_big_batch():
    x, y = make_data(16)

    def run(bs, k):
        ds.manual_seed(3)
        m = nn.Linear(4, 2)
        t = Trainer(model=m, optimizer=SGD(m.parameters(), lr=0.1), gradient_accumulation_steps=k)
        t.fit(DataLoader(TensorDataset(x, y), batch_size=bs), epochs=1, verbose=False)
        return m.weight.tolist()

    assert np.allclose(run(16, 1), run(4, 4), atol=1e-6)


def test_trainer_custom_loss_and_fp16_flag():
    x = ds.randn(32, 3)
    t = x.sum(1, keepdim=True)
    m = nn.Linear(3, 1)
    tr = Trainer(model=m, optimizer=SGD(m.parameters(), lr=0.05), loss_fn=nn.MSELoss(),
                 fp16_enabled=True)
    assert tr.scaler.get_scale() == 8192.0
    h = tr.fit(DataLoader(TensorDataset(x, t), batch_size=8), epochs=8, verbose=False)
    assert h["train_loss"][-1] < h["train_loss"][0] * 0.5


def test_gradscaler_scales_unscales_and_skips_nonfinite():
    p = nn.Parameter(ds.tensor([1.0, 2.0]))
    opt = SGD([p], lr=0.1)
    scaler = GradScaler()
    assert scaler.get_scale() == 2.0 ** 13
    loss = (p * p).sum()
    scaled = scaler.scale(loss)
    assert scaled.item() == pytest.approx(loss.item() * 8192)
    scaled.backward()
    assert p.grad.tolist() == [2 * 8192, 4 * 8192]
    scaler.step(opt)
    scaler.update()
    assert np.allclose(p.tolist(), [0.8, 1.6])  # unscaled gradient used
    assert scaler.get_scale() == 8192.0
    # an inf gradient: the step is skipped and the scale backs off
    opt.zero_grad()
    p.grad = ds.tensor([math.inf, 1.0])
    before = p.tolist()
    assert scaler.step(opt) is None
    scaler.update()
    assert p.tolist() == before and scaler.get_scale() == 4096.0
    # growth after growth_interval clean steps
    s2 = GradScaler(init_scale=4.0, growth_interval=2)
    for _ in range(2):
        opt.zero_grad()
        s2.scale((p * 1.0).sum()).backward()
        s2.step(opt)
        s2.update()
    assert s2.get_scale() == 8.0
    sd = s2.state_dict()
    s3 = GradScaler()
    s3.load_state_dict(sd)
    assert s3.get_scale() == 8.0 and s3.state_dict() == sd
    with pytest.raises(RuntimeError):
        s3.unscale_(opt)
        s3.unscale_(opt)


def test_autocast_is_documented_noop():
    x = ds.randn(2, 2)
    with autocast("cpu", dtype=ds.bfloat16):
        assert ds.amp.is_autocast_enabled() and ds.amp.get_autocast_dtype() == ds.bfloat16
        y = x @ x
    assert y.dtype == ds.float32 and not ds.amp.is_autocast_enabled()
    with ds.cuda.amp.autocast():
        assert (x + 1).dtype == ds.float32
    with pytest.raises(ValueError):
        autocast("tpu")


def test_samplers():
    from deepseek.utils.data import BatchSampler, RandomSampler, SequentialSampler

    data = TensorDataset(ds.arange(10))
    assert list(SequentialSampler(data)) == list(range(10))
    ds.manual_seed(0)
    r = list(RandomSampler(data))
    assert sorted(r) == list(range(10)) and r != list(range(10))
    assert len(list(RandomSampler(data, replacement=True, num_samples=25))) == 25
    bs = BatchSampler(SequentialSampler(data), 4, drop_last=False)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(bs) == 3
    dl = DataLoader(data, batch_sampler=BatchSampler(SequentialSampler(data), 3, True))
    assert [b[0].tolist() for b in dl] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    dl = DataLoader(data, batch_size=5, sampler=RandomSampler(data))
    assert sorted(sum((b[0].tolist() for b in dl), [])) == list(range(10))
