"""``train.batch_size: auto``: 32 examples per micro-batch, fewer when a small training split
would leave the epochs too few optimizer steps."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from omnitune.selection import MIN_OPTIMIZER_STEPS

if TYPE_CHECKING:
    from omnitune.config import TrainConfig

log = logging.getLogger(__name__)

AUTO_BATCH_SIZES = (32, 16, 8)
"""What ``auto`` chooses from, largest first. 8 is the floor (Hugging Face Trainer's default):
smaller batches make noisy steps and slow epochs for little gain."""


def batches_per_epoch(train_size: int, world_size: int, batch_size: int) -> int:
    """Batches each process takes an epoch: ``train_size // world_size`` examples (Runtime.shard
    with even=True), the last batch partial."""
    return math.ceil(train_size // world_size / batch_size)


def optimizer_steps(train_size: int, world_size: int, batch_size: int, grad_accum: int, epochs: int) -> int:
    """Optimizer steps in ``epochs`` passes, ``grad_accum`` batches a step."""
    return epochs * math.ceil(batches_per_epoch(train_size, world_size, batch_size) / grad_accum)


def auto_batch_size(train: TrainConfig, train_size: int, world_size: int) -> int:
    """The largest of ``AUTO_BATCH_SIZES`` whose epochs give at least ``MIN_OPTIMIZER_STEPS``
    optimizer steps, else the smallest; the largest when ``max_steps`` fixes the steps."""
    if train.max_steps is not None:
        return AUTO_BATCH_SIZES[0]
    for size in AUTO_BATCH_SIZES:
        steps = optimizer_steps(train_size, world_size, size, train.grad_accum, train.epochs)
        if steps >= MIN_OPTIMIZER_STEPS:
            return size
    return AUTO_BATCH_SIZES[-1]


def resolve_batch_size(train: TrainConfig, train_size: int, world_size: int) -> TrainConfig:
    """``train`` with ``batch_size: auto`` replaced by its number (logged); unchanged otherwise."""
    if train.batch_size != "auto":
        return train
    size = auto_batch_size(train, train_size, world_size)
    steps = optimizer_steps(train_size, world_size, size, train.grad_accum, train.epochs)
    log.info("train.batch_size auto: %d (%d training examples, %s)", size, train_size,
             "train.max_steps fixes the steps" if train.max_steps else f"{steps} optimizer steps in "
             f"{train.epochs} epochs; {AUTO_BATCH_SIZES[0]} when that gives at least {MIN_OPTIMIZER_STEPS}")
    return train.model_copy(update={"batch_size": size})
