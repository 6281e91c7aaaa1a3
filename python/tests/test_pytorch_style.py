"""Ordinary PyTorch training code, run with ``import deepseek as torch``."""

import deepseek as torch
import deepseek.nn as nn
import deepseek.nn.functional as F
from deepseek.utils.data import DataLoader, TensorDataset


def test_cnn_training_script(tmp_path, capsys):
    path = str(tmp_path / "cnn.pt")
    torch.manual_seed(0)
    X = torch.randn(256, 1, 8, 8)
    y = (X.mean(dim=(1, 2, 3)) > 0).long()

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(2, 2)
            self.fc1 = nn.Linear(8 * 4 * 4, 32)
            self.dropout = nn.Dropout(0.1)
            self.fc2 = nn.Linear(32, 2)

        def forward(self, x):
            x = self.pool(F.relu(self.bn1(self.conv1(x))))
            x = torch.flatten(x, 1)
            x = self.dropout(F.relu(self.fc1(x)))
            return self.fc2(x)

    model = CNN()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
    accs = []
    for epoch in range(6):
        model.train()
        running = 0.0
        for i, (inputs, labels) in enumerate(loader):
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            running += loss.item() * inputs.size(0)
        scheduler.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for inputs, labels in loader:
                outputs = model(inputs)
                _, predicted = torch.max(outputs.data, 1)
                total += labels.size(0)
                correct += (predicted == labels).sum().item()
        accs.append(correct / total)
        print(f"epoch {epoch} loss {running / len(loader.dataset):.4f} acc {100 * correct / total:.1f}% lr {scheduler.get_last_lr()[0]}")
    torch.save(model.state_dict(), path)
    m2 = CNN(); m2.load_state_dict(torch.load(path, map_location="cpu")); m2.eval()
    with torch.no_grad():
        a = model(X[:4]); b = m2(X[:4])
    assert torch.allclose(a, b) and max(accs) > 0.85
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 4290
    x = torch.randn(3, requires_grad=True)
    y2 = x.exp().sum()
    y2.backward()
    assert x.grad.shape == (3,) and torch.tensor([[1, 2], [3, 4]]).float().mean().item() == 2.5
    assert "(conv1): Conv2d(1, 8, kernel_size=(3, 3)" in repr(model)


