"""The classification pieces the tasks share: label set, backbone-then-head, softmax steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from omnitune.classification import BackboneHead, LabelSet, cross_entropy_step, softmax_evaluation
from omnitune.config import TrainConfig
from omnitune.errors import DataError
from omnitune.loop import build_optimizer


def test_label_set_indexes_names_and_names_the_example_with_an_unknown_label() -> None:
    labels = LabelSet(["neg", "pos", "mixed"])
    assert labels.indices(["pos", "mixed", "neg"], ["r1", "r2", "r3"]).tolist() == [1, 2, 0]
    assert labels.multi_hot([["pos", "mixed"], []], ["r1", "r2"]).tolist() == [[0, 1, 1], [0, 0, 0]]
    with pytest.raises(DataError, match=r"row 7: label 'happy' is not one the model knows; "
                                        r"expected one of \['neg', 'pos', 'mixed'\]"):
        labels.indices(["pos", "happy"], ["row 6", "row 7"])


def test_predictions_name_the_most_likely_label_with_every_probability() -> None:
    scores = torch.tensor([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]])
    first, second = LabelSet(["a", "b", "c"]).predictions(scores)
    assert first["label"] == "b" and second["label"] == "a"
    assert first["probabilities"] == pytest.approx({"a": 0.2, "b": 0.7, "c": 0.1})


def test_steps_keep_the_logits_and_decide_by_softmax() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0], [1.0, 0.5]], dtype=torch.bfloat16)
    targets = torch.tensor([0, 1, 1])
    step = cross_entropy_step(logits, targets, label_smoothing=0.1)
    assert step.outputs["logits"].dtype == torch.float32
    expected = F.cross_entropy(logits.float(), targets, label_smoothing=0.1)
    assert step.loss.item() == pytest.approx(expected.item())
    evaluated = softmax_evaluation(step.loss, step.outputs["logits"], targets)
    assert evaluated.outputs["predictions"].tolist() == [0, 1, 0]
    assert evaluated.outputs["targets"] is targets
    assert evaluated.outputs["scores"].sum(dim=1).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_backbone_head_with_a_stem_trains_the_stem_at_the_head_rate() -> None:
    model = BackboneHead(nn.Linear(8, 4), nn.Linear(4, 2), stem=nn.Linear(3, 8))
    assert model(torch.ones(5, 3)).shape == (5, 2)
    assert BackboneHead(nn.Linear(3, 4), nn.Linear(4, 2))(torch.ones(5, 3)).shape == (5, 2)
    optimizer = build_optimizer(model, TrainConfig(lr=1e-4, head_lr=1e-2))
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rates[id(model.stem.weight)] == rates[id(model.head.weight)] == 1e-2
    assert rates[id(model.backbone.weight)] == 1e-4
