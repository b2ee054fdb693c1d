"""The main job against two baselines on the same held-out split.

    python benchmarks/text_baselines.py [--set KEY=VALUE ...]

Runs (1) the majority class of the training split, (2) a linear probe (frozen pretrained
backbone, only the head trains) and (3) the full fine-tune of the built-in default run, all on
the default config's dataset split. Prints a table, then a JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter

import omnitune
from omnitune.api import compose_config
from omnitune.build import build_dataset
from omnitune.config import validate_components


def majority_accuracy(overrides: list[str]) -> float:
    run = compose_config(overrides=overrides)
    plugins = omnitune.load_plugins()
    splits = build_dataset(run, validate_components(run, plugins.registry), plugins.registry)
    majority, _ = Counter(e.label for e in splits.train).most_common(1)[0]
    return sum(e.label == majority for e in splits.test) / len(splits.test)


def timed_run(overrides: list[str], output_dir: str) -> dict[str, float]:
    started = time.perf_counter()
    result = omnitune.finetune(overrides=[*overrides, f"output_dir={output_dir}", "train.progress=false"])
    metrics = result.metrics
    return {"test_accuracy": metrics["test_accuracy"], "test_macro_f1": metrics["test_macro_f1"],
            "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results = {
            "majority_class": {"test_accuracy": majority_accuracy(args.overrides)},
            "linear_probe": timed_run([*args.overrides, "train.strategy=freeze-backbone",
                                       "train.head_lr=1e-2"], f"{scratch}/probe"),
            "fine_tune": timed_run(args.overrides, f"{scratch}/finetune"),
        }
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'run':<16}{'test accuracy':>15}{'wall s':>10}", file=sys.stderr)
    for name, row in results.items():
        print(f"{name:<16}{row['test_accuracy']:>15.4f}{row.get('wall_s', 0):>10.1f}", file=sys.stderr)
    print(json.dumps({**results, "peak_rss_mb": peak_mb}))


if __name__ == "__main__":
    main()
