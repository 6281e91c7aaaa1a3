"""Writes the references of the Rust DP-SGD tests (crates/deepseek/tests/privacy.rs):

* rdp_dp_accounting.json: ε of Google's dp-accounting 0.4.4 ``RdpAccountant`` for a grid of
  (q, σ, steps, δ) of the Poisson-subsampled Gaussian mechanism;
* dp_textgen_torch.json: two small PyTorch TextGenerators (Embedding -> LSTM ->
  Linear; 1 and 2 LSTM layers) in float64, a batch of ids/targets, and each sample's
  gradient of its mean cross-entropy computed by PyTorch on that sample alone.

Run from this directory with PyTorch and dp-accounting installed."""
import json

import dp_accounting as dpa
import torch
from dp_accounting import rdp

GRID = [(q, s, n, d)
        for q in (1e-3, 256 / 60000, 0.01, 0.1, 1.0)
        for s in (0.5, 1.1, 4.0)
        for n in (1, 100, 14062)
        for d in (1e-5, 1e-3)]


def rdp_eps(q, sigma, steps, delta):
    acc = rdp.RdpAccountant()
    acc.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)), steps)
    return acc.get_epsilon(delta)


cases = [{"q": q, "sigma": s, "steps": n, "delta": d, "epsilon": rdp_eps(q, s, n, d)}
         for q, s, n, d in GRID]
with open("rdp_dp_accounting.json", "w") as f:
    json.dump({"reference": "dp-accounting 0.4.4 RdpAccountant", "cases": cases}, f, indent=1)


class TextGenerator(torch.nn.Module):
    def __init__(self, vocab, embed, hidden, layers):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.fc = torch.nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.fc(self.lstm(self.embedding(x))[0])


torch.manual_seed(0)
out = {}
vocab, batch, seq = 7, 3, 5
for layers in (1, 2):
    m = TextGenerator(vocab, 5, 4, layers).double()
    x = torch.randint(0, vocab, (batch, seq))
    y = torch.randint(0, vocab, (batch, seq))
    pre = f"l{layers}."
    for k, v in m.state_dict().items():
        out[pre + "param." + k] = v
    out[pre + "x"], out[pre + "y"] = x, y
    for b in range(batch):
        m.zero_grad()
        logits = m(x[b:b + 1])
        torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), y[b]).backward()
        for k, p in m.named_parameters():
            out[f"{pre}grad{b}.{k}"] = p.grad.detach().clone()
with open("dp_textgen_torch.json", "w") as f:
    json.dump({k: {"shape": list(v.shape), "data": v.flatten().tolist()} for k, v in out.items()},
              f)
print(f"{len(cases)} RDP cases, {len(out)} tensors")
