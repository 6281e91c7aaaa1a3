"""ZeroRedundancyOptimizer(AdamW) on N ranks, each on its share of the batch == plain AdamW
on the whole batch in one process (8 steps, parameters within 1e-5). Run with mpirun."""
import copy
import math

import deepseek as torch
import deepseek.distributed as dist
import deepseek.nn as nn
import deepseek.nn.functional as F
from deepseek.distributed.optim import ZeroRedundancyOptimizer

dist.init_process_group("mpi")
rank, n = dist.get_rank(), dist.get_world_size()

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 2))
reference = copy.deepcopy(model)
if rank == 1:  # ZeRO must start every rank from rank 0's parameters
    with torch.no_grad():
        model[2].weight.mul_(-3.0)
opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW,
                              lr=0.01, weight_decay=0.05)
ref_opt = torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=0.05)
total = sum(p.numel() for p in model.parameters())
assert opt.shard_numel() == math.ceil(total / n), opt
assert opt.optim.param_groups[0]["params"][0].numel() == math.ceil(total / n)
torch.manual_seed(1)
for step in range(8):
    x, y = torch.randn(3 * n, 5), torch.randn(3 * n, 2)
    ref_opt.zero_grad()
    F.mse_loss(reference(x), y).backward()
    ref_opt.step()
    opt.zero_grad()
    F.mse_loss(model(x[3 * rank:3 * rank + 3]), y[3 * rank:3 * rank + 3]).backward()
    opt.step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        d = (a - b).abs().max().item()
        assert d <= 1e-5, f"{name} after step {step}: {d}"
opt.param_groups[0]["lr"] = 0.0  # the inner optimizer's groups are the ones used
before = [p.detach().clone() for p in model.parameters()]
F.mse_loss(model(torch.randn(2, 5)), torch.randn(2, 2)).backward()
opt.step()
for a, b in zip(model.parameters(), before):
    assert (a.detach() - b).abs().max().item() == 0.0, "lr=0 set through param_groups moved"
try:
    ZeroRedundancyOptimizer([], torch.optim.AdamW)
    raise AssertionError("empty parameters accepted")
except ValueError as e:
    assert "empty" in str(e)
print(f"rank {rank}: zero ok", flush=True)
dist.destroy_process_group()
