"""deepseek.distributed.checkpoint on 2 ranks (mpirun -np 2 python py_sharded_ckpt.py OUT):

* a tensor-parallel model (split LSTM, ColumnParallelLinear, RowParallelLinear) with AdamW,
  and a replicated MLP with ZeroRedundancyOptimizer(AdamW): train 3 steps, save, train 3
  more == load into a differently initialised copy, train the same 3 (losses and parameters
  bitwise);
* rank 0 writes OUT/tp_expected.safetensors (the full tensors at the save, gathered with
  collectives) and OUT/tp_full.safetensors (consolidate()), which must be bitwise equal.
The pytest side (test_distributed.py) loads OUT/tp_full.safetensors into PyTorch modules.

With ``resize`` as the second argument (mpirun -np 3) it checks that the 2-rank checkpoint
is refused with an error telling to consolidate first."""
import os
import sys

import deepseek as torch
import deepseek.distributed as dist
import deepseek.nn as nn
import deepseek.nn.functional as F
from deepseek.distributed import ColumnParallelLinear, RowParallelLinear, TensorParallel
from deepseek.distributed import checkpoint as dcp
from deepseek.distributed.optim import ZeroRedundancyOptimizer

out_dir = sys.argv[1]
dist.init_process_group("mpi")
rank, n = dist.get_rank(), dist.get_world_size()


class Net(nn.Module):
    def __init__(self, tp):
        super().__init__()
        self.tp = tp
        self.lstm = tp.split(nn.LSTM(6, 8))
        self.fc1 = ColumnParallelLinear(8, 12, gather_output=False)
        self.fc2 = RowParallelLinear(12, 3, input_is_parallel=True)

    def forward(self, x):
        out, _ = self.tp.all_reduce(self.lstm(x))
        return self.fc2(torch.tanh(self.fc1(out[-1])))


def batch(step, rows=4):
    torch.manual_seed(1000 + step)
    return torch.randn(5, rows, 6), torch.randn(rows, 3)


if len(sys.argv) > 2 and sys.argv[2] == "resize":
    try:  # any model: the world size is checked first
        dcp.load(os.path.join(out_dir, "tp"), nn.Linear(6, 3))
        raise AssertionError("a 2-rank checkpoint loaded on 3 ranks")
    except ValueError as e:
        assert "saved by 2 ranks and this job has 3" in str(e) and "consolidate" in str(e), e
    print(f"rank {rank}: resize refused ok", flush=True)
    dist.destroy_process_group()
    sys.exit(0)

tp = TensorParallel(world_size=2)


def make(seed):
    torch.manual_seed(seed)
    m = Net(tp)
    return m, torch.optim.AdamW(m.parameters(), lr=0.02, weight_decay=0.05)


