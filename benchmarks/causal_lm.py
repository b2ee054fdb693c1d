"""Causal-LM fine-tuning on CPU: SmolLM2-135M-Instruct on MovieLens title -> genres.

    python benchmarks/causal_lm.py [--steps 30] [--batch-size 8] [--max-length 96] [--eval 60]

Each phase runs in its own process (so peak RSS is its own) on the same data and settings:
  base            the pretrained model, no training, scored on the held-out movies
  omnitune-lora   omnitune: LoRA (rank 8, alpha 16, q_proj/v_proj), answers-only loss
  omnitune-full   omnitune: every weight trains (choose phases with --phases)
  trl-lora        TRL's SFTTrainer: the same model, rows, max length, LoRA, steps, lr, batch,
                  and precision (fp32; TRL's own defaults are bf16 autocast and gradient
                  checkpointing, set off here as omnitune runs them; --checkpointing sets both on)
No validation split: the settings are fixed up front, nothing is tuned. Held-out metrics: loss
and perplexity on the answer tokens, greedy generation scored by exact match and token F1
(SQuAD-style). tokens/s = optimizer steps x batch x mean tokens per training example / training
seconds; train CPU s = user + sys of the training steps alone (tokens per CPU second is the
fairer speed on a shared machine). CPU s = user + sys of the phase's whole process. Prints a
table on stderr, then a JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import omnitune

PHASES = ("base", "omnitune-lora", "omnitune-full", "trl-lora")
LORA = {"rank": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


def run_config(args: argparse.Namespace, output_dir: str, strategy: str) -> dict[str, Any]:
    """The omnitune run both omnitune phases share (and the data and model TRL gets)."""
    return {
        "task": {"name": "causal-lm", "max_length": args.max_length, "max_new_tokens": 24,
                 "eval_generation": True},
        "backbone": "smollm2-135m",
        "dataset": {"name": "movielens-genres", "validation_fraction": 0.0, "max_eval_samples": args.eval},
        "train": {"max_steps": args.steps, "batch_size": args.batch_size, "eval_batch_size": 20,
                  "lr": args.lr if strategy == "lora" else args.full_lr, "warmup_ratio": 0.0,
                  "schedule": "linear", "strategy": strategy, "lora": LORA, "log_every": 1,
                  "gradient_checkpointing": args.checkpointing,
                  "device": "cpu", "precision": "fp32", "progress": False, "seed": 42},
        "output_dir": output_dir,
    }


def mean_tokens(task: Any, examples: list[Any]) -> float:
    """Mean non-padding tokens of a training example as the task encodes it."""
    return sum(len(task.encoder.encode(e).ids) for e in examples) / len(examples)


def phase_base(args: argparse.Namespace, scratch: str) -> dict[str, Any]:
    from omnitune.build import build_dataset, build_metrics, build_task
    from omnitune.config import load_config, validate_components
    from omnitune.loop import evaluate
    from omnitune.runtime import Runtime

    run = load_config(run_config(args, f"{scratch}/base", "lora"))
    plugins = omnitune.load_plugins()
    options = validate_components(run, plugins.registry)
    splits = build_dataset(run, options, plugins.registry)
    task = build_task(run, options, plugins.registry, splits.info)
    metrics = evaluate(task, task.model, splits.test, Runtime.create("cpu", "fp32"),
                       build_metrics(task, plugins.registry), batch_size=20, prefix="test")
    return {**metrics, "train_examples": len(splits.train), "test_examples": len(splits.test)}


class TrainingClock:
    """Wall and CPU seconds from the start of fit to the last optimizer step (a loop event)."""

    def __init__(self, steps: int) -> None:
        self.steps, self.started, self.seconds = steps, (0.0, 0.0), (0.0, 0.0)

    @omnitune.hookimpl
    def on_fit_start(self) -> None:
        self.started = (time.perf_counter(), cpu_seconds())

    @omnitune.hookimpl
    def on_step_end(self, state: Any) -> None:
        if state.step == self.steps:
            self.seconds = (time.perf_counter() - self.started[0], cpu_seconds() - self.started[1])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase_omnitune(args: argparse.Namespace, scratch: str, strategy: str) -> dict[str, Any]:
    clock = TrainingClock(args.steps)
    result = omnitune.finetune(run_config(args, f"{scratch}/{strategy}", strategy), callbacks=[clock])
    tokens = _train_tokens(args, result.task)
    trained = sum(p.numel() for p in result.task.model.parameters() if p.requires_grad)
    keep = ("test_loss", "test_perplexity", "test_exact_match", "test_token_f1", "test_truncated_fraction")
    return {**{k: result.metrics[k] for k in keep}, **speed(args, tokens, *clock.seconds),
            "trainable_params": trained}


def speed(args: argparse.Namespace, mean_tokens: float, seconds: float, cpu: float) -> dict[str, float]:
    """Training speed from the steps' wall and CPU seconds."""
    tokens = args.steps * args.batch_size * mean_tokens
    return {"train_s": seconds, "train_cpu_s": cpu, "tokens_per_s": tokens / seconds,
            "tokens_per_cpu_s": tokens / cpu, "mean_tokens": mean_tokens}


