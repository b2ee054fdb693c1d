"""Audio longer than the training clips, at prediction time: windows of the clip length every
``hop`` samples, each scored; the most confident window speaks for the whole file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

CHUNK = 64  # windows per forward pass, so a long file never needs one huge batch


@dataclass(frozen=True)
class BestWindow:
    """Class probabilities of the most confident window of one input, and where it lies."""

    scores: torch.Tensor
    start: int
    length: int
    windows: int


def window_starts(samples: int, window: int, hop: int) -> list[int]:
    """Starts of windows of ``window`` samples every ``hop``; the last one ends at the end."""
    if samples <= window:
        return [0]
    starts = list(range(0, samples - window + 1, hop))
    return starts if starts[-1] == samples - window else [*starts, samples - window]


def best_windows(score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], waveforms: torch.Tensor,
                 lengths: torch.Tensor, window: int, hop: int,
                 background: torch.Tensor | None = None) -> list[BestWindow]:
    """Per row of ``waveforms`` (B, N) with ``lengths``: score its windows with ``score(windows,
    lengths) -> probabilities (W, C)`` and keep the one whose top probability is highest; windows
    whose top class is marked in ``background`` (C booleans) come last. A row no longer than
    ``window`` is one window (padded, as ``waveforms`` holds it)."""
    pieces, piece_lengths, owners, starts = [], [], [], []
    for row, length in enumerate(lengths.tolist()):
        for start in window_starts(length, window, hop):
            pieces.append(waveforms[row, start:start + window])
            piece_lengths.append(min(length, window))
            owners.append(row)
            starts.append(start)
    stacked, stacked_lengths = torch.stack(pieces), torch.tensor(piece_lengths, device=waveforms.device)
    scores = torch.cat([score(chunk, chunk_lengths) for chunk, chunk_lengths
                        in zip(stacked.split(CHUNK), stacked_lengths.split(CHUNK), strict=True)])
    confidence, top = scores.max(dim=1)
    if background is not None:
        confidence = confidence - background.to(scores.device)[top].float()
    owner_of = torch.tensor(owners, device=scores.device)
    best = []
    for row in range(len(lengths)):
        mine = (owner_of == row).nonzero().flatten()
        chosen = int(mine[confidence[mine].argmax()])
        best.append(BestWindow(scores[chosen], starts[chosen], piece_lengths[chosen], len(mine)))
    return best
