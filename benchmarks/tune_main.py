"""A hyperparameter search on the main job, against its default config, with and without pruning.

    python benchmarks/tune_main.py [--train-samples 1000] [--eval-samples 500] [--trials 12]

Three child processes run side by side on the same data (the main job's Rotten Tomatoes split,
training set subsampled to ``--train-samples``, validation and test to ``--eval-samples``):
(1) the default config, (2) ``omnitune.tune`` over lr, head_lr, warmup_ratio and epochs with the
median pruner, (3) the same search (same sampler seed) without pruning. The search chooses on
validation accuracy only; the best trial's test accuracy is read once from its artifact. Each
child reports its own CPU time (user + sys). Prints a table, then a JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = {
    "train.lr": {"type": "float", "low": 1.0e-5, "high": 2.0e-4, "log": True},
    "train.head_lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
    "train.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.3},
    "train.epochs": {"type": "int", "low": 1, "high": 3},
}


def base_overrides(args: argparse.Namespace) -> list[str]:
    return [f"dataset.max_train_samples={args.train_samples}",
            f"dataset.max_eval_samples={args.eval_samples}",
            f"train.eval_every={args.eval_every}", "train.progress=false", "train.keep_checkpoints=1"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_default(args: argparse.Namespace, folder: Path) -> dict:
    import omnitune

    result = omnitune.finetune(overrides=[*base_overrides(args), f"output_dir={folder}"])
    return {"eval_accuracy": result.metrics["eval_accuracy"],
            "test_accuracy": result.metrics["test_accuracy"]}


def run_search(args: argparse.Namespace, folder: Path, pruner: str) -> dict:
    import omnitune

    result = omnitune.tune(None, SPACE, trials=args.trials, pruner=pruner, startup_trials=3,
                           seed=args.seed, output_dir=folder, overrides=base_overrides(args))
    rows = json.loads(result.files["trials"].read_text())
    test = json.loads((result.best_artifact / "metrics.json").read_text())["test_accuracy"]
    return {"best_eval_accuracy": result.best_value, "best_params": result.best_params,
            "test_accuracy_of_best": test,
            "trials": len(rows), "pruned": sum(r["state"] == "pruned" for r in rows),
            "trial_cpu_s": sum(r["cpu_s"] or 0 for r in rows)}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    folder = Path(args.folder)
    started = time.perf_counter()
    figures = run_default(args, folder) if args.part == "default" else run_search(args, folder, args.part)
    figures |= {"wall_s": time.perf_counter() - started, "cpu_s": cpu_seconds(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(figures))


def parent(args: argparse.Namespace) -> None:
    passed = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
              if k in ("train_samples", "eval_samples", "trials", "eval_every", "seed")]
    with tempfile.TemporaryDirectory() as scratch:
        children = {part: subprocess.Popen(
            [sys.executable, __file__, "--part", part, "--folder", f"{scratch}/{part}", *passed],
            stdout=subprocess.PIPE, text=True) for part in ("default", "median", "none")}
        results = {part: json.loads(proc.communicate()[0].strip().splitlines()[-1])
                   for part, proc in children.items()}
    default, pruned, full = results["default"], results["median"], results["none"]
    print(f"{'run':<26}{'val acc':>9}{'test acc':>10}{'pruned':>8}{'CPU s':>9}{'wall s':>9}", file=sys.stderr)
    print(f"{'default config':<26}{default['eval_accuracy']:>9.4f}{default['test_accuracy']:>10.4f}"
          f"{'':>8}{default['cpu_s']:>9.0f}{default['wall_s']:>9.0f}", file=sys.stderr)
    for name, row in (("search, median pruner", pruned), ("search, no pruning", full)):
        print(f"{name:<26}{row['best_eval_accuracy']:>9.4f}{row['test_accuracy_of_best']:>10.4f}"
              f"{row['pruned']:>8}{row['cpu_s']:>9.0f}{row['wall_s']:>9.0f}", file=sys.stderr)
    saved = 1 - pruned["cpu_s"] / full["cpu_s"]
    print(f"pruning saved {saved:.1%} of the search's CPU time", file=sys.stderr)
    print(json.dumps({"default": default, "search_median": pruned, "search_no_pruning": full,
                      "cpu_saved_by_pruning": saved, "settings": vars(args)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--eval-every", type=int, default=16, help="steps between validation passes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")
    parser.add_argument("--part", choices=["default", "median", "none"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.part else parent(args)


if __name__ == "__main__":
    main()
