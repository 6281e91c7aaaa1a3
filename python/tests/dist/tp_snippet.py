"""The tutorials' TensorParallel snippet (seeds/004 §2.3), as printed, on 4 ranks
(mpirun -np 4), compared with the unsplit LSTM: outputs and gradients."""
import deepseek
from deepseek.distributed import TensorParallel


class ParallelLSTM(deepseek.nn.Module):
    def __init__(self, hidden_dim):
        super().__init__()
        self.tp = TensorParallel(world_size=4)
        self.lstm = self.tp.split(deepseek.nn.LSTM(hidden_dim, hidden_dim))
    def forward(self, x):
        return self.tp.all_reduce(self.lstm(x))


# ---- the check (not part of the snippet)
import os  # noqa: E402

import deepseek.distributed as dist  # noqa: E402

# Ranks start from different weights: split() must use rank 0's.
deepseek.manual_seed(int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
model = ParallelLSTM(8)
rank = dist.get_rank()
# The unsplit LSTM with rank 0's weights (split() broadcast them from rank 0 too).
deepseek.manual_seed(rank)
full = deepseek.nn.LSTM(8, 8)
for p in full.parameters():
    dist.broadcast(p.detach(), src=0)
full_copy = {k: v.detach().clone() for k, v in full.state_dict().items()}
model_ref = deepseek.nn.LSTM(8, 8)
model_ref.load_state_dict(full_copy)

deepseek.manual_seed(42)
x = deepseek.randn(5, 3, 8)
out, (h, c) = model(x)
ref, (hr, cr) = model_ref(x)
for a, b, what in [(out, ref, "output"), (h, hr, "h_n"), (c, cr, "c_n")]:
    d = (a - b).abs().max().item()
    assert d < 1e-5, f"{what}: {d}"
(out.sum() + (out * out).sum()).backward()
(ref.sum() + (ref * ref).sum()).backward()
H = 8 // 4
for name in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]:
    g = getattr(model.lstm, name).grad
    gr = getattr(model_ref, name).grad
    mine = deepseek.cat([gr[k * 8 + rank * H:k * 8 + (rank + 1) * H] for k in range(4)], 0)
    d = (g - mine).abs().max().item()
    assert d < 1e-4, f"gradient of {name}: {d}"
dist.destroy_process_group()
print(f"rank {rank}: tensor parallel ok", flush=True)
