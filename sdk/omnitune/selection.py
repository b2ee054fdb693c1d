"""Which weights a run keeps, and warnings when they will be unreliable: a validation split too
small to choose them, or too few optimizer steps to train them."""

from __future__ import annotations

import math

MIN_RELIABLE_VALIDATION = 100
"""Below this many validation examples, an accuracy-like metric's standard error (at most
0.5 / sqrt(n)) is over 5 points: more than the one to three points that usually separate two
evaluations of one run, so the evaluation that looks best is largely chance."""

MIN_OPTIMIZER_STEPS = 50
"""Below this many optimizer steps a fine-tune is usually unfinished: on 94 long speeches
(``benchmarks/long_text.py``, 2026-11-30) 12 steps at batch 32 reached validation macro-F1 0.76
with the loss still falling, 48 steps at batch 8 with the same epochs 0.81."""


def small_validation_warning(size: int, monitor: str) -> str | None:
    """The warning for choosing weights by ``monitor`` on ``size`` validation examples, or None.

    Only metrics that count examples (accuracy, F1, ...) are judged: the loss is continuous.
    """
    if size >= MIN_RELIABLE_VALIDATION or monitor == "loss":
        return None
    error = 0.5 / math.sqrt(size)
    return (f"validation has only {size} examples: {monitor} there has a standard error of up to "
            f"{error:.1%} (0.5 / sqrt({size})) and moves {1 / size:.1%} per example, more than the few "
            "points that usually separate two evaluations, so the checkpoint it picks is largely "
            "chance. Consider train.select_by=last (a fixed number of train.epochs), "
            f"train.select_by=train_loss, or at least {MIN_RELIABLE_VALIDATION} validation examples")


def few_steps_warning(total_steps: int, train_size: int, per_step: int) -> str | None:
    """The warning for a run whose epochs give ``total_steps`` optimizer steps of ``per_step``
    examples over ``train_size`` training examples, or None."""
    if total_steps >= MIN_OPTIMIZER_STEPS:
        return None
    return (f"only {total_steps} optimizer steps ({train_size} training examples, {per_step} per step): "
            "a fine-tune rarely converges in so few updates. Consider more train.epochs, a smaller "
            "train.batch_size (8 gives four times the steps of 32 for the same epochs), "
            "or the small-data recipe in docs/small-data.md")
