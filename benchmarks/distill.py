"""A fine-tuned teacher against smaller students made from its own weights.

    python benchmarks/distill.py --teacher runs/teacher/artifact [--layers 0,2,4] \\
        [--workdir runs/distill-bench] [--students alone,distilled,uncached] [--reuse] \\
        [--no-speed] [--set KEY=VALUE ...]

Without ``--teacher`` the main job (``omnitune train``) is trained first as the teacher. The
students keep ``--layers`` of the teacher's encoder, with the teacher's weights, and are then
fine-tuned with the teacher's settings (plus ``--set``), those named by ``--students``:
``alone``, ``distilled`` (from the teacher, its logits cached once for the training split) and
``uncached`` (the same, the teacher run at every step). For each model: test accuracy,
parameters, inference latency at batch 1 and throughput at batch 32 through ``Predictor``
(tokenisation included) on the test split's texts, and the training time (wall and CPU), with
the CPU seconds of each epoch's training steps (validation excluded) and of the setup before
the first step (loading, and the teacher's logits when cached). With ``--reuse`` a student
whose ``WORKDIR/NAME/artifact`` exists is measured as it is, not retrained (its training time
is then not measured); ``--no-speed`` skips latency and throughput. Prints a table, then a JSON object last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import omnitune
from omnitune.build import build_dataset
from omnitune.compress import compress
from omnitune.config import validate_components
from omnitune.hookspecs import hookimpl

LATENCY_INPUTS = 100
THROUGHPUT_BATCHES = 10


class EpochClock:
    """Loop events that note this process's CPU clock: when training starts (after the setup),
    after each step and after each validation, so that an epoch's steps are timed on their own."""

    def __init__(self) -> None:
        self.fit_start = 0.0
        self.epoch_start: list[float] = []
        self.last_step: dict[int, float] = {}

    @hookimpl
    def on_fit_start(self, state: Any) -> None:
        self.fit_start = time.process_time()
        self.epoch_start = [self.fit_start]

    @hookimpl
    def on_step_end(self, state: Any, logs: dict[str, float]) -> None:
        self.last_step[state.epoch] = time.process_time()

    @hookimpl
    def on_evaluate_end(self, state: Any, split: str, metrics: dict[str, float]) -> None:
        if split == "eval":
            self.epoch_start.append(time.process_time())

    def epoch_cpu_s(self) -> list[float]:
        return [self.last_step[epoch] - start for epoch, start in enumerate(self.epoch_start)
                if epoch in self.last_step]


def timed(action: Callable[[list[object]], Path]) -> tuple[Path, dict[str, Any]]:
    """Run ``action`` with an epoch clock as its callback; its wall and CPU seconds (all threads
    of this process), the setup's CPU seconds and each epoch's training-step CPU seconds."""
    clock = EpochClock()
    wall, cpu = time.perf_counter(), time.process_time()
    result = action([clock])
    return result, {"train_wall_s": time.perf_counter() - wall, "train_cpu_s": time.process_time() - cpu,
                    "setup_cpu_s": clock.fit_start - cpu if clock.fit_start else None,
                    "epoch_step_cpu_s": clock.epoch_cpu_s()}


def test_texts(artifact: Path) -> list[str]:
    predictor = omnitune.Predictor.load(artifact)
    run, plugins = predictor.config, predictor.plugins
    splits = build_dataset(run, validate_components(run, plugins.registry), plugins.registry)
    return [example.text for example in splits.test]


def speed(artifact: Path, texts: list[str]) -> dict[str, float]:
    """Median batch-1 latency and batch-32 throughput, wall and CPU, on the CPU."""
    predictor = omnitune.Predictor.load(artifact, device="cpu")
    predictor.predict(texts[:32], batch_size=32)  # warm up
    walls, cpus = [], []
    for text in texts[:LATENCY_INPUTS]:
        wall, cpu = time.perf_counter(), time.process_time()
        predictor.predict([text], batch_size=1)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    batch = texts[:32 * THROUGHPUT_BATCHES]
    wall, cpu = time.perf_counter(), time.process_time()
    predictor.predict(batch, batch_size=32)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"latency_b1_ms": 1000 * statistics.median(walls),
            "latency_b1_cpu_ms": 1000 * statistics.median(cpus),
            "throughput_b32_per_s": len(batch) / wall, "throughput_b32_per_cpu_s": len(batch) / cpu}


