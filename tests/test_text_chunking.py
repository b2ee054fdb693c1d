"""Long texts in text-classification: overlapping chunks pooled per text in training, prediction,
export and serving alike; what is still cut is counted."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

import omnitune
from omnitune.classification import ChunkPooling, chunk_members
from omnitune.errors import ConfigError
from omnitune.export_checks import decision
from omnitune.serving import Bundle
from omnitune_text.chunks import TextChunker
from omnitune_text.plugin import ChunkingOptions

from conftest import FILLER, NEGATIVE, POSITIVE, tiny_run, write_csv


def test_a_long_text_becomes_overlapping_chunks_that_reach_its_end(tiny_bert: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    words = [FILLER[i % len(FILLER)] for i in range(39)] + ["superb"]  # 40 tokens, 14 per chunk
    chunker = TextChunker(tokenizer, 16, ChunkingOptions(stride=4, max_chunks=4))
    batch = chunker([" ".join(words), "fun"])
    assert batch["input_ids"].shape[0] == 5  # starts 0, 10, 20, 30 (4 shared tokens), and "fun"
    assert batch["members"].tolist() == [[1, 1, 1, 1, 0], [0, 0, 0, 0, 1]]
    last = tokenizer.convert_tokens_to_ids("superb")
    assert (batch["input_ids"][3] == last).any() and batch["truncated"].tolist() == [0, 0]
    first, second = batch["input_ids"][0][1:15].tolist(), batch["input_ids"][1][1:15].tolist()
    assert first[-4:] == second[:4]  # the stride: four tokens shared

    cut = TextChunker(tokenizer, 16, ChunkingOptions(stride=4, max_chunks=3))([" ".join(words)])
    assert cut["input_ids"].shape[0] == 3 and cut["truncated"].tolist() == [1]
    unchunked = TextChunker(tokenizer, 16, None)([" ".join(words), "fun"])
    assert "members" not in unchunked and unchunked["truncated"].tolist() == [1, 0]
    with pytest.raises(ConfigError, match="stride: 14 must be below the 14 text tokens"):
        TextChunker(tokenizer, 16, ChunkingOptions(stride=14))


def test_pooling_mean_max_and_attention_per_document() -> None:
    vectors = torch.tensor([[1.0, 4.0], [3.0, 0.0], [5.0, 5.0]])
    members = chunk_members(torch.tensor([0, 0, 1]), 2)
    assert ChunkPooling("mean", 2)(vectors, members).tolist() == [[2.0, 2.0], [5.0, 5.0]]
    assert ChunkPooling("max", 2)(vectors, members).tolist() == [[3.0, 4.0], [5.0, 5.0]]
    attention = ChunkPooling("attention", 2)
    with torch.no_grad():
        attention.score.weight.copy_(torch.tensor([[10.0, 0.0]]))  # the chunk with the larger x wins
        attention.score.bias.zero_()
    pooled = attention(vectors, members)
    assert pooled[0].tolist() == pytest.approx([3.0, 0.0], abs=1e-3) and pooled[1].tolist() == [5.0, 5.0]


def tail_rows(count: int, seed: int) -> list[dict[str, str]]:
    """Twenty filler words, then the sentiment word that decides the label: past max_length 16."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = "pos" if index % 2 == 0 else "neg"
        sentiment = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        words = [rng.choice(FILLER) for _ in range(20)] + [sentiment]
        rows.append({"text": " ".join(words), "label": label, "source": f"s{index % 17}"})
    return rows


@pytest.fixture(scope="module")
def tail_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("tail") / "tail.csv", tail_rows(240, seed=0))


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_chunked_training_reads_the_tail_that_truncation_loses(
        tiny_bert: Path, tail_csv: Path, tmp_path: Path, pooling: str) -> None:
    run = tiny_run(tiny_bert, tail_csv, tmp_path / "run", epochs=5)
    run["task"]["chunking"] = {"stride": 4, "max_chunks": 4, "pooling": pooling}
    chunked = omnitune.finetune(run, plugins=omnitune.load_plugins()).metrics
    assert chunked["test_accuracy"] >= 0.9 and chunked["test_truncated_fraction"] == 0.0, chunked

    predictor = omnitune.Predictor.load(tmp_path / "run" / "artifact")
    tail = " ".join(["the film"] * 20)
    predictions = predictor.predict([f"{tail} superb", f"{tail} {tail} {tail} dreadful"])
    assert predictions[0]["label"] == "pos" and predictions[0]["truncated"] is False
    assert predictions[1]["truncated"] is True  # 120 words: beyond 4 chunks


def test_without_chunking_the_tail_is_cut_and_counted(tiny_bert: Path, tail_csv: Path,
                                                      tmp_path: Path) -> None:
    run = tiny_run(tiny_bert, tail_csv, tmp_path / "run", epochs=5)
    run["task"]["chunking"] = None
    cut = omnitune.finetune(run, plugins=omnitune.load_plugins()).metrics
    assert cut["test_truncated_fraction"] == 1.0 and cut["test_accuracy"] < 0.75, cut


