"""TensorParallel.split of nn.MultiheadAttention and nn.Embedding on 2 ranks (mpirun -np 2
with a scratch directory as the argument) against PyTorch computing the unsplit layers:
tp.all_reduce(split(module)(...)) equals the module's output (attention output, averaged
and per-head weights), and each rank's gradients are its share of the full gradients
(heads' rows and columns, vocabulary rows; the replicated out_proj bias gets the full
gradient on every rank). Also: the split attention inside a model trained by SGD stays
equal to PyTorch over steps, and a sharded checkpoint of split modules consolidates to
PyTorch's unsplit state dict."""
import numpy as np
import torch  # PyTorch: the reference

import deepseek
import deepseek.distributed as dist
from deepseek.distributed import TensorParallel

torch.set_num_threads(1)
tp = TensorParallel(world_size=2)
rank, n = tp.rank, tp.world_size
TOL = 1e-5


def ds(t, grad=False):
    x = deepseek.tensor(np.ascontiguousarray(t.detach().numpy()))
    return x.requires_grad_(True) if grad else x


def close(a, b, what, tol=TOL):
    a = np.asarray(a.detach().numpy(), dtype=np.float64)
    b = np.asarray(b.detach().numpy(), dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    d = float(np.abs(a - b).max()) if a.size else 0.0
    assert d <= tol, f"{what}: worst difference {d:.3g} > {tol}"


def heads_rows(t, e):
    per = e // n
    return torch.cat([p[rank * per:(rank + 1) * per] for p in t.chunk(3, 0)], 0)


E, H, B, L = 8, 4, 2, 5
for batch_first in (False, True):
    for avg in (None, True, False):  # None: need_weights=False
        what = f"split attention (batch_first={batch_first}, average_attn_weights={avg})"
        torch.manual_seed(0)
        ref = torch.nn.MultiheadAttention(E, H, batch_first=batch_first)
        with torch.no_grad():
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
        mine = deepseek.nn.MultiheadAttention(E, H, batch_first=batch_first)
        mine.load_state_dict({k: ds(v) for k, v in ref.state_dict().items()})
        if rank == 1:  # split() must take rank 0's weights
            with deepseek.no_grad():
                mine.out_proj.bias.add_(1.0)
        part = tp.split(mine)
        x_ref = torch.randn(*((B, L, E) if batch_first else (L, B, E)), requires_grad=True)
        x = ds(x_ref, grad=True)
        kw = {"need_weights": False} if avg is None else {"average_attn_weights": avg}
        out_ref, w_ref = ref(x_ref, x_ref, x_ref, **kw)
        out, w = tp.all_reduce(part(x, x, x, **kw)) if avg is not None else (
            tp.all_reduce(part(x, x, x, **kw)[0]), None)
        close(out, out_ref, f"{what}: output")
        cot = torch.randn(*out_ref.shape)
        loss_ref, loss = (out_ref * cot).sum(), (out * ds(cot)).sum()
        if avg is not None:
            close(w, w_ref, f"{what}: attention weights")
            wcot = torch.randn(*w_ref.shape)
            loss_ref, loss = loss_ref + (w_ref * wcot).sum(), loss + (w * ds(wcot)).sum()
        loss_ref.backward()
        loss.backward()
        # The input entered every rank's part: its gradient is the sum of the ranks'.
        close(x.grad, x_ref.grad, f"{what}: input gradient")
        close(part.in_proj_weight.grad, heads_rows(ref.in_proj_weight.grad, E),
              f"{what}: in_proj_weight gradient")
        close(part.in_proj_bias.grad, heads_rows(ref.in_proj_bias.grad, E),
              f"{what}: in_proj_bias gradient")
        per = E // n
        close(part.out_proj.weight.grad,
              ref.out_proj.weight.grad[:, rank * per:(rank + 1) * per],
              f"{what}: out_proj.weight gradient")
        close(part.out_proj.bias.grad, ref.out_proj.bias.grad, f"{what}: out_proj.bias gradient")

# Unbatched cross-attention.
torch.manual_seed(1)
ref = torch.nn.MultiheadAttention(E, H)
mine = deepseek.nn.MultiheadAttention(E, H)
mine.load_state_dict({k: ds(v) for k, v in ref.state_dict().items()})
part = tp.split(mine)
q, kv = torch.randn(3, E), torch.randn(L, E)
o_ref, w_ref = ref(q, kv, kv)
o, w = tp.all_reduce(part(ds(q), ds(kv), ds(kv)))
close(o, o_ref, "unbatched split cross-attention: output")
close(w, w_ref, "unbatched split cross-attention: weights")


# A model using the split attention, trained: the replicated bias must stay equal on every
# rank (each rank's bias gets the full gradient) and the whole must track PyTorch.
class Block(deepseek.nn.Module):
    def __init__(self, attn):
        super().__init__()
        self.attn = tp.split(attn)

    def forward(self, x):
        return tp.all_reduce(self.attn(x, x, x, need_weights=False)[0])


torch.manual_seed(2)
ref = torch.nn.MultiheadAttention(E, H)
mine = deepseek.nn.MultiheadAttention(E, H)
mine.load_state_dict({k: ds(v) for k, v in ref.state_dict().items()})
block = Block(mine)
opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1)
opt = deepseek.optim.SGD(block.parameters(), lr=0.1)
for step in range(3):
    x_ref = torch.randn(L, B, E)
    opt_ref.zero_grad()
    opt.zero_grad()
    loss_ref = (ref(x_ref, x_ref, x_ref, need_weights=False)[0] ** 2).mean()
    loss = (block(ds(x_ref)) ** 2).mean()
    close(loss, loss_ref, f"training step {step}: loss")
    loss_ref.backward()
    loss.backward()
    opt_ref.step()
    opt.step()
