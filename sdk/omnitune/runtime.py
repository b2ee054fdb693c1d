"""Every hardware decision: device, precision, autocast, gradient scaling, seeding, RNG state."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from omnitune.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a run computes, and which process of how many it is."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"
    rank: int = 0
    world_size: int = 1

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto") -> Runtime:
        """Pick the device (cuda, then mps, then cpu) and the precision it supports. Under
        ``torchrun`` (WORLD_SIZE > 1) join the process group: NCCL on GPUs, gloo on CPUs."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            chosen = select_device(device)
            return cls(chosen, select_precision(precision, chosen))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        chosen = select_device(device)
        if chosen.type == "cuda":
            chosen = torch.device("cuda", local_rank)
            torch.cuda.set_device(chosen)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
        return cls(chosen, select_precision(precision, chosen), dist.get_rank(), dist.get_world_size())

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints and artifacts."""
        return self.rank == 0

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed-precision context for forward passes; a no-op in fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for fp16 (bf16 and fp32 need no loss scaling)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def to_device(self, batch: Any) -> Any:
        """Move every tensor in a (nested) batch to the device."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {key: self.to_device(value) for key, value in batch.items()}
        if isinstance(batch, list | tuple):
            return type(batch)(self.to_device(value) for value in batch)
        return batch

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train: DistributedDataParallel across processes, else ``model`` itself."""
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def shard(self, items: list[Any], *, even: bool) -> list[Any]:
        """This process's share of ``items``: every ``world_size``-th from ``rank``. ``even`` drops
        the last few so every process gets as many (training steps must stay in lock-step)."""
        if not self.distributed:
            return items
        if even:
            items = items[: len(items) - len(items) % self.world_size]
        return items[self.rank :: self.world_size]

    def sum(self, value: float) -> float:
        """Sum of ``value`` over all processes."""
        if not self.distributed:
            return value
        total = torch.tensor([value], dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(total)
        return total.item()

    def any(self, flag: bool) -> bool:
        """True on every process if it is true on any."""
        return self.sum(float(flag)) > 0

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (picklable), in rank order."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def peak_memory_mb(self) -> float | None:
        """Peak accelerator memory so far, where the backend reports it."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return None

    @property
    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def select_device(preference: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must exist."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {preference!r} was asked for, but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device: {preference!r} was asked for, but MPS is not available")
    return device


def select_precision(preference: str, device: torch.device) -> str:
    """``auto`` is bf16 on CUDA GPUs that support it and fp32 elsewhere; fp16 needs a GPU."""
    if preference == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if preference == "fp16" and device.type == "cpu":
        raise ConfigError("train.precision: fp16 needs a GPU; on CPU use bf16 or fp32")
    return preference


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG state, in a form ``torch.load(weights_only=True)`` accepts."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": position, "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32),
                         numpy["position"], numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def data_generator(seed: int) -> torch.Generator:
    """A generator for DataLoaders, so that they never draw from the global RNG."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def epoch_order(size: int, seed: int, epoch: int) -> Iterator[int]:
    """The shuffled order of one epoch, a pure function of (seed, epoch) so resume can replay it."""
    return iter(torch.randperm(size, generator=data_generator(seed * 100_003 + epoch)).tolist())
