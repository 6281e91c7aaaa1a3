"""The tutorials' code (shared/seeds/000_*.txt and 004_*.txt) running on deepseek."""

import pytest

import deepseek
import deepseek.nn as nn
from deepseek.optim import AdamW


class TextGenerator(deepseek.nn.Module):
    """004 §2.1, as printed."""

    def __init__(self, vocab_size, hidden_dim):
        super().__init__()
        self.embedding = deepseek.nn.Embedding(vocab_size, hidden_dim)
        self.lstm = deepseek.nn.LSTM(hidden_dim, hidden_dim)
        self.fc = deepseek.nn.Linear(hidden_dim, vocab_size)

    def forward(self, x):
        x = self.embedding(x)
        output, _ = self.lstm(x)
        logits = self.fc(output)
        return logits


def test_textgenerator_training_loop_with_integer_tokens():
    deepseek.manual_seed(0)
    vocab, hidden = 50, 32
    model = TextGenerator(vocab_size=vocab, hidden_dim=hidden)
    optimizer = deepseek.optim.Adam(model.parameters(), lr=0.01)
    inputs = deepseek.randint(0, vocab, (32, 16))
    targets = (inputs + 1) % vocab
    losses = []
    for epoch in range(10):
        optimizer.zero_grad()
        logits = model(inputs)
        assert logits.shape == (32, 16, vocab)
        loss = deepseek.nn.CrossEntropyLoss()(logits.view(-1, vocab), targets.view(-1))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3


def test_textgenerator_with_float_inputs_raises_clear_typeerror():
    """The tutorial feeds deepseek.randn floats to the Embedding: a TypeError naming the
    Embedding and the dtype, not a crash."""
    model = TextGenerator(vocab_size=100, hidden_dim=16)
    inputs = deepseek.randn(32, 64)
    with pytest.raises(TypeError) as e:
        model(inputs)
    msg = str(e.value)
    assert "Embedding" in msg and "float32" in msg and "integer" in msg


def test_trainer_example_from_tutorial_000():
    deepseek.manual_seed(0)
    from deepseek.trainer import Trainer
    from deepseek.utils.data import DataLoader, TensorDataset

    vocab = 30
    model = TextGenerator(vocab, 16)
    x = deepseek.randint(0, vocab, (64, 12))
    y = (x + 1) % vocab
    train_loader = DataLoader(TensorDataset(x[:48], y[:48]), batch_size=8, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[48:], y[48:]), batch_size=8)
    trainer = Trainer(
        model=model,
        optimizer=AdamW(model.parameters(), lr=5e-2),
        fp16_enabled=True,
        gradient_accumulation_steps=4,
    )
    hist = trainer.fit(train_loader, val_loader, epochs=10)
    assert len(hist["val_loss"]) == 10
    assert hist["train_loss"][-1] < hist["train_loss"][0]


def test_gradscaler_loop_from_tutorial_004_on_cpu():
    from deepseek.cuda.amp import GradScaler, autocast
    from deepseek.utils.data import DataLoader, TensorDataset

    deepseek.manual_seed(0)
    vocab = 40
    scaler = GradScaler()
    model = TextGenerator(vocab, 16)  # .cuda() raises on a CPU-only build; see below
    optimizer = deepseek.optim.Adam(model.parameters(), lr=0.01)
    x = deepseek.randint(0, vocab, (32, 8))
    dataloader = DataLoader(TensorDataset(x, (x * 3) % vocab), batch_size=8)
    first = last = None
    for _ in range(6):
        for inputs, targets in dataloader:
            optimizer.zero_grad()
            with autocast():
                logits = model(inputs)
                loss = deepseek.nn.CrossEntropyLoss()(logits.view(-1, vocab), targets.view(-1))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            first = loss.item() if first is None else first
            last = loss.item()
    assert last < first and scaler.get_scale() == 8192.0
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        TextGenerator(vocab, 16).cuda()
