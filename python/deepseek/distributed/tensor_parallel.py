"""Tensor parallelism: the tutorials' ``TensorParallel(world_size)`` with ``split(module)``
and ``all_reduce``, and Megatron's ``ColumnParallelLinear`` / ``RowParallelLinear``,
``ParallelMultiheadAttention`` (heads split over ranks), ``VocabParallelEmbedding`` and
``vocab_parallel_cross_entropy`` (vocabulary split over ranks).

``tp.split(module)`` returns a module holding this rank's share of the weights (rank 0's
values, broadcast first, so every rank splits the same model). Its output has the full
shape, with this rank's part filled in and zeros elsewhere, so ``tp.all_reduce(output)``
(a sum over ranks, gradient passed through unchanged) yields the unsplit module's output.

* ``nn.Linear``: the output features are split (rows of ``weight``).
* ``nn.LSTM``: the hidden units are split: each rank keeps the gate rows (i, f, g, o) of
  its units in every weight and bias. The recurrence needs the whole hidden state, so each
  time step all-gathers the units' new ``h`` (backward: the matching reduce-scatter).
* ``nn.MultiheadAttention``: the heads are split (as ``ParallelMultiheadAttention``): each
  rank's output is its heads through its columns of ``out_proj`` (the bias added on the
  first rank only), averaged attention weights are its heads' sum over ``num_heads``, and
  per-head weights (``average_attn_weights=False``) are zeros outside its heads.
* ``nn.Embedding``: the vocabulary is split (as ``VocabParallelEmbedding``): ids outside
  this rank's rows look up zeros.
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
        """This rank's share of ``module`` (``nn.LSTM``, ``nn.Linear``,
        ``nn.MultiheadAttention`` or ``nn.Embedding``); ``all_reduce`` of its output is
        the unsplit module's output."""
        from ..nn import LSTM, Embedding, Linear, MultiheadAttention
        if isinstance(module, LSTM):
            return _SplitLSTM(module, self.group)
        if isinstance(module, Linear):
            return _SplitLinear(module, self.group)
        if isinstance(module, MultiheadAttention):
            return _SplitMHA(module, self.group)
        if isinstance(module, Embedding):
            return _SplitEmbedding(module, self.group)
        raise TypeError(f"TensorParallel.split: {type(module).__name__} is not supported "
                        "(nn.LSTM, nn.Linear, nn.MultiheadAttention, nn.Embedding)")

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


def _group_size(group):
    g = group if group is not None else _D.world()
    return g.size(), g.rank()


