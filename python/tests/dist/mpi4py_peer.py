"""The mpi4py side of the mixed job (crates/deepseek/tests/distributed.rs, case "mixed").

deepseek's collectives first exchange shapes and dtypes (an all-gather of 11 int64 per
rank), so this peer does the same before each collective, as deepseek's wire protocol.
"""
import sys
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
F32, F64, I64 = 6, 7, 3  # deepseek's dtype codes (bool, u8, i32, i64, f16, bf16, f32, f64)


def meta(code, shape):
    m = [code, len(shape), int(np.prod(shape))] + list(shape)
    return np.array(m + [-1] * (11 - len(m)), dtype=np.int64)


def exchange(code, shape):
    got = np.empty(11 * comm.size, dtype=np.int64)
    comm.Allgather(meta(code, shape), got)
    assert (got.reshape(comm.size, 11) == meta(code, shape)).all(), got


exchange(F64, [3])
x = np.array([10.0, 20.0, -30.0])
out = np.empty_like(x)
comm.Allreduce(x, out, op=MPI.SUM)
assert list(out) == [11.5, 22.0, -33.0], out

exchange(F32, [4])
b = np.array([7, 8, 9, 10], dtype=np.float32)
comm.Bcast(b, root=1)

exchange(I64, [2])
m = np.array([3, 4], dtype=np.int64)
mo = np.empty_like(m)
comm.Allreduce(m, mo, op=MPI.MAX)
assert list(mo) == [5, 4], mo
print("mpi4py ok", flush=True)
sys.exit(0)
