"""Per-example evaluation outputs of a trained model, and bootstrap confidence intervals over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from omnitune.task import Task

Outputs = dict[str, torch.Tensor]


@torch.no_grad()
def collect_outputs(task: Task, examples: Sequence[Any], device: torch.device,
                    batch_size: int = 64) -> Outputs:
    """``task.evaluation_step`` outputs over ``examples`` in order, concatenated, on the CPU
    (one process; for reports and model cards after training)."""
    model = task.model.to(device).eval()
    loader = DataLoader(list(examples), batch_size=batch_size, shuffle=False, collate_fn=task.collate)
    parts: list[Outputs] = []
    for batch in loader:
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        outputs = task.evaluation_step(model, batch).outputs
        parts.append({k: v.detach().cpu() for k, v in outputs.items()})
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]} if parts else {}


def bootstrap_intervals(
    outputs: Outputs,
    metric_fns: dict[str, Callable[[Outputs], float]],
    *,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric, resampling examples with replacement.
    Empty when the outputs are not one row per example (their first sizes differ)."""
    sizes = {len(v) for v in outputs.values()}
    if len(sizes) != 1 or not sizes or min(sizes) == 0:
        return {}
    count = sizes.pop()
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, count, (samples, count), generator=generator)
    values = {name: torch.tensor([fn(Resampled(outputs, rows)) for rows in draws])  # type: ignore[arg-type]
              for name, fn in metric_fns.items()}
    tail = (1 - confidence) / 2
    return {name: (torch.quantile(v, tail).item(), torch.quantile(v, 1 - tail).item())
            for name, v in values.items()}


class Resampled(Mapping[str, torch.Tensor]):
    """``outputs`` at ``rows``, each tensor indexed only when a metric reads it (a metric reads
    one or two of the outputs; indexing them all made a recommender's card take seconds)."""

    def __init__(self, outputs: Outputs, rows: torch.Tensor) -> None:
        self.outputs, self.rows = outputs, rows

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.outputs[key][self.rows]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)