close(block.attn.out_proj.bias, ref.out_proj.bias, "trained out_proj.bias")

# ---------------------------------------------------------------- embedding
V, D = 12, 6
per = V // n
for pad in (None, 7, -2):
    what = f"split embedding (padding_idx={pad})"
    torch.manual_seed(3)
    emb_ref = torch.nn.Embedding(V, D, padding_idx=pad)
    emb = deepseek.nn.Embedding(V, D, padding_idx=pad)
    emb.load_state_dict({"weight": ds(emb_ref.weight)})
    part = tp.split(emb)
    ids = torch.tensor([[0, 11, 5, 6, 7], [3, 3, 10, 1, 10]])
    out_ref = emb_ref(ids)
    mine_part = part(ds(ids))
    # This rank's part: its rows, zeros for the other rank's ids.
    inside = ((ids >= rank * per) & (ids < (rank + 1) * per)).unsqueeze(-1)
    close(mine_part, out_ref * inside, f"{what}: this rank's part")
    out = tp.all_reduce(mine_part)
    close(out, out_ref, f"{what}: output")
    cot = torch.randn(*out_ref.shape)
    (out_ref * cot).sum().backward()
    (out * ds(cot)).sum().backward()
    close(part.weight.grad, emb_ref.weight.grad[rank * per:(rank + 1) * per],
          f"{what}: weight gradient")
try:
    part(deepseek.tensor([[1, 12]]))
except IndexError as e:
    assert "out of range" in str(e), e
else:
    raise AssertionError("an id outside the vocabulary was accepted")

# A sharded checkpoint of split modules consolidates to the unsplit PyTorch names and
# values (nn.MultiheadAttention, nn.Embedding), loadable with strict=True.
import sys  # noqa: E402

from deepseek.distributed import checkpoint as dcp  # noqa: E402


class Net(deepseek.nn.Module):
    def __init__(self, attn, emb):
        super().__init__()
        self.emb, self.attn = tp.split(emb), tp.split(attn)


torch.manual_seed(4)
attn_ref, emb_ref = torch.nn.MultiheadAttention(E, H), torch.nn.Embedding(V, E)
attn, emb = deepseek.nn.MultiheadAttention(E, H), deepseek.nn.Embedding(V, E)
attn.load_state_dict({k: ds(v) for k, v in attn_ref.state_dict().items()})
emb.load_state_dict({k: ds(v) for k, v in emb_ref.state_dict().items()})
net = Net(attn, emb)
ckpt = sys.argv[1] + "/split"
dcp.save(ckpt, net)
dist.barrier()
if rank == 0:
    dcp.consolidate(ckpt, sys.argv[1] + "/full.safetensors")
    full = deepseek.load(sys.argv[1] + "/full.safetensors")
    want = {**{"attn." + k: v for k, v in attn_ref.state_dict().items()},
            **{"emb." + k: v for k, v in emb_ref.state_dict().items()}}
    assert sorted(full) == sorted(want), (sorted(full), sorted(want))
    for k in want:
        close(full[k], want[k], f"consolidated {k}", tol=0.0)
    t_attn, t_emb = torch.nn.MultiheadAttention(E, H), torch.nn.Embedding(V, E)
    t_attn.load_state_dict({k[5:]: torch.from_numpy(full[k].numpy()) for k in full
                            if k.startswith("attn.")}, strict=True)
    t_emb.load_state_dict({"weight": torch.from_numpy(full["emb.weight"].numpy())},
                          strict=True)
net2 = Net(deepseek.nn.MultiheadAttention(E, H), deepseek.nn.Embedding(V, E))
dcp.load(ckpt, net2)
for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items()):
    close(a, b, f"reloaded {k}", tol=0.0)

# Sizes that do not split, and unsupported modules: clear errors on every rank.
for bad, msg in [(lambda: tp.split(deepseek.nn.MultiheadAttention(6, 3)), "num_heads 3"),
                 (lambda: tp.split(deepseek.nn.Embedding(7, 2)), "vocabulary size 7"),
                 (lambda: tp.split(deepseek.nn.GRU(4, 4)), "GRU is not supported")]:
    try:
        bad()
    except (ValueError, TypeError) as e:
        assert msg in str(e), e
    else:
        raise AssertionError(f"expected an error mentioning {msg!r}")

dist.destroy_process_group()
print(f"rank {rank}: TensorParallel.split attention/embedding ok", flush=True)
