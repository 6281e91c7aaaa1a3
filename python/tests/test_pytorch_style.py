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
