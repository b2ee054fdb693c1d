"""Audio longer than the training clips, at prediction time: windows of the clip length every
``hop`` samples, each scored; the most confident window speaks for the whole file.

Numpy only (no torch), so the PyTorch ``Predictor`` and the torch-free ONNX bundle slide the
same windows and choose the same one: each passes its own ``score`` function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK = 64  # windows per forward pass, so a long file never needs one huge batch

Score = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``score(windows (W, N) float32, lengths (W,) int64) -> class probabilities (W, C)``."""


@dataclass(frozen=True)
class BestWindow:
    """Class probabilities of the most confident window of one input, and where it lies."""

    scores: np.ndarray
    start: int
    length: int
    windows: int

    def fields(self, sample_rate: int) -> dict[str, Any]:
        """``window_start_s``, ``window_end_s`` and ``windows`` for a prediction, when the input
        had more than one window; nothing otherwise."""
        if self.windows <= 1:
            return {}
        return {"window_start_s": self.start / sample_rate,
                "window_end_s": (self.start + self.length) / sample_rate, "windows": self.windows}


def hop_samples(hop_seconds: float, sample_rate: int) -> int:
    """``task.window_hop_seconds`` in samples (at least one)."""
    return max(1, round(hop_seconds * sample_rate))


def window_starts(samples: int, window: int, hop: int) -> list[int]:
    """Starts of windows of ``window`` samples every ``hop``; the last one ends at the end."""
    if samples <= window:
        return [0]
    starts = list(range(0, samples - window + 1, hop))
    return starts if starts[-1] == samples - window else [*starts, samples - window]


def best_windows(score: Score, waveforms: np.ndarray, lengths: Sequence[int], window: int, hop: int,
                 background: Sequence[bool] = ()) -> list[BestWindow]:
    """Per row of ``waveforms`` (B, N) with ``lengths``: score its windows, ``CHUNK`` at a time,
    and keep the one whose top probability is highest; windows whose top class is marked in
    ``background`` (one boolean per class) come last. A row no longer than ``window`` is one
    window, zero-padded to ``window``."""
    waveforms = np.asarray(waveforms, dtype=np.float32)
    if waveforms.shape[1] < window:
        waveforms = np.pad(waveforms, ((0, 0), (0, window - waveforms.shape[1])))
    owners, starts, sizes = [], [], []
    for row, length in enumerate(int(n) for n in lengths):
        for start in window_starts(length, window, hop):
            owners.append(row)
            starts.append(start)
            sizes.append(min(length, window))
    pieces = np.stack([waveforms[row, start:start + window]
                       for row, start in zip(owners, starts, strict=True)])
    piece_lengths = np.array(sizes, dtype=np.int64)
    scores = np.concatenate([score(pieces[i:i + CHUNK], piece_lengths[i:i + CHUNK]).astype(np.float32)
                             for i in range(0, len(pieces), CHUNK)])
    confidence = scores.max(axis=1)
    if len(background):
        confidence = confidence - np.asarray(background, dtype=np.float32)[scores.argmax(axis=1)]
    owner_of = np.array(owners)
    best = []
    for row in range(len(lengths)):
        mine = np.flatnonzero(owner_of == row)
        chosen = int(mine[confidence[mine].argmax()])
        best.append(BestWindow(scores[chosen], starts[chosen], sizes[chosen], len(mine)))
    return best
