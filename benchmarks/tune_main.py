"""A hyperparameter search on the main job, against its default config, with and without pruning.

    python benchmarks/tune_main.py [--train-samples 300] [--eval-samples 200] [--trials 12]

Two child processes run side by side on the same data (the main job's Rotten Tomatoes split,
training set subsampled to ``--train-samples``, validation and test to ``--eval-samples``):
``omnitune.tune`` over lr, head_lr, warmup_ratio and epochs with the median pruner, and the same
search (same sampler seed) without pruning. Trial 0 of each is the default config (enqueued), so
the best validation accuracy is compared with the default's on the same data. ``--prune-after
STEPS`` keeps the pruner off until that step (``omnitune.tune`` counts it in training examples:
steps x the main job's batch size, which no trial changes). The search chooses
on validation accuracy only (trials skip the test split); the best artifact is evaluated on the
test split once. Each child reports its own CPU time (user + sys). Studies live in ``--workdir``,
so a run that is stopped can be continued with the same command. Prints a table, then a JSON
object as the last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
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


def default_params() -> dict:
    from omnitune.config import load_config

    train = load_config().train
    return {key: getattr(train, key.removeprefix("train.")) for key in SPACE}


def run_search(args: argparse.Namespace, folder: Path, pruner: str) -> dict:
    import optuna

    import omnitune
    from omnitune.config import load_config

    storage = f"sqlite:///{folder.resolve()}/study.db"
    folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=storage, study_name="main", direction="maximize",
                                load_if_exists=True)
    if not study.trials:
        study.enqueue_trial(default_params(), user_attrs={"default": True})
    result = omnitune.tune(None, SPACE, trials=args.trials, pruner=pruner, startup_trials=3,
                           prune_after=args.prune_after * load_config().train.batch_size,
                           seed=args.seed, output_dir=folder,
                           storage=storage, study="main", resume=True, overrides=base_overrides(args))
    rows = json.loads(result.files["trials"].read_text())
    default = optuna.load_study(study_name="main", storage=storage).trials[0]
    test = omnitune.evaluate(result.best_artifact, split="test")["test_accuracy"]
    return {"best_eval_accuracy": result.best_value, "best_params": result.best_params,
            "best_trial": rows[0]["number"], "default_eval_accuracy": default.value,
            "test_accuracy_of_best": test,
            "trials": len(rows), "pruned": sum(r["state"] == "pruned" for r in rows),
            "trial_cpu_s": sum(r["cpu_s"] or 0 for r in rows),
            "trial_wall_s": sum(r["seconds"] or 0 for r in rows)}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    folder = Path(args.folder)
    started = time.perf_counter()
    figures = run_search(args, folder, args.part)
    figures |= {"wall_s": time.perf_counter() - started, "cpu_s": cpu_seconds(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(figures))


def parent(args: argparse.Namespace) -> None:
    passed = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
              if k in ("train_samples", "eval_samples", "trials", "eval_every", "seed", "prune_after")]
    children = {part: subprocess.Popen(
        [sys.executable, __file__, "--part", part, "--folder", f"{args.workdir}/{part}", *passed],
        stdout=subprocess.PIPE, text=True) for part in ("median", "none")}
    results = {part: json.loads(proc.communicate()[0].strip().splitlines()[-1])
               for part, proc in children.items()}
    pruned, full = results["median"], results["none"]
    print(f"{'search':<24}{'default val':>12}{'best val':>10}{'its test':>10}{'pruned':>8}"
          f"{'trial CPU s':>13}{'trial wall s':>14}", file=sys.stderr)
    for name, row in (("median pruner", pruned), ("no pruning", full)):
        print(f"{name:<24}{row['default_eval_accuracy']:>12.4f}{row['best_eval_accuracy']:>10.4f}"
              f"{row['test_accuracy_of_best']:>10.4f}{row['pruned']:>8}{row['trial_cpu_s']:>13.0f}"
              f"{row['trial_wall_s']:>14.0f}", file=sys.stderr)
    saved = 1 - pruned["trial_cpu_s"] / full["trial_cpu_s"]
    print(f"pruning saved {saved:.1%} of the trials' CPU time", file=sys.stderr)
    print(json.dumps({"search_median": pruned, "search_no_pruning": full,
                      "cpu_saved_by_pruning": saved, "settings": vars(args)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-samples", type=int, default=300)
    parser.add_argument("--eval-samples", type=int, default=200)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--eval-every", type=int, default=5, help="steps between validation passes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")
    parser.add_argument("--prune-after", type=int, default=0,
                        help="no pruning before this step (10 = after the first epoch at the defaults)")
    parser.add_argument("--workdir", default="runs/tune-main", help="studies and the best artifacts")
    parser.add_argument("--part", choices=["median", "none"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.part else parent(args)


if __name__ == "__main__":
    main()
