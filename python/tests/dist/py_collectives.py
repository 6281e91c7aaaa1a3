"""Collectives through deepseek.distributed (torch.distributed's spelling); run with
mpirun -np 2 (or more). Prints "collectives ok" on success."""
import deepseek as torch
import deepseek.distributed as dist

try:
    dist.init_process_group(backend="gloo")
    raise SystemExit("gloo accepted")
except ValueError as e:
    assert "gloo" in str(e), e
dist.init_process_group(backend="mpi")
assert dist.is_initialized()
rank, n = dist.get_rank(), dist.get_world_size()

t = torch.tensor([float(rank + 1), 2.0])
dist.all_reduce(t, op=dist.ReduceOp.SUM)
assert t.tolist() == [n * (n + 1) / 2, 2.0 * n], t
for op, want in [(dist.ReduceOp.MAX, n), (dist.ReduceOp.MIN, 1), (dist.ReduceOp.AVG, (n + 1) / 2)]:
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t, op=op)
    assert abs(t.item() - want) < 1e-6, (op, t)

t = torch.full((3,), float(rank))
work = dist.all_reduce(t, async_op=True)
work.wait()
assert t.tolist() == [n * (n - 1) / 2] * 3

b = torch.arange(4, dtype=torch.float32) if rank == 0 else torch.zeros(4)
dist.broadcast(b, src=0)
assert b.tolist() == [0.0, 1.0, 2.0, 3.0]

out = [torch.zeros(2) for _ in range(n)]
dist.all_gather(out, torch.full((2,), float(rank)))
assert [o.tolist() for o in out] == [[float(r)] * 2 for r in range(n)]

res = torch.zeros(2)
dist.reduce_scatter(res, [torch.full((2,), float(r + rank)) for r in range(n)])
assert res.tolist() == [float(n * rank + n * (n - 1) / 2)] * 2, res

if rank == 0:
    dist.send(torch.tensor([[1.0, 2.0]]), dst=1)
elif rank == 1:
    got = torch.zeros(1, 2)
    assert dist.recv(got, src=0) == 0
    assert got.tolist() == [[1.0, 2.0]]

g = dist.new_group([0, 1])
if rank < 2:
    t = torch.ones(1)
    dist.all_reduce(t, group=g)
    assert t.item() == 2.0

# Ranks disagree on the shape: every rank gets a ValueError naming the shapes.
try:
    dist.all_reduce(torch.zeros(2 + rank))
    raise SystemExit("mismatch not detected")
except ValueError as e:
    assert "all_reduce" in str(e) and "rank 1 has [3]" in str(e), e

dist.barrier()
dist.destroy_process_group()
print(f"rank {rank}: collectives ok", flush=True)