def test_a_chunked_bundle_predicts_long_texts_as_pytorch_does(
        bundle_of: Callable[[str], Path], text_artifact: Path) -> None:
    texts = [" ".join(row["text"] for row in tail_rows(3, seed=seed)) for seed in range(4)] + ["fun"]
    expected = omnitune.Predictor.load(text_artifact).predict(texts)
    got = Bundle(bundle_of("text")).predict(texts)
    assert [decision(p) for p in got] == [decision(p) for p in expected]
    assert [p["truncated"] for p in got] == [p["truncated"] for p in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-4)


def test_a_frozen_backbone_caches_its_outputs_and_learns_the_same(
        tiny_bert: Path, tail_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train.cache_backbone_outputs: each distinct chunk goes through the encoder once over the
    whole run (train, every evaluation, test), and the head learns what it learns without it."""
    from omnitune_text.backbone import TextBackbone

    encoded = [0]
    original = TextBackbone._encode

    def counting(self: TextBackbone, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        encoded[0] += len(input_ids)
        return original(self, input_ids, attention_mask)

    monkeypatch.setattr(TextBackbone, "_encode", counting)
    results = {}
    for cache in (False, True):
        encoded[0] = 0
        run = tiny_run(tiny_bert, tail_csv, tmp_path / f"run-{cache}", epochs=3, strategy="freeze-backbone",
                       head_lr=1e-2, cache_backbone_outputs=cache)
        results[cache] = (omnitune.finetune(run, plugins=omnitune.load_plugins()).metrics, encoded[0])
    (plain, plain_rows), (cached, cached_rows) = results[False], results[True]
    assert cached["test_accuracy"] == pytest.approx(plain["test_accuracy"], abs=0.02)
    assert cached["eval_loss"] == pytest.approx(plain["eval_loss"], abs=1e-3)
    assert cached_rows * 2.5 < plain_rows, (cached_rows, plain_rows)
    with pytest.raises(omnitune.errors.ConfigError, match="needs a frozen backbone"):
        omnitune.finetune(tiny_run(tiny_bert, tail_csv, tmp_path / "full", cache_backbone_outputs=True),
                          plugins=omnitune.load_plugins())


def test_many_chunks_pass_the_backbone_in_checkpointed_slices_with_the_same_result() -> None:
    """Twelve chunks of three documents pass in slices of MIN_CHUNKS_PER_PASS (recomputed in
    backward) with the same outputs and gradients as in one pass, and the sliced training
    forward builds no autograd graph inside the backbone (a graph per slice kept glibc's heap
    from reusing the slices' freed activations: 8.8 GB resident on the long-document benchmark)."""
    from torch import nn

    from omnitune.classification import ChunkedBackboneHead

    class Backbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 3)
            self.graph_built: list[bool] = []

        def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            self.graph_built.append(torch.is_grad_enabled())
            return (self.linear(inputs) * mask.unsqueeze(-1)).mean(1)

    torch.manual_seed(0)
    model = ChunkedBackboneHead(Backbone(), nn.Linear(3, 2), "mean", 3)
    model.TOKENS_PER_PASS = 1
    inputs, mask = torch.randn(12, 7, 4), torch.ones(12, 7)
    members = chunk_members(torch.arange(12) // 4, 3)
    results = []
    for per_pass in (5, 100):
        model.MIN_CHUNKS_PER_PASS = per_pass
        model.zero_grad()
        model.backbone.graph_built.clear()
        out = model(inputs, mask, members)
        forward_passes = list(model.backbone.graph_built)
        out.sum().backward()
        results.append((out.detach(), model.backbone.linear.weight.grad.clone()))
    assert forward_passes == [True]  # one pass: an ordinary graph
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)
    model.MIN_CHUNKS_PER_PASS = 5
    model.backbone.graph_built.clear()
    model(inputs, mask, members).sum().backward()
    assert model.backbone.graph_built == [False] * 3 + [True] * 3  # forward in 3 slices, then recomputed


def test_chunk_slices_hold_about_tokens_per_pass() -> None:
    from torch import nn

    from omnitune.classification import ChunkedBackboneHead

    model = ChunkedBackboneHead(nn.Identity(), nn.Identity(), "mean", 3)
    assert model.chunks_per_pass(torch.zeros(256, dtype=torch.long)) == 8
    assert model.chunks_per_pass(torch.zeros(128, dtype=torch.long)) == 16
    assert model.chunks_per_pass(torch.zeros(2048, dtype=torch.long)) == 8  # at least the minimum


def test_training_on_cut_texts_warns_when_the_count_first_appears_and_doubles(
        caplog: pytest.LogCaptureFixture) -> None:
    from omnitune_text.truncation import TruncationReport

    report = TruncationReport("text-classification", "were cut")
    with caplog.at_level("WARNING", logger="omnitune"):
        for cut in (0, 1, 1, 1, 1, 4):
            report.add(cut, 8)
    assert [r.getMessage() for r in caplog.records] == [
        "text-classification: 1 example(s) so far were cut (1 of the last 8)",
        "text-classification: 2 example(s) so far were cut (1 of the last 8)",
        "text-classification: 4 example(s) so far were cut (1 of the last 8)",
        "text-classification: 8 example(s) so far were cut (4 of the last 8)"]
