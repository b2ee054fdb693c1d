"""A pruned hyperparameter search on the vision benchmark, at the size the hand-written loop was
measured, within its 2-epoch budget.

    python benchmarks/tune_vision.py [--train-samples 5000] [--eval-samples 2000] [--image-size 96]

The base run is ``vision_pretrained_vs_scratch.py``'s pretrained EfficientNet-Lite0 on Fashion-MNIST.
``omnitune.tune`` searches lr, head_lr, batch size, warmup, schedule and the random-resized crop's
area range (``task.scale``; [1.0, 1.0]: the whole picture, as the hand loop takes it) with the
median pruner, validation accuracy evaluated every ``--eval-every`` steps and compared across
batch sizes at equal training examples seen. Trial 0 is omnitune's default config for this
benchmark (crops of 35-100% of the area), trial 1 the hand loop's settings (batch 64, AdamW 5e-4,
torch's one-cycle schedule with its default 30% warm-up, no crop), both enqueued. Only validation
accuracy chooses (trials skip the test split); the best artifact is evaluated on the test split
once. More worker processes can join the study (``--seed`` differing). Prints the trials' table,
then a JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from vision_pretrained_vs_scratch import add_size_arguments, run_config

SPACE = {
    "train.lr": {"type": "float", "low": 1.0e-4, "high": 3.0e-3, "log": True},
    "train.head_lr": {"type": "float", "low": 3.0e-4, "high": 1.0e-2, "log": True},
    "train.batch_size": {"type": "categorical", "choices": [32, 64]},
    "train.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.3},
    "train.schedule": {"type": "categorical", "choices": ["linear", "cosine", "one-cycle"]},
    "task.scale": {"type": "categorical", "choices": [[0.35, 1.0], [0.7, 1.0], [1.0, 1.0]]},
}
ENQUEUED = (
    ("omnitune defaults", {"train.lr": 1.0e-3, "train.head_lr": 1.0e-3, "train.batch_size": 32,
                           "train.warmup_ratio": 0.06, "train.schedule": "cosine",
                           "task.scale": [0.35, 1.0]}),
    ("hand loop's settings", {"train.lr": 5.0e-4, "train.head_lr": 5.0e-4, "train.batch_size": 64,
                              "train.warmup_ratio": 0.3, "train.schedule": "one-cycle",
                              "task.scale": [1.0, 1.0]}),
)


def base_config(args: argparse.Namespace) -> dict:
    config = run_config(True, argparse.Namespace(**vars(args), lr=1.0e-3, output=args.workdir))
    config["train"] |= {"eval_every": args.eval_every, "keep_checkpoints": 1}
    return config


def enqueue_reference_trials(storage: str) -> None:
    """Trials 0 and 1 of a fresh study: the defaults and the hand loop's settings."""
    import optuna

    study = optuna.create_study(storage=storage, study_name="vision", direction="maximize",
                                load_if_exists=True)
    if not study.trials:
        for name, params in ENQUEUED:
            study.enqueue_trial(params, user_attrs={"reference": name})


def main() -> None:
    import torch

    import omnitune

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_arguments(parser, train_samples=5000, eval_samples=2000, image_size=96)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=105, help="steps between validation passes")
    parser.add_argument("--startup-trials", type=int, default=2, help="trials before pruning starts")
    parser.add_argument("--seed", type=int, default=0, help="seed of this worker's TPE sampler")
    parser.add_argument("--workdir", type=Path, default=Path("runs/tune-vision"))
    args = parser.parse_args()

    torch.set_num_threads(1)
    started = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{args.workdir.resolve()}/study.db"
    enqueue_reference_trials(storage)
    result = omnitune.tune(base_config(args), SPACE, trials=args.trials, pruner="median",
                           startup_trials=args.startup_trials, seed=args.seed, output_dir=args.workdir,
                           storage=storage, study="vision", resume=True)
    rows = json.loads(result.files["trials"].read_text())
    test = omnitune.evaluate(result.best_artifact, split="test")["test_accuracy"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "best_eval_accuracy": result.best_value, "best_params": result.best_params,
        "best_trial": rows[0]["number"], "test_accuracy_of_best": test,
        "references": {r["number"]: r["value"] for r in rows if r["number"] < len(ENQUEUED)},
        "trials": len(rows), "pruned": sum(r["state"] == "pruned" for r in rows),
        "trial_cpu_s": sum(r["cpu_s"] or 0 for r in rows),
        "wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
        "settings": {k: str(v) for k, v in vars(args).items()}}))


if __name__ == "__main__":
    main()
