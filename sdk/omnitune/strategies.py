"""How the processes of a run share the work: one process, DDP or FSDP, behind one interface.

``Runtime`` holds one strategy and forwards to it, so neither the loop nor the API asks
whether a run is distributed or sharded.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from omnitune import checkpoint as ckpt
from omnitune.errors import CheckpointError

log = logging.getLogger("omnitune")


class SingleProcess:
    """One process: the model stays whole, collectives return their input."""

    rank = 0
    world_size = 1
    sharded = False  # FSDP: parameters, gradients and optimizer state split across processes

    def setup(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Place ``model`` on ``device``; returns the module to train."""
        return model.to(device)

    def no_sync(self, model: nn.Module) -> contextlib.AbstractContextManager[Any]:
        """Context for a micro-batch whose gradients are accumulated without synchronising."""
        return contextlib.nullcontext()

    def shard(self, items: list[Any], *, even: bool) -> list[Any]:
        """This process's share of ``items``."""
        return items

    def sum(self, value: float) -> float:
        return value

    def any(self, *flags: bool) -> tuple[bool, ...]:
        return flags

    def gather(self, value: Any) -> list[Any]:
        return [value]

    def max(self, value: int) -> int:
        return value

    def barrier(self) -> None:
        """Wait for every process."""

    def lockstep(self, batches: int) -> int:
        """How many evaluation batches this process must run (FSDP: as many as the busiest)."""
        return batches

    def full_weights(self, model: nn.Module) -> ckpt.Weights:
        """``model``'s weights, unsharded, ready to save (an empty dict off rank 0 under FSDP)."""
        return ckpt.savable_weights(model, model.state_dict())

    def load_full_weights(self, model: nn.Module, weights: ckpt.Weights, source: Path) -> None:
        """Copy unsharded ``weights`` (read from ``source`` by every process) into ``model``."""
        ckpt.load_state(model, weights, source)

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state to checkpoint."""
        return optimizer.state_dict()

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                             state: dict[str, Any]) -> None:
        """Restore what ``optimizer_state`` returned."""
        optimizer.load_state_dict(state)


@dataclass(frozen=True)
class _ProcessGroup(SingleProcess):
    """Several processes joined by ``torch.distributed``: the collectives are real."""

    device: torch.device
    rank: int
    world_size: int

    def shard(self, items: list[Any], *, even: bool) -> list[Any]:
        """Every ``world_size``-th item from ``rank``. ``even`` drops the last few so every
        process gets as many (training steps must stay in lock-step)."""
        if even:
            items = items[: len(items) - len(items) % self.world_size]
        return items[self.rank :: self.world_size]

    def sum(self, value: float) -> float:
        total = torch.tensor([value], dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(total)
        return total.item()

    def any(self, *flags: bool) -> tuple[bool, ...]:
        counts = torch.tensor([float(flag) for flag in flags], dtype=torch.float64,
                              device=self._collective_device)
        dist.all_reduce(counts)
        return tuple(count > 0 for count in counts.tolist())

    def gather(self, value: Any) -> list[Any]:
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def max(self, value: int) -> int:
        largest = torch.tensor([value], dtype=torch.int64, device=self._collective_device)
        dist.all_reduce(largest, op=dist.ReduceOp.MAX)
        return int(largest.item())

    def barrier(self) -> None:
        dist.barrier()

    @property
    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


@dataclass(frozen=True)
class DDP(_ProcessGroup):
    """Every process holds the whole model; gradients are averaged after each backward."""

    def setup(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Place ``model`` and wrap it once in DistributedDataParallel. Parameters frozen later
        (the freeze strategies) simply get no gradient: ``find_unused_parameters`` covers them."""
        model.to(device)
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def no_sync(self, model: nn.Module) -> contextlib.AbstractContextManager[Any]:
        wrapped = next(m for m in model.modules() if isinstance(m, nn.parallel.DistributedDataParallel))
        return wrapped.no_sync()


@dataclass(frozen=True)
class FSDP(_ProcessGroup):
    """Parameters, gradients and optimizer state split across processes (FSDP2 ``fully_shard``)."""

    sharded = True

    def setup(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Shard ``model`` in place, then move this process's shard to ``device``.

        Each repeated block (a transformer layer, a timm block) becomes its own FSDP unit, so
        only one block's full parameters exist at a time; the rest form the root unit.
        """
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (self.world_size,))
        blocks = repeated_blocks(model)
        for block in blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        held = sum(_local(p).numel() for p in model.parameters())
        total = sum(p.numel() for p in model.parameters())
        if self.rank == 0:
            log.info("fsdp: %d blocks and the root sharded over %d processes; rank 0 holds %d of %d "
                     "parameters (%.1f%%)", len(blocks), self.world_size, held, total, 100 * held / total)
        return model.to(device)

    def lockstep(self, batches: int) -> int:
        # every FSDP forward gathers parameters from all processes: all must run as many batches
        return self.max(batches)

    def full_weights(self, model: nn.Module) -> ckpt.Weights:
        """Every process must call this; only rank 0 receives the weights (on the CPU)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(model, options=_full_state(cpu_offload=True))
        return ckpt.savable_weights(model, state) if self.rank == 0 else {}

    def load_full_weights(self, model: nn.Module, weights: ckpt.Weights, source: Path) -> None:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        try:
            set_model_state_dict(model, ckpt.complete_weights(model, weights), options=_full_state())
        except (KeyError, RuntimeError) as error:
            raise CheckpointError(f"{source} does not fit the model: {error}") from error

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Unsharded onto rank 0; every process must call this."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer, options=_full_state(cpu_offload=True))

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                             state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        # strict=False: parameters that never received a gradient (an unused pooler) have no state
        set_optimizer_state_dict(model, optimizer, state, options=_full_state(strict=False))


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
