"""A small CNN classifier trained on MNIST-like random data, written as a user would write it for real torch.

Usage: python small_cnn.py --out losses.json [--steps N]
Runs unmodified on real torch and under the shim (SHIM_BACKEND=mindspore); writes the per-step losses and the final
test accuracy as JSON.
"""
import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))      # [B, 8, 8, 8]
        x = self.pool(F.relu(self.conv2(x)))      # [B, 16, 3, 3]
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    torch.manual_seed(0)
    if torch.accelerator.is_available():
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")
    torch.backends.cudnn.benchmark = True

    images = torch.rand(256, 1, 16, 16)
    labels = torch.randint(0, 10, (256,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)

    model = Net().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    losses = []
    model.train()
    step = 0
    while step < args.steps:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            print(f"step {step}: loss {loss.item():.6f}")
            step += 1
            if step == args.steps:
                break

    model.eval()
    with torch.no_grad():
        pred = model(images[:64].to(device)).argmax(dim=1)
        accuracy = (pred == labels[:64].to(device)).float().mean().item()
    with open(args.out, "w") as f:
        json.dump({"torch_version": torch.__version__, "device": str(device), "losses": losses,
                   "accuracy": accuracy}, f)


if __name__ == "__main__":
    main()
