"""Every hardware decision: device, precision, autocast, gradient scaling, model preparation
(through a strategy), seeding, RNG state."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from omnitune import checkpoint as ckpt
from omnitune.config import TrainConfig
from omnitune.errors import CheckpointError, ConfigError
from omnitune.lora import apply_lora
from omnitune.strategies import DDP, FSDP, SingleProcess

log = logging.getLogger("omnitune")


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a run computes, and how its processes share the work
    (``strategy``: one process, DDP or FSDP)."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"
    strategy: SingleProcess = field(default_factory=SingleProcess)

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", distributed: str = "ddp") -> Runtime:
        """Pick the device (cuda, then mps, then cpu) and the precision it supports. Under
        ``torchrun`` (WORLD_SIZE > 1) join the process group (NCCL on GPUs, gloo on CPUs) and
        replicate the model (``ddp``) or shard it (``fsdp``)."""
        chosen = select_device(device)
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:
            return cls(chosen, select_precision(precision, chosen))
        if chosen.type == "cuda":
            chosen = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(chosen)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
            atexit.register(leave_process_group)
        kind = FSDP if distributed == "fsdp" else DDP
        return cls(chosen, select_precision(precision, chosen),
                   kind(chosen, dist.get_rank(), dist.get_world_size()))

    @property
    def rank(self) -> int:
        return self.strategy.rank

    @property
    def world_size(self) -> int:
        return self.strategy.world_size

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints and artifacts."""
        return self.strategy.rank == 0

    @property
    def sharded(self) -> bool:
        """Whether checkpoints hold FSDP-keyed optimizer state."""
        return self.strategy.sharded

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    @property
    def pin_memory(self) -> bool:
        """Whether DataLoaders should pin batches (so ``to_device``'s copies are asynchronous)."""
        return self.device.type == "cuda"

    def setup(self, model: nn.Module, train: TrainConfig) -> nn.Module:
        """Prepare ``model`` for training in one call and return the module to train: LoRA
        adapters, gradient checkpointing, the strategy (FSDP sharding, device placement, DDP
        wrapping), then ``torch.compile`` (eager when compiling fails). ``model`` itself stays
        the unwrapped module whose weights are saved."""
        if train.strategy == "lora":
            apply_lora(model, train.lora)
        if train.gradient_checkpointing:
            enable_gradient_checkpointing(getattr(model, "backbone", None))
        ready = self.strategy.setup(model, self.device)
        return ready if train.compile is None else CompiledOrEager(ready, train.compile)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed-precision context for forward passes; a no-op in fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def accumulating(self, model: nn.Module, sync: bool) -> contextlib.AbstractContextManager[Any]:
        """Context for a micro-batch's forward pass: without ``sync``, gradients are only
        accumulated locally (DDP's ``no_sync``)."""
        return contextlib.nullcontext() if sync else self.strategy.no_sync(model)

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

    def shard(self, items: list[Any], *, even: bool) -> list[Any]:
        """This process's share of ``items``: every ``world_size``-th from ``rank``. ``even`` drops
        the last few so every process gets as many (training steps must stay in lock-step)."""
        return self.strategy.shard(items, even=even)

    def sum(self, value: float) -> float:
        """Sum of ``value`` over all processes."""
        return self.strategy.sum(value)

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """For each flag: true on every process if it is true on any (one collective for all)."""
        return self.strategy.any(*flags)

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (picklable), in rank order."""
        return self.strategy.gather(value)

    def lockstep(self, batches: int) -> int:
        """How many evaluation batches this process runs (FSDP: as many as the busiest)."""
        return self.strategy.lockstep(batches)

    def barrier(self) -> None:
        self.strategy.barrier()

    def full_weights(self, model: nn.Module) -> ckpt.Weights:
        """``model``'s weights, unsharded, ready to save; under FSDP every process must call this
        and only rank 0 receives them (on the CPU), the others an empty dict."""
        return self.strategy.full_weights(model)

    def load_full_weights(self, model: nn.Module, weights: ckpt.Weights, source: Path) -> None:
        """Copy unsharded ``weights`` (read from ``source`` by every process) into ``model``."""
        self.strategy.load_full_weights(model, weights, source)

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state to checkpoint; under FSDP unsharded onto rank 0 (all must call)."""
        return self.strategy.optimizer_state(model, optimizer)

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                             state: dict[str, Any]) -> None:
        """Restore what ``optimizer_state`` returned."""
        self.strategy.load_optimizer_state(model, optimizer, state)

    def check_layout(self, checkpoint: Path, training_state: dict[str, Any]) -> None:
        """The optimizer state of an FSDP checkpoint is keyed differently: refuse a mismatch."""
        if training_state.get("sharded", False) == self.sharded:
            return
        if self.sharded:
            raise CheckpointError(f"{checkpoint} was written by an unsharded run; resume it with "
                                  "train.distributed: ddp")
        raise CheckpointError(f"{checkpoint} was written by an FSDP run; resume it under torchrun "
                              "with train.distributed: fsdp")


class CompiledOrEager(nn.Module):
    """``torch.compile(module)``; when compiling fails (at wrapping or at the first call, where
    compilation happens), warn once and run ``module`` eagerly from then on."""

    def __init__(self, module: nn.Module, backend: str) -> None:
        super().__init__()
        self.module, self.backend = module, backend
        self.compiled: nn.Module | None = None
        try:
            self.compiled = torch.compile(module, backend=backend)
        except Exception as error:
            self._fall_back(error)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is None:
            return self.module(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as error:
            self._fall_back(error)
            return self.module(*args, **kwargs)

    def _fall_back(self, error: Exception) -> None:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        log.warning("torch.compile(backend=%r) failed, training eagerly instead: %s",
                    self.backend, first_line)
        self.compiled = None


def enable_gradient_checkpointing(backbone: nn.Module | None) -> None:
    """Recompute the backbone's activations in the backward pass (less memory, more time)."""
    switch = getattr(backbone, "set_grad_checkpointing", None)
    if switch is None:
        raise ConfigError("train.gradient_checkpointing: this backbone does not support it "
                          f"({type(backbone).__name__} has no set_grad_checkpointing)")
    switch(True)


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


def leave_process_group() -> None:
    """Destroy the process group a run joined, at exit while the interpreter is still whole: left
    to interpreter shutdown, gloo's worker threads can abort the process (SIGABRT, "terminate
    called without an active exception"; pytorch/pytorch#190489), failing a finished run."""
    if dist.is_initialized():
        dist.destroy_process_group()
