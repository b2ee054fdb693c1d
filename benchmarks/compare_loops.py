"""omnitune's loop against a hand-written PyTorch loop and Hugging Face Trainer.

    python benchmarks/compare_loops.py [--steps 60] [--warmup 10] [--repeats 3] [--workloads text image]

Same model, data, batch size, optimizer and precision for all three: AdamW (PyTorch's default,
unfused implementation) with weight decay on weight matrices and embeddings only, not on biases
and norms (omnitune's and HF Trainer's split), a linear schedule and gradient clipping;
each runs in its own process so peak memory is its own, and the loops take turns (--repeats
rounds) so that drift in the machine's load hits all of them; the median run of each is kept.
Workers run with fixed glibc malloc thresholds (see STEADY_MALLOC). The data are pre-built
tensors, so what differs is the loop alone. Prints a table, then a JSON object as the last line
with samples/s, time per step and peak memory of each, and the ratios omnitune/hand-written and
omnitune/HF.
Needs the bench extra (installed by scripts/bootstrap.sh) for HF Trainer; the image workload needs timm.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

LOOPS = ("hand-written", "omnitune", "hf-trainer")
# Fixed glibc malloc thresholds for every worker: with glibc's dynamic ones, whether a process
# returns freed activation memory to the OS and faults it back in every step (0 to ~13,000 page
# faults per step, 10% of the step time) changes from run to run of the same loop.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(128 * 2**20)}


class Classifier(nn.Module):
    """backbone + head, the shape every omnitune task model has."""

    def __init__(self, workload: str) -> None:
        super().__init__()
        if workload == "text":
            from transformers import BertConfig, BertModel

            config = BertConfig(vocab_size=4000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                intermediate_size=1024, max_position_embeddings=128)
            self.backbone, features = BertModel(config, add_pooling_layer=False), 256
        else:
            import timm

            self.backbone = timm.create_model("resnet18", pretrained=False, num_classes=0)
            features = self.backbone.num_features
        self.head = nn.Linear(features, 2)
        self.workload = workload

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.workload == "text":
            return self.head(self.backbone(input_ids=inputs).last_hidden_state[:, 0])
        return self.head(self.backbone(inputs))


def make_data(workload: str, count: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    if workload == "text":
        inputs = torch.randint(0, 4000, (count, 64), generator=generator)
    else:
        inputs = torch.randn(count, 3, 96, 96, generator=generator)
    labels = torch.randint(0, 2, (count,), generator=generator)
    return [{"inputs": inputs[i], "labels": labels[i]} for i in range(count)]


def collate(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([e[key] for e in examples]) for key in examples[0]}


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups as omnitune and HF Trainer build them: no decay on biases and norms."""
    parameters = list(model.parameters())
    return [{"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0}]


def run_hand_written(model: nn.Module, data: list, batch: int, steps: int, device: torch.device,
                     dtype: torch.dtype | None) -> list[float]:
    optimizer = torch.optim.AdamW(decay_groups(model, 0.01), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, collate_fn=collate,
                                         drop_last=True)
    stamps, model = [time.perf_counter()], model.to(device).train()
    while len(stamps) <= steps:
        for batch_data in loader:
            inputs, labels = batch_data["inputs"].to(device), batch_data["labels"].to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = nn.functional.cross_entropy(model(inputs).float(), labels)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()
            stamps.append(time.perf_counter())
            if len(stamps) > steps:
                break
    return stamps


def run_omnitune(model: nn.Module, data: list, batch: int, steps: int, device: torch.device,
                 precision: str) -> list[float]:
    import tempfile

    import omnitune
    from omnitune.config import TrainConfig
    from omnitune.data import Splits
    from omnitune.loop import fit
    from omnitune.runtime import Runtime
    from omnitune.task import StepOutput, Task

    class Benchmark(Task):
        def __init__(self) -> None:
            self.model = model

        def collate(self, examples: list) -> dict[str, torch.Tensor]:
            return collate(examples)

        def training_step(self, net: nn.Module, batch_data: dict) -> StepOutput:
            logits = net(batch_data["inputs"]).float()
            return StepOutput(nn.functional.cross_entropy(logits, batch_data["labels"]))

        def encode_inputs(self, inputs: list) -> dict:
            raise NotImplementedError

        def predict_step(self, net: nn.Module, batch_data: dict) -> list:
            raise NotImplementedError

    stamps = [time.perf_counter()]

    class Clock:
        @omnitune.hookimpl
        def on_step_end(self) -> None:
            stamps.append(time.perf_counter())

    config = TrainConfig(max_steps=steps, batch_size=batch, lr=1e-4, warmup_ratio=0.0,
                         weight_decay=0.01, precision=precision, progress=False, log_every=10**6)
    with tempfile.TemporaryDirectory() as scratch:
        fit(Benchmark(), Splits(train=data), config, Path(scratch), {}, runtime=Runtime(device, precision),
            callbacks=[Clock()])
    return stamps


def run_hf_trainer(model: nn.Module, data: list, batch: int, steps: int, device: torch.device,
                   precision: str) -> list[float]:
    import tempfile

    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
            logits = self.inner(inputs)
            return {"loss": nn.functional.cross_entropy(logits.float(), labels), "logits": logits}

    stamps = [time.perf_counter()]

    class Clock(TrainerCallback):
        def on_step_end(self, *_args: Any, **_kwargs: Any) -> None:
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(
            output_dir=scratch, per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-4,
            weight_decay=0.01, lr_scheduler_type="linear", warmup_steps=0, max_grad_norm=1.0,
            logging_steps=10**6, save_strategy="no", report_to=[], disable_tqdm=True,
            dataloader_num_workers=0, use_cpu=device.type == "cpu", bf16=precision == "bf16",
            fp16=precision == "fp16", dataloader_drop_last=True, seed=0,
            optim="adamw_torch")  # the others' AdamW; recent transformers default to the fused one
        Trainer(model=Wrapped(), args=arguments, train_dataset=data, data_collator=collate,
                callbacks=[Clock()]).train()
    return stamps


def worker(loop: str, workload: str, steps: int, warmup: int, batch: int) -> dict[str, float]:
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    dtype = {"bf16": torch.bfloat16}.get(precision)
    model, data = Classifier(workload), make_data(workload, batch * (steps + 1))
    runner = {"hand-written": lambda: run_hand_written(model, data, batch, steps, device, dtype),
              "omnitune": lambda: run_omnitune(model, data, batch, steps, device, precision),
              "hf-trainer": lambda: run_hf_trainer(model, data, batch, steps, device, precision)}[loop]
    stamps = runner()
    durations = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:], strict=False)]
    step_s = statistics.median(durations)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"samples_per_s": batch / step_s, "step_ms": step_s * 1000, "mean_step_ms":
            statistics.fmean(durations) * 1000, "peak_memory_mb": peak, "device": str(device),
            "precision": precision, "batch_size": batch, "timed_steps": len(durations),
            "threads": torch.get_num_threads()}