def train(m, opt, step):
    x, y = batch(step)
    opt.zero_grad()
    loss = F.mse_loss(m(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def gathered(t, dim, blocks=1):
    parts = [torch.zeros_like(t) for _ in range(n)]
    dist.all_gather(parts, t.detach().contiguous())
    if blocks == 1:
        return torch.cat(parts, dim)
    per = [p.chunk(blocks, dim) for p in parts]
    return torch.cat([per[r][k] for k in range(blocks) for r in range(n)], dim)


a, oa = make(0)
for s in range(3):
    train(a, oa, s)
ckpt = os.path.join(out_dir, "tp")
dcp.save(ckpt, a, oa, metadata={"step": 3, "note": "tp"})
assert os.path.exists(os.path.join(ckpt, "index.json"))
assert sorted(f for f in os.listdir(ckpt) if f.startswith("rank-")) == \
    [dcp.rank_file_name(r, 2) for r in range(2)]
expected = {}
for name, p in a.lstm.named_parameters():
    expected[f"lstm.{name}"] = gathered(p, 0, 4)
expected["fc1.weight"] = gathered(a.fc1.weight, 0)
expected["fc1.bias"] = gathered(a.fc1.bias, 0)
expected["fc2.weight"] = gathered(a.fc2.weight, 1)
expected["fc2.bias"] = a.fc2.bias.detach().clone()
losses = [train(a, oa, s) for s in range(3, 6)]
b, ob = make(7)
meta = dcp.load(ckpt, b, ob)
assert meta == {"step": 3, "note": "tp"}, meta
for s in range(3, 6):
    l = train(b, ob, s)
    assert l == losses[s - 3], f"resumed loss at step {s}: {l} vs {losses[s - 3]}"
for (name, p), q in zip(a.named_parameters(), b.parameters()):
    assert torch.equal(p.detach(), q.detach()), f"resumed {name} differs"

# ZeRO-1 over a replicated MLP, each rank on its share of the batch.
def zmake(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3))
    return m, ZeroRedundancyOptimizer(m.parameters(), optimizer_class=torch.optim.AdamW,
                                      lr=0.02, weight_decay=0.05)


def ztrain(m, opt, step):
    x, y = batch(step, 2 * n)
    x = x[-1]
    opt.zero_grad()
    loss = F.mse_loss(m(x[2 * rank:2 * rank + 2]), y[2 * rank:2 * rank + 2])
    loss.backward()
    opt.step()
    return loss.item()


za, zoa = zmake(0)
for s in range(3):
    ztrain(za, zoa, s)
zdir = os.path.join(out_dir, "zero")
dcp.save(zdir, za, zoa, metadata={"step": 3})
zlosses = [ztrain(za, zoa, s) for s in range(3, 6)]
zb, zob = zmake(5)
dcp.load(zdir, zb, zob)
for s in range(3, 6):
    assert ztrain(zb, zob, s) == zlosses[s - 3], f"resumed ZeRO loss at step {s}"
for (name, p), q in zip(za.named_parameters(), zb.parameters()):
    assert torch.equal(p.detach(), q.detach()), f"resumed ZeRO {name} differs"
try:  # ZeRO state into a plain optimizer: refused on every rank
    dcp.load(zdir, zb, torch.optim.AdamW(zb.parameters()))
    raise AssertionError("ZeRO state loaded into AdamW")
except ValueError as e:
    assert "ZeroRedundancyOptimizer" in str(e), e

if rank == 0:
    torch.save(expected, os.path.join(out_dir, "tp_expected.safetensors"))
    info = dcp.consolidate(ckpt, os.path.join(out_dir, "tp_full.safetensors"))
    assert info["world_size"] == 2 and info["model_tensors"] == len(expected), info
    full = torch.load(os.path.join(out_dir, "tp_full.safetensors"))
    assert sorted(full) == sorted(expected), sorted(full)
    for k, v in expected.items():
        assert torch.equal(full[k], v), f"consolidated {k} differs from the gathered one"
    zinfo = dcp.consolidate(zdir, os.path.join(out_dir, "zero_full.safetensors"))
    zopt = torch.load(zinfo["optimizer_path"])
    assert zopt["state.0.weight.step"].item() == 3.0
    assert list(zopt["state.2.bias.exp_avg"].shape) == [3]

# The Megatron layers (heads split, vocabulary split): consolidated == the unsplit layers'
# state dict (rank 0's weights), under nn.MultiheadAttention's / nn.Embedding's names.
from deepseek.distributed import ParallelMultiheadAttention, VocabParallelEmbedding  # noqa: E402


class Megatron(nn.Module):
    def __init__(self, full_emb, full_mha):
        super().__init__()
        self.emb = VocabParallelEmbedding.from_embedding(full_emb)
        self.attn = ParallelMultiheadAttention.from_mha(full_mha)


torch.manual_seed(11)
full_emb, full_mha = nn.Embedding(10, 8), nn.MultiheadAttention(8, 4)
mdir = os.path.join(out_dir, "megatron")
dcp.save(mdir, Megatron(full_emb, full_mha))
if rank == 0:
    info = dcp.consolidate(mdir, os.path.join(out_dir, "megatron_full.safetensors"))
    got = torch.load(info["model_path"])
    want = {f"emb.{k}": v for k, v in full_emb.state_dict().items()}
    want.update({f"attn.{k}": v for k, v in full_mha.state_dict().items()})
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for k, v in want.items():
        assert torch.equal(got[k], v), f"consolidated {k} differs from the unsplit layer's"
dist.barrier()
print(f"rank {rank}: sharded ckpt ok", flush=True)
dist.destroy_process_group()