def test_pytorch_quickstart_verbatim(tmp_path, capsys):
    """PyTorch's quickstart tutorial (with random data instead of FashionMNIST)."""
    from deepseek import nn
    from deepseek.utils.data import DataLoader, TensorDataset

    path = str(tmp_path / "model.pth")
    device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
    torch.manual_seed(0)
    X = torch.rand(512, 1, 28, 28); y = (X.mean((1, 2, 3)) * 20).long() % 10
    train_dataloader = DataLoader(TensorDataset(X, y), batch_size=64)
    test_dataloader = DataLoader(TensorDataset(X, y), batch_size=64)
    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(nn.Linear(28*28, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits
    model = NeuralNetwork().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-1)
    def train(dataloader, model, loss_fn, optimizer):
        size = len(dataloader.dataset)
        model.train()
        for batch, (X, y) in enumerate(dataloader):
            X, y = X.to(device), y.to(device)
            pred = model(X)
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if batch % 4 == 0:
                loss, current = loss.item(), (batch + 1) * len(X)
                print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")
    def test(dataloader, model, loss_fn):
        size = len(dataloader.dataset)
        num_batches = len(dataloader)
        model.eval()
        test_loss, correct = 0, 0
        with torch.no_grad():
            for X, y in dataloader:
                X, y = X.to(device), y.to(device)
                pred = model(X)
                test_loss += loss_fn(pred, y).item()
                correct += (pred.argmax(1) == y).type(torch.float).sum().item()
        test_loss /= num_batches
        correct /= size
        print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    for t in range(2):
        print(f"Epoch {t+1}\n-------------------------------")
        train(train_dataloader, model, loss_fn, optimizer)
        test(test_dataloader, model, loss_fn)
    torch.save(model.state_dict(), path)
    model = NeuralNetwork().to(device)
    model.load_state_dict(torch.load(path, weights_only=True))
    print(model)
    out = capsys.readouterr().out
    assert out.count("Test Error") == 2 and "Accuracy:" in out
    assert "(4): Linear(in_features=128, out_features=10, bias=True)" in out
    losses = [float(line.split()[1]) for line in out.splitlines() if line.startswith("loss:")]
    assert losses[-1] < losses[0]


def test_karpathy_style_gpt_verbatim(capsys):
    """A small character-level GPT written as in Karpathy's nanoGPT lecture (gpt.py):
    attention heads from Linear/masked_fill/softmax, Embedding tables, LayerNorm, AdamW,
    @no_grad evaluation, multinomial generation."""
    import deepseek.nn as nn
    from deepseek.nn import functional as F

    torch.manual_seed(1337)
    text = "hello world, this is a tiny corpus for a tiny gpt. " * 50
    chars = sorted(list(set(text))); vocab_size = len(chars)
    stoi = {ch: i for i, ch in enumerate(chars)}; itos = {i: ch for i, ch in enumerate(chars)}
    encode = lambda s: [stoi[c] for c in s]; decode = lambda l: ''.join([itos[i] for i in l])
    data = torch.tensor(encode(text), dtype=torch.long)
    n = int(0.9 * len(data)); train_data = data[:n]; val_data = data[n:]
    block_size, batch_size, n_embd, n_head, n_layer, dropout = 16, 8, 32, 4, 2, 0.1
    def get_batch(split):
        data = train_data if split == 'train' else val_data
        ix = torch.randint(len(data) - block_size, (batch_size,))
        x = torch.stack([data[i:i+block_size] for i in ix])
        y = torch.stack([data[i+1:i+block_size+1] for i in ix])
        return x, y
    class Head(nn.Module):
        def __init__(self, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer('tril', torch.tril(torch.ones(block_size, block_size)))
            self.dropout = nn.Dropout(dropout)
        def forward(self, x):
            B, T, C = x.shape
            k = self.key(x); q = self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1]**-0.5
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))
            wei = F.softmax(wei, dim=-1)
            wei = self.dropout(wei)
            v = self.value(x)
            return wei @ v
    class MultiHeadAttention(nn.Module):
        def __init__(self, num_heads, head_size):
            super().__init__()
            self.heads = nn.ModuleList([Head(head_size) for _ in range(num_heads)])
            self.proj = nn.Linear(head_size * num_heads, n_embd)
            self.dropout = nn.Dropout(dropout)
        def forward(self, x):
            out = torch.cat([h(x) for h in self.heads], dim=-1)
            return self.dropout(self.proj(out))
    class FeedFoward(nn.Module):
        def __init__(self, n_embd):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))
        def forward(self, x):
            return self.net(x)
    class Block(nn.Module):
        def __init__(self, n_embd, n_head):
            super().__init__()
            head_size = n_embd // n_head
            self.sa = MultiHeadAttention(n_head, head_size)
            self.ffwd = FeedFoward(n_embd)
            self.ln1 = nn.LayerNorm(n_embd); self.ln2 = nn.LayerNorm(n_embd)
        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            x = x + self.ffwd(self.ln2(x))
            return x
    class GPTLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
            self.position_embedding_table = nn.Embedding(block_size, n_embd)
            self.blocks = nn.Sequential(*[Block(n_embd, n_head=n_head) for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.lm_head = nn.Linear(n_embd, vocab_size)
            self.apply(self._init_weights)
        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        def forward(self, idx, targets=None):
            B, T = idx.shape
            tok_emb = self.token_embedding_table(idx)
            pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))
            x = tok_emb + pos_emb
            x = self.blocks(x)
            x = self.ln_f(x)
            logits = self.lm_head(x)
            if targets is None:
                loss = None
            else:
                B, T, C = logits.shape
                logits = logits.view(B*T, C)
                targets = targets.view(B*T)
                loss = F.cross_entropy(logits, targets)
            return logits, loss
        def generate(self, idx, max_new_tokens):
            for _ in range(max_new_tokens):
                idx_cond = idx[:, -block_size:]
                logits, loss = self(idx_cond)
                logits = logits[:, -1, :]
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx
    model = GPTLanguageModel()
    print(sum(p.numel() for p in model.parameters())/1e6, 'M parameters')
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ['train', 'val']:
            losses = torch.zeros(5)
            for k in range(5):
                X, Y = get_batch(split)
                logits, loss = model(X, Y)
                losses[k] = loss.item()
            out[split] = losses.mean()
        model.train()
        return out
    history = []
    for iter in range(60):
        if iter % 20 == 0:
            losses = estimate_loss()
            history.append(losses['val'].item())
            print(f"step {iter}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        xb, yb = get_batch('train')
        logits, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    context = torch.zeros((1, 1), dtype=torch.long, device='cpu')
    sample = decode(model.generate(context, max_new_tokens=40)[0].tolist())
    assert len(sample) == 41 and history[-1] < history[0] - 1.0
