"""Frames to one vector per clip: padding never counts; attention follows its learned scores."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omnitune_speech.classification import pool


def frames_and_lengths() -> tuple[torch.Tensor, torch.Tensor]:
    """Two clips of 4 frames of 2 features: the first has 3 real frames and a huge padding frame."""
    frames = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [3.0, 6.0], [100.0, 100.0]],
                           [[0.0, 1.0], [0.0, 1.0], [4.0, 1.0], [0.0, 5.0]]])
    return frames, torch.tensor([3, 4])


def first_feature_scorer(scale: float) -> nn.Linear:
    scorer = nn.Linear(2, 1)
    with torch.no_grad():
        scorer.weight.copy_(torch.tensor([[scale, 0.0]]))
        scorer.bias.zero_()
    return scorer


def test_mean_max_and_last_ignore_padding() -> None:
    frames, lengths = frames_and_lengths()
    assert pool(frames, lengths, "mean").tolist() == [[2.0, 2.0], [1.0, 2.0]]
    assert pool(frames, lengths, "max").tolist() == [[3.0, 6.0], [4.0, 5.0]]
    assert pool(frames, lengths, "last").tolist() == [[3.0, 6.0], [0.0, 5.0]]


def test_attention_weighs_frames_by_score_and_never_the_padding() -> None:
    frames, lengths = frames_and_lengths()
    flat = pool(frames, lengths, "attention", first_feature_scorer(0.0))
    assert torch.allclose(flat, pool(frames, lengths, "mean"))  # equal scores: the mean
    sharp = pool(frames, lengths, "attention", first_feature_scorer(50.0))
    # the highest-scoring real frame wins; the padding frame (score 5000) gets no weight
    assert torch.allclose(sharp, torch.tensor([[3.0, 6.0], [4.0, 1.0]]), atol=1e-4)


def test_attention_without_a_scorer_is_refused() -> None:
    frames, lengths = frames_and_lengths()
    with pytest.raises(ValueError, match="attention pooling needs frame_scores"):
        pool(frames, lengths, "attention")
