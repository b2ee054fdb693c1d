"""Every hardware decision: device, precision, autocast, gradient scaling, seeding, RNG state."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from omnitune import checkpoint as ckpt
from omnitune.errors import CheckpointError, ConfigError

log = logging.getLogger("omnitune")


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a run computes, and which process of how many it is."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"
    rank: int = 0
    world_size: int = 1
    sharded: bool = False  # FSDP: parameters, gradients and optimizer state split across processes

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", distributed: str = "ddp") -> Runtime:
        """Pick the device (cuda, then mps, then cpu) and the precision it supports. Under
        ``torchrun`` (WORLD_SIZE > 1) join the process group (NCCL on GPUs, gloo on CPUs) and
        replicate the model (``ddp``) or shard it (``fsdp``)."""
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
        return cls(chosen, select_precision(precision, chosen), dist.get_rank(), dist.get_world_size(),
                   sharded=distributed == "fsdp")

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

    def prepare(self, model: nn.Module) -> None:
        """Under FSDP, shard ``model`` across processes in place; call before building the optimizer.

        Each repeated block (a transformer layer, a timm block) becomes its own FSDP unit, so only
        one block's full parameters exist at a time; the remaining parameters form the root unit.
        """
        if not self.sharded:
            return
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(self.device.type, (self.world_size,))
        blocks = repeated_blocks(model)
        for block in blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        held = sum(_local(p).numel() for p in model.parameters())
        total = sum(p.numel() for p in model.parameters())
        if self.is_main:
            log.info("fsdp: %d blocks and the root sharded over %d processes; rank 0 holds %d of %d "
                     "parameters (%.1f%%)", len(blocks), self.world_size, held, total, 100 * held / total)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train: DistributedDataParallel across processes, else ``model`` itself
        (which FSDP has already sharded in ``prepare``)."""
        if not self.distributed or self.sharded:
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

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """For each flag: true on every process if it is true on any (one collective for all)."""
        if not self.distributed:
            return flags
        counts = torch.tensor([float(flag) for flag in flags], dtype=torch.float64,
                              device=self._collective_device)
        dist.all_reduce(counts)
        return tuple(count > 0 for count in counts.tolist())

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (picklable), in rank order."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def max(self, value: int) -> int:
        """The largest ``value`` over all processes."""
        if not self.distributed:
            return value
        largest = torch.tensor([value], dtype=torch.int64, device=self._collective_device)
        dist.all_reduce(largest, op=dist.ReduceOp.MAX)
        return int(largest.item())

    def full_weights(self, model: nn.Module) -> ckpt.Weights:
        """``model``'s weights, unsharded, ready to save; under FSDP every process must call this
        and only rank 0 receives them (on the CPU), the others an empty dict."""
        if not self.sharded:
            return ckpt.savable_weights(model, model.state_dict())
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(model, options=_full_state(cpu_offload=True))
        return ckpt.savable_weights(model, state) if self.is_main else {}

    def load_full_weights(self, model: nn.Module, weights: ckpt.Weights, source: Path) -> None:
        """Copy unsharded ``weights`` (read from ``source`` by every process) into ``model``."""
        if not self.sharded:
            ckpt.load_state(model, weights, source)
            return
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        try:
            set_model_state_dict(model, ckpt.complete_weights(model, weights), options=_full_state())
        except (KeyError, RuntimeError) as error:
            raise CheckpointError(f"{source} does not fit the model: {error}") from error

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state to checkpoint; under FSDP unsharded onto rank 0 (all must call)."""
        if not self.sharded:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer, options=_full_state(cpu_offload=True))

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                             state: dict[str, Any]) -> None:
        """Restore what ``optimizer_state`` returned."""
        if not self.sharded:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        # strict=False: parameters that never received a gradient (an unused pooler) have no state
        set_optimizer_state_dict(model, optimizer, state, options=_full_state(strict=False))

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


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's repeated blocks: members of a ModuleList or Sequential that are two or more
    instances of one class defined outside torch.nn (transformer layers, timm blocks), outermost
    first; containers of torch.nn's own classes are searched inside."""
    blocks: list[nn.Module] = []
    for child in model.children():
        if isinstance(child, nn.ModuleList | nn.Sequential):
            members = list(child)
            counts = {kind: sum(type(m) is kind for m in members) for kind in map(type, members)}
            repeated = [m for m in members if counts[type(m)] > 1 and not _from_torch_nn(m)]
            if repeated:
                blocks.extend(repeated)
                continue
        blocks.extend(repeated_blocks(child))
    return blocks


def _from_torch_nn(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.")


def _local(parameter: torch.Tensor) -> torch.Tensor:
    """This process's shard of a (possibly sharded) parameter."""
    to_local = getattr(parameter, "to_local", None)
    return to_local() if to_local is not None else parameter


def _full_state(cpu_offload: bool = False, strict: bool = True) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=cpu_offload, strict=strict)


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
