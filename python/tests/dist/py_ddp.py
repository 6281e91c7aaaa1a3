"""DistributedDataParallel on 2 ranks == one process on the combined batch (20 SGD steps,
losses and parameters within 1e-5), with and without no_sync accumulation; and
DistributedSampler. Run with mpirun -np 2."""
import copy

import deepseek as torch
import deepseek.distributed as dist
import deepseek.nn as nn
import deepseek.nn.functional as F

dist.init_process_group("mpi")
rank, n = dist.get_rank(), dist.get_world_size()


def close(a, b, what):
    d = (a - b).abs().max().item()
    assert d <= 1e-5, f"{what}: {d}"


for accumulate in (False, True):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 2))
    reference = copy.deepcopy(model)
    if rank == 1:  # DDP must broadcast rank 0's parameters
        with torch.no_grad():
            model[0].weight.mul_(2.0)
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.0001 if accumulate else 25)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    torch.manual_seed(1)
    for step in range(20):
        x, y = torch.randn(4 * n, 5), torch.randn(4 * n, 2)
        ref_opt.zero_grad()
        ref_loss = F.mse_loss(reference(x), y)
        ref_loss.backward()
        ref_opt.step()
        opt.zero_grad()
        xs, ys = x[rank * 4:(rank + 1) * 4], y[rank * 4:(rank + 1) * 4]
        if accumulate:
            with ddp.no_sync():
                l1 = F.mse_loss(ddp(xs[:2]), ys[:2]) * 0.5
                l1.backward()
            l2 = F.mse_loss(ddp(xs[2:]), ys[2:]) * 0.5
            l2.backward()
            loss = (l1 + l2).detach()
        else:
            loss = F.mse_loss(ddp(xs), ys)
            loss.backward()
            loss = loss.detach()
        opt.step()
        dist.all_reduce(loss, op=dist.ReduceOp.AVG)
        close(loss, ref_loss.detach(), f"loss at step {step}")
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            close(p.detach(), q.detach(), f"{name} after step {step} (no_sync={accumulate})")

# The profiler sees the communication: each bucket's all-reduce on the MPI thread (with
# its size) and the backward's wait for it on the caller's thread.
from deepseek.profiler import profile  # noqa: E402

net = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
ddp = dist.DistributedDataParallel(net, bucket_cap_mb=0.01)
with profile() as prof:
    ddp(torch.randn(8, 64)).sum().backward()
ev = prof.events()
comm = [e for e in ev if e["category"] == "communication"]
ran = [e for e in comm if e["name"].startswith("all_reduce ")]
assert len(ran) == ddp.num_buckets >= 2, [e["name"] for e in comm]
assert any(e["name"] == "wait all_reduce" for e in comm), [e["name"] for e in comm]
kernels = {e["thread"] for e in ev if e["category"] == "kernel"}
assert {e["thread"] for e in ran}.isdisjoint(kernels), "all-reduce ran on the compute thread"
assert "all_reduce" in prof.key_averages().table()

s = dist.DistributedSampler(list(range(10)), shuffle=True, seed=3)
mine = list(s)
assert len(mine) == len(s) == 5
out = [torch.zeros(5, dtype=torch.int64) for _ in range(n)]
dist.all_gather(out, torch.tensor(mine))
assert sorted(sum((o.tolist() for o in out), [])) == list(range(10))
dist.destroy_process_group()
print(f"rank {rank}: ddp ok", flush=True)