class ParallelMultiheadAttention(Module):
    """Megatron's parallel self-attention: ``nn.MultiheadAttention`` with its heads split
    over the ranks. Rank ``r`` of ``n`` keeps heads ``[r*H/n, (r+1)*H/n)``: its rows of the
    q, k and v blocks of ``in_proj_weight`` / ``in_proj_bias`` (column parallel) and the
    matching columns of ``out_proj`` (a ``RowParallelLinear``, one all-reduce, bias added
    once). Forward takes ``nn.MultiheadAttention``'s arguments and returns ``(output,
    weights)``; with the same (rank 0's) weights it equals the unsplit layer, forward and
    backward. ``ParallelMultiheadAttention.from_mha(mha)`` (or ``init_from=mha``) splits an
    existing layer; ``num_heads`` must be divisible by the number of ranks."""

    # q, k, v blocks of rows (checkpoint.py); out_proj is a RowParallelLinear.
    _tp_sharding = {"in_proj_weight": (0, 3), "in_proj_bias": (0, 3)}

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False,
                 group=None, init_from=None):
        super().__init__()
        from ..nn import MultiheadAttention
        if init_from is not None:
            embed_dim, num_heads = init_from.embed_dim, init_from.num_heads
            dropout, batch_first = init_from.dropout, init_from.batch_first
        n, r = _group_size(group)
        if num_heads <= 0 or num_heads % n:
            raise ValueError(f"ParallelMultiheadAttention: num_heads {num_heads} is not "
                             f"divisible by the world size {n}: each of the {n} ranks must "
                             "hold the same number of heads")
        full = init_from if init_from is not None else MultiheadAttention(
            embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=batch_first)
        self.group, self.embed_dim, self.num_heads = group, embed_dim, num_heads
        self.local_heads, self.head_offset = num_heads // n, r * (num_heads // n)
        self.dropout, self.batch_first = dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(_rows(_full_copy(full.in_proj_weight, group), 3,
                                              group).detach())
        self.in_proj_bias = (Parameter(_rows(_full_copy(full.in_proj_bias, group), 3,
                                             group).detach())
                             if full.in_proj_bias is not None else None)
        self.out_proj = RowParallelLinear(embed_dim, embed_dim, input_is_parallel=True,
                                          group=group, init_from=full.out_proj)

    @classmethod
    def from_mha(cls, mha, group=None):
        """Splits ``mha`` (an ``nn.MultiheadAttention``) by heads, with rank 0's weights."""
        return cls(mha.embed_dim, mha.num_heads, group=group, init_from=mha)

    def _local_mask(self, attn_mask, n_batch, L, S):
        """A ``[N*H, L, S]`` mask cut to this rank's heads; 2-D masks apply to all heads."""
        if attn_mask is None or attn_mask.dim() != 3:
            return attn_mask
        H, h, o = self.num_heads, self.local_heads, self.head_offset
        if attn_mask.shape[0] != n_batch * H:
            raise ValueError(f"ParallelMultiheadAttention: a 3-D attn_mask must be "
                             f"[N*num_heads, L, S] = [{n_batch * H}, {L}, {S}], got "
                             f"{list(attn_mask.shape)}")
        return attn_mask.reshape(n_batch, H, L, S)[:, o:o + h].reshape(n_batch * h, L, S)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        return self._attend(query, key, value, key_padding_mask, need_weights, attn_mask,
                            average_attn_weights, is_causal, True)

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                average_attn_weights, is_causal, reduce):
        """The forward; without ``reduce`` the output and weights are this rank's parts
        (``TensorParallel.split``: the caller's all-reduce sums them)."""
        from ..nn.attention import _mha
        same_k, same_v, v_is_k = key is query, value is query, value is key
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        g = self.group
        # Each distinct input enters the parallel region once (its gradient is summed over
        # the ranks); self-attention keeps one tensor, so q, k, v project in one matmul.
        q = _D.copy_to_parallel_region(query, g)
        k = q if same_k else _D.copy_to_parallel_region(key, g)
        v = q if same_v else (k if v_is_k else _D.copy_to_parallel_region(value, g))
        L, n_batch, S = q.shape[0], q.shape[1], k.shape[0]
        out, w = _mha(q, k, v, self.embed_dim, self.local_heads, self.in_proj_weight,
                      self.in_proj_bias, self.out_proj.weight, None,
                      self._local_mask(attn_mask, n_batch, L, S), key_padding_mask, is_causal,
                      self.dropout, self.training, need_weights, False)
        bias = self.out_proj.bias
        if reduce:
            out = _D.reduce_from_parallel_region(out, g)
        elif bias is not None and _group_size(g)[1] != 0:
            bias = bias - bias.detach()  # adds zeros; the gradient still reaches every rank
        if bias is not None:
            out = out + bias
        if w is not None:  # [N, h, L, S]: this rank's heads
            if average_attn_weights:
                w = w.sum(1) * (1.0 / self.num_heads)
                if reduce:
                    w = _D.reduce_from_parallel_region(w, g)
            elif not reduce:
                w = _pad(w.permute(0, 2, 3, 1), g).permute(0, 3, 1, 2)
            else:
                w = _D.gather_from_parallel_region(w.permute(0, 2, 3, 1), g, True)
                w = w.permute(0, 3, 1, 2)
        if unbatched:
            out = out.squeeze(1)
            if w is not None:
                w = w.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, w


