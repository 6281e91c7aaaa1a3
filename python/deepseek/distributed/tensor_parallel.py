"""Tensor parallelism: the tutorials' ``TensorParallel(world_size)`` with ``split(module)``
and ``all_reduce``, and Megatron's ``ColumnParallelLinear`` / ``RowParallelLinear``.

``tp.split(module)`` returns a module holding this rank's share of the weights (rank 0's
values, broadcast first, so every rank splits the same model). Its output has the full
shape, with this rank's part filled in and zeros elsewhere, so ``tp.all_reduce(output)``
(a sum over ranks, gradient passed through unchanged) yields the unsplit module's output.

* ``nn.Linear``: the output features are split (rows of ``weight``).
* ``nn.LSTM``: the hidden units are split: each rank keeps the gate rows (i, f, g, o) of
  its units in every weight and bias. The recurrence needs the whole hidden state, so each
  time step all-gathers the units' new ``h`` (backward: the matching reduce-scatter).
"""

from .. import _C
from ..nn import functional as F
from ..nn.module import Module
from ..nn.parameter import Parameter

_D = _C.distributed


def _full_copy(t, group):
    """Rank 0's value of ``t`` (a detached copy)."""
    c = t.detach().clone()
    _D.broadcast(c, _D.world().ranks[0] if group is None else group.ranks[0], group, False)
    return c


def _rows(t, blocks, group):
    """This rank's share of each of ``blocks`` equal row blocks of ``t`` (gate blocks),
    concatenated: the rows ``[k*R + r*R/n, k*R + (r+1)*R/n)`` for block k."""
    import deepseek
    parts = t.chunk(blocks, 0)
    return deepseek.cat([_D.shard(p, 0, group) for p in parts], 0)


class _SplitLinear(Module):
    _tp_sharding = {"weight": (0, 1), "bias": (0, 1)}  # (dim, blocks); see checkpoint.py

    def __init__(self, linear, group):
        super().__init__()
        self.group = group
        self.out_features = linear.out_features
        w = _full_copy(linear.weight, group)
        self.weight = Parameter(_D.shard(w, 0, group).detach())
        self.bias = None
        if linear.bias is not None:
            self.bias = Parameter(_D.shard(_full_copy(linear.bias, group), 0, group).detach())

    def forward(self, x):
        x = _D.copy_to_parallel_region(x, self.group)
        y = F.linear(x, self.weight, self.bias)
        return _pad(y, self.group)


def _pad(y, group):
    """``y`` (this rank's block of the last dim) placed in a zero tensor of the full width."""
    import deepseek
    g = group if group is not None else _D.world()
    n, r = g.size(), g.rank()
    w = y.shape[-1]
    pieces = []
    for k in range(n):
        if k == r:
            pieces.append(y)
        else:
            pieces.append(deepseek.zeros(*y.shape[:-1], w, dtype=y.dtype))
    return deepseek.cat(pieces, -1)


class _SplitLSTM(Module):
    _tp_sharding = {"*": (0, 4)}  # every weight and bias: rows of the 4 gate blocks

    def __init__(self, lstm, group):
        super().__init__()
        if lstm.bidirectional:
            raise ValueError("TensorParallel.split: bidirectional LSTMs are not supported")
        g = group if group is not None else _D.world()
        n = g.size()
        if lstm.hidden_size % n:
            raise ValueError(f"TensorParallel.split: hidden_size {lstm.hidden_size} does not "
                             f"split over {n} ranks")
        self.group, self.n = group, n
        self.hidden_size, self.num_layers = lstm.hidden_size, lstm.num_layers
        self.batch_first, self.has_bias = lstm.batch_first, lstm.bias
        self.dropout = lstm.dropout
        for name in lstm._flat_weights_names:
            full = _full_copy(getattr(lstm, name), group)
            setattr(self, name, Parameter(_rows(full, 4, group).detach()))

    def forward(self, input, hx=None):
        import deepseek
        if hx is not None:
            raise ValueError("TensorParallel LSTM: an initial state hx is not supported")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1 if not self.batch_first else 0) if unbatched else input
        if self.batch_first:
            x = x.transpose(0, 1)
        T, B = x.shape[0], x.shape[1]
        h_loc_size = self.hidden_size // self.n
        g = self.group
        hs, cs = [], []
        layer_in = _D.copy_to_parallel_region(x, g)
        for layer in range(self.num_layers):
            w_ih = getattr(self, f"weight_ih_l{layer}")
            w_hh = getattr(self, f"weight_hh_l{layer}")
            b = None
            if self.has_bias:
                b = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            proj = F.linear(layer_in, w_ih, b)  # [T, B, 4h]
            h_full = deepseek.zeros(B, self.hidden_size, dtype=x.dtype)
            c = deepseek.zeros(B, h_loc_size, dtype=x.dtype)
            outs, locs, h_loc = [], [], None
            for t in range(T):
                gates = proj[t] + F.linear(h_full, w_hh)
                i, f, gg, o = gates.chunk(4, 1)
                c = i.sigmoid() * gg.tanh() + f.sigmoid() * c
                h_loc = o.sigmoid() * c.tanh()
                # Every rank needs the whole h for the next step (rank-specific use).
                h_full = _D.gather_from_parallel_region(h_loc, g, False)
                outs.append(h_full)
                locs.append(h_loc)
            hs.append(h_loc)
            cs.append(c)
            if layer + 1 < self.num_layers:
                layer_in = deepseek.stack(outs, 0)
                if self.dropout and self.training:
                    layer_in = F.dropout(layer_in, self.dropout, True)
            else:
                # The top layer's output as this rank's padded part (tp.all_reduce sums).
                out = _pad(deepseek.stack(locs, 0), g)
        h_n = _pad(deepseek.stack(hs, 0), g)
        c_n = _pad(deepseek.stack(cs, 0), g)
        if self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(1 if not self.batch_first else 0)
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return out, (h_n, c_n)


