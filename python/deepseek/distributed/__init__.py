"""``deepseek.distributed``: ``torch.distributed``'s API over MPI.

Start the processes with ``mpirun -np N python train.py``; each calls
``init_process_group(backend="mpi")``. Collectives modify tensors in place, as in torch;
``async_op=True`` returns a handle whose ``wait()`` finishes the request (all_reduce,
broadcast, send and recv overlap with computation; the other collectives complete before
returning). Ranks that pass tensors of different shapes or dtypes get a ``ValueError``
naming the collective and every rank's shape.
"""

from .. import _C

_D = _C.distributed

ProcessGroup = _D.ProcessGroup
Work = _D.Work


class ReduceOp:
    """Reductions of ``all_reduce`` and ``reduce_scatter`` (torch's ``dist.ReduceOp``)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"


class Backend:
    """Backend names accepted by ``init_process_group``."""

    MPI = "mpi"
    NCCL = "nccl"
    GLOO = "gloo"


class group:  # noqa: N801  (torch's spelling)
    """``group.WORLD`` stands for the default group (``None`` works too)."""

    WORLD = None


def is_available():
    """True: the distributed package is always importable."""
    return True


def is_mpi_available():
    """True when this build includes the MPI backend."""
    return _D.is_mpi_available()


def is_nccl_available():
    """False: no CUDA in this build."""
    return False


def is_initialized():
    return _D.is_initialized()


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Joins the job. Ranks and world size come from ``mpirun``; a ``world_size``/``rank``
    that disagrees with the launcher is an error. ``timeout`` (seconds or a ``timedelta``)
    bounds every wait; the default is ``DEEPSEEK_DIST_TIMEOUT`` or 1800 s."""
    if backend is None:
        backend = "mpi"
    if hasattr(timeout, "total_seconds"):
        timeout = timeout.total_seconds()
    _D.init_process_group(str(backend), timeout)
    for name, want, got in (("world_size", world_size, get_world_size()),
                            ("rank", rank, get_rank())):
        if want is not None and want != -1 and want != got:
            destroy_process_group()
            raise ValueError(f"init_process_group: {name}={want} but the launcher gave {got}")


def destroy_process_group(group=None):
    """Leaves the job (finalises MPI); later collectives fail."""
    if group is None:
        _D.destroy_process_group()


def _g(group):
    return group if group is not None else _D.world()


def get_rank(group=None):
    return _g(group).rank()


def get_world_size(group=None):
    return _g(group).size()


def get_backend(group=None):
    _g(group)
    return "mpi"


def new_group(ranks=None, timeout=None, backend=None, pg_options=None):
    """A group of the given world ranks; every rank of the world must call it."""
    if ranks is None:
        ranks = range(get_world_size())
    return _D.new_group([int(r) for r in ranks])


def get_process_group_ranks(group):
    return list(_g(group).ranks)


def _op(op):
    return getattr(op, "name", op).lower() if not isinstance(op, str) else op


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    return _D.all_reduce(tensor, _op(op), group, async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    return _D.broadcast(tensor, int(src), group, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    return _D.all_gather(list(tensor_list), tensor, group, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    return _D.all_gather_into_tensor(output_tensor, input_tensor, group, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    return _D.reduce_scatter(output, list(input_list), _op(op), group, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    return _D.reduce_scatter_tensor(output, input, _op(op), group, async_op)


def barrier(group=None, async_op=False, device_ids=None):
    _D.barrier(group)


def send(tensor, dst, group=None, tag=0):
    _D.send(tensor, int(dst), group, int(tag), False)


def recv(tensor, src, group=None, tag=0):
    """Receives into ``tensor`` from ``src`` (required: MPI matches by source here);
    returns ``src`` as torch does."""
    if src is None:
        raise ValueError("recv: src=None (any source) is not supported; give the sender's rank")
    _D.recv(tensor, int(src), group, int(tag), False)
    return src


def isend(tensor, dst, group=None, tag=0):
    return _D.send(tensor, int(dst), group, int(tag), True)


def irecv(tensor, src, group=None, tag=0):
    if src is None:
        raise ValueError("irecv: src=None (any source) is not supported; give the sender's rank")
    return _D.recv(tensor, int(src), group, int(tag), True)


from . import checkpoint  # noqa: E402
from .parallel import DistributedDataParallel, DistributedSampler  # noqa: E402
from .tensor_parallel import (  # noqa: E402
    ColumnParallelLinear, ParallelMultiheadAttention, RowParallelLinear, TensorParallel,
    VocabParallelEmbedding, vocab_parallel_cross_entropy,
)

__all__ = [
    "Backend", "ColumnParallelLinear", "DistributedDataParallel", "DistributedSampler",
    "ParallelMultiheadAttention", "ProcessGroup", "ReduceOp", "RowParallelLinear",
    "TensorParallel", "VocabParallelEmbedding", "Work", "all_gather",
    "all_gather_into_tensor", "all_reduce", "barrier", "broadcast", "destroy_process_group",
    "get_backend", "get_rank", "get_world_size", "group", "init_process_group", "irecv",
    "is_available", "is_initialized", "is_mpi_available", "is_nccl_available", "isend",
    "new_group", "recv", "reduce_scatter", "reduce_scatter_tensor", "send",
    "vocab_parallel_cross_entropy",
]