def _train_tokens(args: argparse.Namespace, task: Any) -> float:
    return mean_tokens(task, _train_examples(args))


def _train_examples(args: argparse.Namespace) -> list[Any]:
    from omnitune_text.lm_datasets import movielens_genres
    from omnitune_text.lm_options import MovieLensGenresConfig

    config = MovieLensGenresConfig(validation_fraction=0.0, max_eval_samples=args.eval)
    return list(movielens_genres(config).train)


def phase_trl(args: argparse.Namespace, scratch: str) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from omnitune_text.lm_backbone import smollm2_folder

    folder = smollm2_folder()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    rows = [{"prompt": e.prompt, "completion": [{"role": "assistant", "content": e.reference}]}
            for e in _train_examples(args)]
    config = SFTConfig(output_dir=f"{scratch}/trl", max_steps=args.steps,
                       per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
                       lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.01, max_grad_norm=1.0,
                       max_length=args.max_length, packing=False, completion_only_loss=True,
                       bf16=False, gradient_checkpointing=args.checkpointing,
                       logging_steps=10, save_strategy="no", report_to=[], use_cpu=True, seed=42,
                       dataloader_num_workers=0, disable_tqdm=True)
    lora = LoraConfig(r=LORA["rank"], lora_alpha=LORA["alpha"], lora_dropout=0.0,
                      target_modules=LORA["target_modules"], task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, peft_config=lora)
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) / len(trainer.train_dataset)
    started = (time.perf_counter(), cpu_seconds())
    trainer.train()
    seconds = (time.perf_counter() - started[0], cpu_seconds() - started[1])
    return {**speed(args, tokens, *seconds),
            "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)}


def run_phase(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        if args.phase == "base":
            result = phase_base(args, scratch)
        elif args.phase == "trl-lora":
            result = phase_trl(args, scratch)
        else:
            result = phase_omnitune(args, scratch, args.phase.removeprefix("omnitune-"))
    import torch

    print(json.dumps({**result, "torch_threads": torch.get_num_threads(),
                      "wall_s": time.perf_counter() - started, "cpu_s": cpu_seconds(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=PHASES, help="run one phase in this process")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated phases to run")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--eval", type=int, default=60, help="held-out movies scored (validation and test)")
    parser.add_argument("--lr", type=float, default=1e-3, help="LoRA learning rate")
    parser.add_argument("--full-lr", type=float, default=5e-5, help="full fine-tune learning rate")
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing in both")
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return
    shared = ["--steps", str(args.steps), "--batch-size", str(args.batch_size), "--max-length",
              str(args.max_length), "--eval", str(args.eval), "--lr", str(args.lr),
              "--full-lr", str(args.full_lr), *(["--checkpointing"] if args.checkpointing else [])]
    results = {}
    for phase in args.phases.split(","):
        done = subprocess.run([sys.executable, __file__, "--phase", phase, *shared], check=True,
                              capture_output=True, text=True)
        results[phase] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{phase}: {results[phase]}", file=sys.stderr, flush=True)
    print_table(results)
    print(json.dumps({"settings": vars(args) | {"lora": LORA}, "results": results}))


def print_table(results: dict[str, dict[str, Any]]) -> None:
    columns = ("test_exact_match", "test_token_f1", "test_perplexity", "tokens_per_s", "tokens_per_cpu_s",
               "peak_rss_mb", "wall_s", "cpu_s")
    print(f"{'phase':<15}" + "".join(f"{c:>18}" for c in columns), file=sys.stderr)
    for phase, row in results.items():
        cells = "".join(f"{row[c]:>18.4g}" if c in row else f"{'-':>18}" for c in columns)
        print(f"{phase:<15}{cells}", file=sys.stderr)


if __name__ == "__main__":
    main()