class TensorParallel:
    """The tutorials' tensor-parallel helper over ``world_size`` ranks (the whole job, or
    ``group``). Initialises the default process group (MPI) if needed."""

    def __init__(self, world_size=None, group=None):
        from . import init_process_group, is_initialized
        if not is_initialized():
            init_process_group("mpi")
        g = group if group is not None else _D.world()
        if world_size is not None and world_size != g.size():
            raise ValueError(f"TensorParallel(world_size={world_size}) but the job has "
                             f"{g.size()} ranks (start it with mpirun -np {world_size})")
        self.group, self.world_size, self.rank = group, g.size(), g.rank()

    def split(self, module):
        """This rank's share of ``module`` (``nn.LSTM`` or ``nn.Linear``)."""
        from ..nn import LSTM, Linear
        if isinstance(module, LSTM):
            return _SplitLSTM(module, self.group)
        if isinstance(module, Linear):
            return _SplitLinear(module, self.group)
        raise TypeError(f"TensorParallel.split: {type(module).__name__} is not supported "
                        "(nn.LSTM, nn.Linear)")

    def all_reduce(self, x):
        """Sums the ranks' parts (tensors, or tuples/lists of them, as an LSTM returns);
        the gradient passes through unchanged."""
        if isinstance(x, (tuple, list)):
            return type(x)(self.all_reduce(v) for v in x)
        return _D.reduce_from_parallel_region(x, self.group)


class ColumnParallelLinear(Module):
    """``y = x A^T + b`` with ``A``'s output rows split over ranks; with ``gather_output``
    the ranks' columns are all-gathered into the full ``y``."""

    _tp_sharding = {"weight": (0, 1), "bias": (0, 1)}

    def __init__(self, in_features, out_features, bias=True, gather_output=True, group=None,
                 init_from=None):
        super().__init__()
        from ..nn import Linear
        full = init_from if init_from is not None else Linear(in_features, out_features, bias)
        self.group, self.gather_output = group, gather_output
        self.weight = Parameter(_D.shard(_full_copy(full.weight, group), 0, group).detach())
        self.bias = (Parameter(_D.shard(_full_copy(full.bias, group), 0, group).detach())
                     if full.bias is not None else None)

    def forward(self, x):
        y = F.linear(_D.copy_to_parallel_region(x, self.group), self.weight, self.bias)
        return _D.gather_from_parallel_region(y, self.group, True) if self.gather_output else y


class RowParallelLinear(Module):
    """``y = x A^T + b`` with ``A``'s input columns split over ranks; partial products are
    all-reduced and the bias added once. With ``input_is_parallel`` the input is already
    this rank's slice (a ``ColumnParallelLinear(gather_output=False)`` output)."""

    _tp_sharding = {"weight": (1, 1)}  # the bias is replicated

    def __init__(self, in_features, out_features, bias=True, input_is_parallel=False,
                 group=None, init_from=None):
        super().__init__()
        from ..nn import Linear
        full = init_from if init_from is not None else Linear(in_features, out_features, bias)
        self.group, self.input_is_parallel = group, input_is_parallel
        self.weight = Parameter(_D.shard(_full_copy(full.weight, group), 1, group).detach())
        self.bias = Parameter(_full_copy(full.bias, group)) if full.bias is not None else None

    def forward(self, x):
        if not self.input_is_parallel:
            x = _D.scatter_to_parallel_region(x, self.group)
        y = _D.reduce_from_parallel_region(F.linear(x, self.weight), self.group)
        return y + self.bias if self.bias is not None else y
