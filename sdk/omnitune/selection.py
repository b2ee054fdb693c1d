"""Which weights a run keeps, and whether its validation split can choose them reliably."""

from __future__ import annotations

import math

MIN_RELIABLE_VALIDATION = 100
"""Below this many validation examples, an accuracy-like metric's standard error (at most
0.5 / sqrt(n)) is over 5 points: more than the one to three points that usually separate two
evaluations of one run, so the evaluation that looks best is largely chance."""


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
