"""CPU time of one fine-tuning step of a pretrained speech backbone: 32 one-second clips, forward,
backward, AdamW step.

    OMP_NUM_THREADS=1 python benchmarks/speech_step_time.py [--backbone ge2e|speech-embedding]
        [--steps 5] [--batch-size 32]

Builds the ``audio-classification`` model on the pretrained backbone (``ge2e``, the default: the
Resemblyzer wheel; ``speech-embedding``: the openwakeword wheel's graphs)
with the task's and backbone's default options (augmentation included), in training mode, on
random audio. Reports the median CPU time (user+sys of this process) and wall time per step after
one warm-up step; on a shared machine the CPU time is the figure to compare. JSON last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from omnitune.classification import cross_entropy_step
from omnitune_speech.backbone import SpeechBackbone
from omnitune_speech.classification import AudioClassification
from omnitune_speech.ge2e import ge2e
from omnitune_speech.plugin import AudioClassificationConfig, GE2EConfig, SpeechEmbeddingConfig
from omnitune_speech.speech_embedding import speech_embedding

LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes"]
BACKBONES = {"ge2e": lambda: ge2e(GE2EConfig()),
             "speech-embedding": lambda: speech_embedding(SpeechEmbeddingConfig())}


def timed_steps(backbone: SpeechBackbone, batch_size: int, steps: int) -> tuple[list[float], list[float]]:
    """CPU and wall seconds of each step after a warm-up step."""
    torch.manual_seed(0)
    task = AudioClassification(AudioClassificationConfig(), backbone=backbone,
                               head=nn.Linear, data_info={"labels": LABELS})
    model = task.model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    waveforms = torch.randn(batch_size, 16000) * 0.1
    lengths = torch.full((batch_size,), 16000)
    labels = torch.randint(0, len(LABELS), (batch_size,))
    cpu, wall = [], []
    for _ in range(steps + 1):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        loss = cross_entropy_step(model(waveforms, lengths), labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return cpu[1:], wall[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", choices=tuple(BACKBONES), default="ge2e")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    cpu, wall = timed_steps(BACKBONES[args.backbone](), args.batch_size, args.steps)
    summary = {"benchmark": "speech_step_time", "backbone": args.backbone, "batch_size": args.batch_size,
               "steps": args.steps, "threads": torch.get_num_threads(),
               "cpu_s_per_step": round(statistics.median(cpu), 3),
               "wall_s_per_step": round(statistics.median(wall), 3)}
    print(f"{args.backbone} fine-tuning step, batch {args.batch_size} x 1 s, {summary['threads']} thread(s): "
          f"{summary['cpu_s_per_step']} s CPU, {summary['wall_s_per_step']} s wall (median of {args.steps})")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
