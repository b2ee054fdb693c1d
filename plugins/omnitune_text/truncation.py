"""Warnings for texts cut to fit: the first time, then each time the count doubles (never silent,
never one line per batch)."""

from __future__ import annotations

import logging
import math

log = logging.getLogger("omnitune")


class TruncationReport:
    """Counts the examples cut so far; ``what`` says how they were cut, in the warning."""

    def __init__(self, task: str, what: str) -> None:
        self.task, self.what, self.seen = task, what, 0

    def add(self, cut: int, total: int) -> None:
        """``cut`` of the last ``total`` examples were cut."""
        if not cut:
            return
        before, self.seen = self.seen, self.seen + cut
        if before == 0 or int(math.log2(self.seen)) > int(math.log2(before)):
            log.warning("%s: %d example(s) so far %s (%d of the last %d)", self.task, self.seen,
                        self.what, cut, total)