class VocabParallelEmbedding(Module):
    """Megatron's vocabulary-parallel embedding: rank ``r`` of ``n`` holds the rows
    ``[r*V/n, (r+1)*V/n)`` of the table (``vocab_start_index``, ``vocab_end_index``); ids
    outside its slice give zeros there and one all-reduce sums the ranks' lookups. With the
    same (rank 0's) weights it equals ``nn.Embedding``, forward and backward (each rank's
    ``weight.grad`` is its rows of the full gradient). ``from_embedding(emb)`` (or
    ``init_from=emb``) splits an existing ``nn.Embedding``; ``num_embeddings`` must be
    divisible by the number of ranks."""

    _tp_sharding = {"weight": (0, 1)}  # vocabulary rows (checkpoint.py)

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, group=None,
                 init_from=None):
        super().__init__()
        from ..nn import Embedding
        if init_from is not None:
            num_embeddings, embedding_dim = init_from.num_embeddings, init_from.embedding_dim
            padding_idx = init_from.padding_idx
        n, r = _group_size(group)
        if num_embeddings <= 0 or num_embeddings % n:
            raise ValueError(f"VocabParallelEmbedding: the vocabulary size {num_embeddings} "
                             f"is not divisible by the world size {n}: each of the {n} ranks "
                             "must hold the same number of vocabulary entries")
        full = init_from if init_from is not None else Embedding(
            num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.group, self.padding_idx = group, padding_idx
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        per = num_embeddings // n
        self.vocab_start_index, self.vocab_end_index = r * per, (r + 1) * per
        self.weight = Parameter(_D.shard(_full_copy(full.weight, group), 0, group).detach())

    @classmethod
    def from_embedding(cls, embedding, group=None):
        """Splits ``embedding`` (an ``nn.Embedding``) by vocabulary rows, rank 0's weights."""
        return cls(embedding.num_embeddings, embedding.embedding_dim, group=group,
                   init_from=embedding)

    def forward(self, input):
        return _D.vocab_parallel_embedding(input, self.weight, self.padding_idx, self.group)


class _SplitMHA(ParallelMultiheadAttention):
    """``TensorParallel.split`` of an ``nn.MultiheadAttention``: the heads split as in
    ``ParallelMultiheadAttention``, returning this rank's parts of ``(output, weights)``."""

    def __init__(self, mha, group):
        super().__init__(mha.embed_dim, mha.num_heads, group=group, init_from=mha)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        return self._attend(query, key, value, key_padding_mask, need_weights, attn_mask,
                            average_attn_weights, is_causal, False)


class _SplitEmbedding(VocabParallelEmbedding):
    """``TensorParallel.split`` of an ``nn.Embedding``: the vocabulary rows split as in
    ``VocabParallelEmbedding``, returning this rank's lookup (zeros for the other ranks'
    ids)."""

    def __init__(self, embedding, group):
        super().__init__(embedding.num_embeddings, embedding.embedding_dim, group=group,
                         init_from=embedding)

    def forward(self, input):
        return _D.vocab_parallel_embedding(input, self.weight, self.padding_idx, self.group,
                                           False)


def vocab_parallel_cross_entropy(logits, target, ignore_index=-100, reduction="mean",
                                 label_smoothing=0.0, group=None):
    """Cross-entropy of vocabulary-parallel logits, as Megatron computes it: ``logits`` is
    this rank's ``[..., V/n]`` slice of the last (vocabulary) dim, e.g. the output of
    ``ColumnParallelLinear(d, V, bias=False, gather_output=False)``; ``target`` holds the
    whole class ids ``[...]`` (the same on every rank). Equals
    ``F.cross_entropy(full_logits.reshape(-1, V), target.reshape(-1), ...)`` (``"none"``:
    shaped like ``target``), loss and gradient, with ``ignore_index``, ``reduction`` and
    ``label_smoothing``. Only per-row values are all-reduced (the max, the sum of exps and
    the target logit), never the logits."""
    return _D.vocab_parallel_cross_entropy(logits, target, ignore_index, reduction,
                                           float(label_smoothing), group)