def describe(artifact: Path, texts: list[str], training: dict[str, Any],
             measure_speed: bool) -> dict[str, Any]:
    metrics = json.loads((artifact / "metrics.json").read_text(encoding="utf-8"))
    model = omnitune.Predictor.load(artifact, device="cpu").task.model
    return {"test_accuracy": metrics.get("test_accuracy"), "test_macro_f1": metrics.get("test_macro_f1"),
            "parameters": sum(p.numel() for p in model.parameters()),
            **(speed(artifact, texts) if measure_speed else {}), **training, "artifact": str(artifact)}


def students(teacher: Path, workdir: Path, layers: list[int], overrides: list[str],
             chosen: list[str], reuse: bool) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Train (or with ``reuse``, find) each ``chosen`` student: name -> (artifact, training costs)."""
    quiet = [*overrides, "train.progress=false"]
    runs = {"student_alone": ("alone", {"fine_tune": True}, quiet),
            "student_distilled": ("distilled", {"distill": True},
                                  [*quiet, "train.distill.cache_logits=true"]),
            "student_distilled_uncached": ("uncached", {"distill": True}, quiet)}
    results: dict[str, tuple[Path, dict[str, Any]]] = {}
    for name, (folder, mode, settings) in runs.items():
        if folder not in chosen:
            continue
        if reuse and (workdir / folder / "artifact" / "metrics.json").is_file():
            results[name] = workdir / folder / "artifact", {"reused": True}
            continue
        results[name] = timed(lambda callbacks, folder=folder, mode=mode, settings=settings: compress(
            teacher, workdir / folder, layers=layers, overrides=settings, callbacks=callbacks, **mode))
        print(f"{name} trained: {json.dumps(results[name][1])}", file=sys.stderr, flush=True)
    return results


def print_table(results: dict[str, dict[str, Any]]) -> None:
    nan = float("nan")
    header = (f"{'model':<28}{'test acc':>9}{'params':>12}{'b1 ms':>8}{'b1 cpu ms':>10}"
              f"{'b32 /s':>8}{'b32 /cpu s':>11}{'train s':>9}{'train cpu s':>12}{'epoch cpu s':>12}")
    print(header, file=sys.stderr)
    for name, row in results.items():
        print(f"{name:<28}{row['test_accuracy'] or nan:>9.4f}{row['parameters']:>12,}"
              f"{row.get('latency_b1_ms', nan):>8.1f}{row.get('latency_b1_cpu_ms', nan):>10.1f}"
              f"{row.get('throughput_b32_per_s', nan):>8.1f}{row.get('throughput_b32_per_cpu_s', nan):>11.1f}"
              f"{row.get('train_wall_s', nan):>9.0f}{row.get('train_cpu_s', nan):>12.0f}"
              f"{statistics.mean(row.get('epoch_step_cpu_s') or [nan]):>12.0f}",
              file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, help="teacher artifact; default: train the main job")
    parser.add_argument("--layers", default="0,2,4", help="teacher layers the students keep")
    parser.add_argument("--workdir", type=Path, default=Path("runs/distill-bench"))
    parser.add_argument("--students", default="alone,distilled",
                        help="of alone, distilled (cached teacher logits), uncached (teacher each step)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure students already trained under --workdir instead of retraining them")
    parser.add_argument("--no-speed", dest="speed", action="store_false",
                        help="skip latency and throughput (training costs and accuracy only)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    layers = [int(part) for part in args.layers.split(",")]
    training: dict[str, Any] = {}
    if args.teacher is None:
        result, training = timed(lambda callbacks: omnitune.finetune(
            overrides=[*args.overrides, f"output_dir={args.workdir / 'teacher'}",
                       "train.progress=false"], callbacks=callbacks).artifact)
        args.teacher = result
    texts = test_texts(args.teacher)
    results = {"teacher": describe(args.teacher, texts, training, args.speed)}
    for name, (artifact, cost) in students(args.teacher, args.workdir, layers, args.overrides,
                                           args.students.split(","), args.reuse).items():
        results[name] = describe(artifact, texts, cost, args.speed)
    teacher = results["teacher"]
    for row in results.values():
        row["accuracy_vs_teacher"] = row["test_accuracy"] / teacher["test_accuracy"]
        if args.speed:
            row["throughput_vs_teacher"] = row["throughput_b32_per_s"] / teacher["throughput_b32_per_s"]
            row["cpu_throughput_vs_teacher"] = (row["throughput_b32_per_cpu_s"]
                                                / teacher["throughput_b32_per_cpu_s"])
    print_table(results)
    print(json.dumps({**results, "layers": layers, "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
