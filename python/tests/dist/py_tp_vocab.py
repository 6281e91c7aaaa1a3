"""Megatron layers on 2 ranks against PyTorch computing the unsplit versions (run with
mpirun -np 2): ParallelMultiheadAttention == torch.nn.MultiheadAttention (outputs, attention
weights, input and parameter gradients; causal, per-head bool and key-padding masks),
VocabParallelEmbedding == torch.nn.Embedding, and a column-parallel LM head +
vocab_parallel_cross_entropy == F.cross_entropy on the full logits (loss, logits and weight
gradients; ignore_index, reductions, label smoothing); errors for sizes that do not split."""
import numpy as np
import torch  # PyTorch: the reference

import deepseek
import deepseek.distributed as dist
from deepseek.distributed import (ColumnParallelLinear, ParallelMultiheadAttention,
                                  VocabParallelEmbedding, vocab_parallel_cross_entropy)

torch.set_num_threads(1)
dist.init_process_group("mpi")
rank, n = dist.get_rank(), dist.get_world_size()
TOL = 1e-5


def ds(t, grad=False):
    """A deepseek copy of a torch tensor."""
    x = deepseek.tensor(np.ascontiguousarray(t.detach().numpy()))
    return x.requires_grad_(True) if grad else x


def close(a, b, what, tol=TOL):
    a = np.asarray(a.detach().numpy(), dtype=np.float64)
    b = np.asarray(b.detach().numpy(), dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    d = float(np.abs(a - b).max()) if a.size else 0.0
    assert d <= tol, f"{what}: worst difference {d:.3g} > {tol}"


def heads_rows(t, e):
    """This rank's rows of each of the q, k, v blocks of a [3E, ...] tensor."""
    per = e // n
    return torch.cat([p[rank * per:(rank + 1) * per] for p in t.chunk(3, 0)], 0)


# ---------------------------------------------------------------- parallel attention
E, H, B, L = 8, 4, 2, 5
for batch_first in (False, True):
    for case in ("plain", "causal", "mask3d", "padding", "weights", "head_weights"):
        what = f"attention ({case}, batch_first={batch_first})"
        torch.manual_seed(0)
        ref = torch.nn.MultiheadAttention(E, H, batch_first=batch_first)
        with torch.no_grad():
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
        mine = deepseek.nn.MultiheadAttention(E, H, batch_first=batch_first)
        mine.load_state_dict({k: ds(v) for k, v in ref.state_dict().items()})
        if rank == 1:  # the split must take rank 0's weights
            with deepseek.no_grad():
                mine.in_proj_weight.mul_(2.0)
        par = ParallelMultiheadAttention.from_mha(mine)
        assert par.local_heads == H // n
        shape = (B, L, E) if batch_first else (L, B, E)
        x_ref = torch.randn(*shape, requires_grad=True)
        cot = torch.randn(*shape)
        x = ds(x_ref, grad=True)
        kw_ref, kw = {"need_weights": False}, {"need_weights": False}
        if case == "causal":  # torch needs the mask; deepseek gets only is_causal
            kw_ref["attn_mask"] = torch.nn.Transformer.generate_square_subsequent_mask(L)
            kw["is_causal"] = True
        elif case == "mask3d":  # per-head bool mask [N*H, L, S], True = not allowed
            m = torch.rand(B * H, L, L) < 0.4
            m[:, :, 0] = False
            kw_ref["attn_mask"], kw["attn_mask"] = m, ds(m)
        elif case == "padding":
            kp = torch.tensor([[False] * L, [False] * (L - 2) + [True] * 2])
            kw_ref["key_padding_mask"], kw["key_padding_mask"] = kp, ds(kp)
        elif case in ("weights", "head_weights"):
            avg = case == "weights"
            kw_ref = {"need_weights": True, "average_attn_weights": avg}
            kw = dict(kw_ref)
        out_ref, w_ref = ref(x_ref, x_ref, x_ref, **kw_ref)
        out, w = par(x, x, x, **kw)
        close(out, out_ref, f"{what}: output")
        loss_ref = (out_ref * cot).sum()
        loss = (out * ds(cot)).sum()
        if w_ref is not None:
            close(w, w_ref, f"{what}: attention weights")
            wcot = torch.randn(w_ref.shape)
            loss_ref = loss_ref + (w_ref * wcot).sum()
            loss = loss + (w * ds(wcot)).sum()
        loss_ref.backward()
        loss.backward()
        close(x.grad, x_ref.grad, f"{what}: input gradient")
        close(par.in_proj_weight.grad, heads_rows(ref.in_proj_weight.grad, E),
              f"{what}: in_proj_weight gradient")
        close(par.in_proj_bias.grad, heads_rows(ref.in_proj_bias.grad, E),
              f"{what}: in_proj_bias gradient")
        per = E // n
        close(par.out_proj.weight.grad, ref.out_proj.weight.grad[:, rank * per:(rank + 1) * per],
              f"{what}: out_proj.weight gradient")
        close(par.out_proj.bias.grad, ref.out_proj.bias.grad, f"{what}: out_proj.bias gradient")

# Cross-attention, unbatched.
torch.manual_seed(1)
ref = torch.nn.MultiheadAttention(E, H, bias=False)
mine = deepseek.nn.MultiheadAttention(E, H, bias=False)
mine.load_state_dict({k: ds(v) for k, v in ref.state_dict().items()})
par = ParallelMultiheadAttention(E, H, bias=False, init_from=mine)
q, kv = torch.randn(3, E), torch.randn(L, E)
close(par(ds(q), ds(kv), ds(kv))[0], ref(q, kv, kv)[0], "unbatched cross-attention")

# ---------------------------------------------------------------- vocabulary parallel
V, D = 12, 6
per = V // n
torch.manual_seed(2)
emb_ref = torch.nn.Embedding(V, D, padding_idx=7)
emb = deepseek.nn.Embedding(V, D, padding_idx=7)
emb.load_state_dict({"weight": ds(emb_ref.weight)})
if rank == 1:
    with deepseek.no_grad():
        emb.weight.add_(1.0)
vemb = VocabParallelEmbedding.from_embedding(emb)
assert (vemb.vocab_start_index, vemb.vocab_end_index) == (rank * per, (rank + 1) * per)
ids_ref = torch.tensor([[0, 11, 5, 6, 7], [3, 3, 10, 1, 7]])
out_ref = emb_ref(ids_ref)
out = vemb(ds(ids_ref))
close(out, out_ref, "vocab-parallel embedding output")
cot = torch.randn(*out_ref.shape)
(out_ref * cot).sum().backward()
(out * ds(cot)).sum().backward()
close(vemb.weight.grad, emb_ref.weight.grad[rank * per:(rank + 1) * per],
      "vocab-parallel embedding weight gradient")

# The LM head: x [B, T, D] -> this rank's logits [B, T, V/n] -> parallel cross-entropy.
for reduction, smoothing, ignore in [("mean", 0.0, -100), ("mean", 0.0, 4), ("sum", 0.0, -100),
                                     ("none", 0.0, 9), ("mean", 0.1, 4), ("sum", 0.2, -100)]:
    what = f"cross-entropy ({reduction}, label_smoothing={smoothing}, ignore_index={ignore})"
    torch.manual_seed(3)
    head_ref = torch.nn.Linear(D, V, bias=False)
    lin = deepseek.nn.Linear(D, V, bias=False)
    lin.load_state_dict({"weight": ds(head_ref.weight)})
    head = ColumnParallelLinear(D, V, bias=False, gather_output=False, init_from=lin)
    x_ref = torch.randn(2, 5, D, requires_grad=True)
    x = ds(x_ref, grad=True)
    target = torch.tensor([[4, 11, 0, 5, 6], [-100, 4, 9, 2, 7]])
    target[target == -100] = ignore
    logits_ref = head_ref(x_ref)
    logits_ref.retain_grad()
    loss_ref = torch.nn.functional.cross_entropy(
        logits_ref.reshape(-1, V), target.reshape(-1), ignore_index=ignore,
        reduction=reduction, label_smoothing=smoothing)
    if reduction == "none":
        loss_ref = loss_ref.reshape(target.shape)
    shard = head(x)
    assert list(shard.shape) == [2, 5, per]
    shard.retain_grad()
    loss = vocab_parallel_cross_entropy(shard, ds(target), ignore_index=ignore,
                                        reduction=reduction, label_smoothing=smoothing)
    close(loss, loss_ref, f"{what}: loss")
    lcot = torch.randn(loss_ref.shape)
    (loss_ref * lcot).sum().backward()
    (loss * ds(lcot)).sum().backward()
    close(shard.grad, logits_ref.grad[..., rank * per:(rank + 1) * per],
          f"{what}: logits gradient")
    close(head.weight.grad, head_ref.weight.grad[rank * per:(rank + 1) * per],
          f"{what}: LM head weight gradient")
    close(x.grad, x_ref.grad, f"{what}: input gradient")

# ---------------------------------------------------------------- errors


def raises(exc, words, f):
    try:
        f()
    except exc as e:
        for w in words:
            assert w in str(e), f"{w!r} not in {e}"
        return
    raise AssertionError(f"no {exc.__name__} ({words})")


raises(ValueError, ["num_heads 3", f"world size {n}"], lambda: ParallelMultiheadAttention(6, 3))
raises(ValueError, ["vocabulary size 7", f"world size {n}"],
       lambda: VocabParallelEmbedding(7, 4))
raises(IndexError, ["target 12", "12 classes"], lambda: vocab_parallel_cross_entropy(
    deepseek.zeros(3, per), deepseek.tensor([0, 12, 1])))
raises(IndexError, ["index 12"], lambda: vemb(deepseek.tensor([3, 12])))
raises(ValueError, ["reduction"], lambda: vocab_parallel_cross_entropy(
    deepseek.zeros(3, per), deepseek.tensor([0, 1, 1]), reduction="avg"))
dist.barrier()
dist.destroy_process_group()
print(f"rank {rank}: tp vocab ok", flush=True)