def worker_environment(threads: int | None) -> dict[str, str]:
    """The environment of every worker: steady malloc, and ``threads`` CPU threads if given."""
    environment = {**os.environ, **STEADY_MALLOC}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    return environment


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time per step, with every run's samples/s alongside."""
    ordered = sorted(runs, key=lambda r: r["step_ms"])
    return {**ordered[len(ordered) // 2], "all_samples_per_s": [round(r["samples_per_s"], 2) for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workloads", nargs="+", default=["text", "image"])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loop; the median is kept")
    parser.add_argument("--threads", type=int, help="CPU threads per worker (OMP_NUM_THREADS); "
                        "1 leaves a core for the rest of the machine, steadying the timings")
    parser.add_argument("--worker", nargs=2, metavar=("LOOP", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.steps, args.warmup, args.batch_size)))
        return
    results: dict[str, dict[str, Any]] = {}
    for workload in args.workloads:
        runs: dict[str, list[dict[str, Any]]] = {loop: [] for loop in LOOPS}
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits every loop alike
            for loop in LOOPS:
                command = [sys.executable, __file__, "--worker", loop, workload, "--steps", str(args.steps),
                           "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
                done = subprocess.run(command, capture_output=True, text=True, check=True,
                                      env=worker_environment(args.threads))
                runs[loop].append(json.loads(done.stdout.strip().splitlines()[-1]))
        row: dict[str, Any] = {loop: _median_run(found) for loop, found in runs.items()}
        row["omnitune/hand-written"] = row["omnitune"]["samples_per_s"] / row["hand-written"]["samples_per_s"]
        row["omnitune/hf-trainer"] = row["omnitune"]["samples_per_s"] / row["hf-trainer"]["samples_per_s"]
        results[workload] = row
    print(f"{'workload':<8}{'loop':<14}{'samples/s':>11}{'ms/step':>10}{'peak MB':>10}", file=sys.stderr)
    for workload, row in results.items():
        for loop in LOOPS:
            r = row[loop]
            print(f"{workload:<8}{loop:<14}{r['samples_per_s']:>11.1f}{r['step_ms']:>10.1f}"
                  f"{r['peak_memory_mb']:>10.0f}", file=sys.stderr)
        print(f"{workload:<8}omnitune/hand-written {row['omnitune/hand-written']:.3f}, "
              f"omnitune/hf-trainer {row['omnitune/hf-trainer']:.3f}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
