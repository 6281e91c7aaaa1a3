"""Writes textgen_torch.safetensors and textgen_torch.json: a small PyTorch TextGenerator
(Embedding -> LSTM -> Linear) state dict and its logits on a fixed input, to test that
deepseek loads PyTorch's files and computes the same function. Run with PyTorch installed."""
import json
import torch
from safetensors.torch import save_file

torch.manual_seed(0)

class TextGenerator(torch.nn.Module):
    def __init__(self, vocab_size, hidden_dim):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, hidden_dim)
        self.lstm = torch.nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.fc = torch.nn.Linear(hidden_dim, vocab_size)

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        return self.fc(out)

m = TextGenerator(11, 6)
x = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 10]])
with torch.no_grad():
    y = m(x)
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, "textgen_torch.safetensors")
json.dump({"input": x.tolist(), "logits": y.flatten().tolist(), "shape": list(y.shape)}, open("textgen_torch.json", "w"))
