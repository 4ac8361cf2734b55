"""Train the exported network of trial {TRIAL} of study {STUDY}: {ARCH}

    python train.py                                  # smoke run on random tensors
    python train.py --data train.npz --epochs 200    # x: N x H x W x 3 uint8, y: N labels

Written by `python -m mote_optuna export`. Needs torch, and mote_optuna for the architecture
code. It rebuilds the network, loads the exported initial weights (ONNX: the same seed gives the
same initial weights, since the ONNX graph has BatchNorm folded), trains it with SGD + Nesterov
momentum and a cosine schedule (NAS-Bench-201's recipe), and writes the trained network in the
exported format next to this file.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

HERE = Path(__file__).resolve().parent
META = json.loads((HERE / "arch.json").read_text())
FORMAT = META["format"]
TRAINED = {
    "pytorch": "trained.pt",
    "torchscript": "trained.torchscript.pt",
    "onnx": "trained.onnx",
}


def build() -> nn.Module:
    from mote_optuna.spaces import get_space

    space = get_space(META["space"])
    torch.manual_seed(META["seed"])
    model = space.build_full(space.from_str(META["arch"]), num_classes=META["num_classes"])
    weights = HERE / META["model_file"]
    if FORMAT == "pytorch":
        model.load_state_dict(torch.load(weights, weights_only=True)["state_dict"])
    elif FORMAT == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model.load_state_dict(torch.jit.load(str(weights)).state_dict())
    return model


def load_data(path: str | None, n_random: int) -> tuple[torch.Tensor, torch.Tensor]:
    if path is None:
        print("no --data: training on random tensors (a smoke test of this script)")
        g = torch.Generator().manual_seed(0)
        r = META["resolution"]
        x = torch.randn(n_random, 3, r, r, generator=g)
        return x, torch.randint(0, META["num_classes"], (n_random,), generator=g)
    arrays = np.load(path)
    x = torch.as_tensor(arrays["x"])
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)
    return x.contiguous(), torch.as_tensor(arrays["y"]).long()


def save(model: nn.Module, path: Path) -> None:
    model = model.cpu().eval()
    r = META["resolution"]
    example = torch.zeros(1, 3, r, r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if FORMAT == "pytorch":
            torch.save({"state_dict": model.state_dict(), "arch": META["arch"]}, path)
        elif FORMAT == "torchscript":
            with torch.no_grad():
                torch.jit.trace(model, example).save(str(path))
        else:
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                external_data=False,
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=".npz with x (N,H,W,3 uint8 or N,3,H,W) and y")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=HERE / TRAINED[FORMAT])
    args = parser.parse_args()

    x, y = load_data(args.data, n_random=4 * args.batch_size)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True)
    model = build().to(args.device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=args.weight_decay,
    )
    total = args.epochs * len(loader)
    total = min(total, args.steps) if args.steps else total
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    model.train()
    while step < total:
        for images, labels in loader:
            images, labels = images.to(args.device), labels.to(args.device)
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % 50 == 0 or step == total:
                print(f"step {step}/{total}  loss {loss.item():.4f}")
            if step >= total:
                break
    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(images.to(args.device)).argmax(1).cpu() == labels).sum().item()
            for images, labels in DataLoader(TensorDataset(x, y), batch_size=256)
        )
    print(f"training accuracy {correct / len(y):.4f}")
    save(model, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
