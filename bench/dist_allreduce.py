"""All-reduce bus bandwidth: deepseek.distributed vs mpi4py's MPI_Allreduce, side by side
in one job (mpi4py initialises MPI; deepseek adopts it). Run:

    mpirun --allow-run-as-root -np 2 python bench/dist_allreduce.py

Prints, per message size, the median time of each (the two measured alternately) and the bus bandwidth
2 (n-1)/n * bytes / time (NCCL's definition), and the ratio deepseek / mpi4py.
"""
import statistics
import sys
import time

import numpy as np
from mpi4py import MPI

import deepseek as torch
import deepseek.distributed as dist

comm = MPI.COMM_WORLD
dist.init_process_group("mpi")
rank, n = dist.get_rank(), dist.get_world_size()
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def timeit2(f, g):
    """Median times of f and g, measured alternately (f, g, f, g, ...) so that the load of a
    busy machine falls on both alike."""
    f()
    g()
    tf, tg = [], []
    for _ in range(reps):
        for fn, ts in ((f, tf), (g, tg)):
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return statistics.median(tf), statistics.median(tg)


if rank == 0:
    print(f"| size | deepseek | mpi4py | bus GB/s deepseek | bus GB/s mpi4py | ratio (bw) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for mb in (1, 4, 16, 64):
    k = mb * 1024 * 1024 // 4
    t = torch.ones(k)
    a = np.ones(k, dtype=np.float32)
    out = np.empty_like(a)
    td, tm = timeit2(lambda: dist.all_reduce(t), lambda: comm.Allreduce(a, out, op=MPI.SUM))
    bus = lambda s: 2 * (n - 1) / n * mb * 1048576 / s / 1e9  # noqa: E731
    if rank == 0:
        print(f"| {mb} MB | {td * 1e3:.2f} ms | {tm * 1e3:.2f} ms | {bus(td):.2f} | "
              f"{bus(tm):.2f} | {bus(td) / bus(tm):.2f} |", flush=True)
dist.destroy_process_group()
