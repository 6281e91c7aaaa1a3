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
