"""Shared fixtures: a fresh plugin manager per test, a tiny random BERT on disk, generated text."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

import omnitune

POSITIVE = ["great", "wonderful", "superb", "lovely", "brilliant", "delightful", "moving", "fun"]
NEGATIVE = ["awful", "boring", "dreadful", "dull", "terrible", "clumsy", "tedious", "weak"]
FILLER = ["the", "movie", "film", "plot", "acting", "was", "really", "quite", "and", "story"]


@pytest.fixture
def plugins() -> omnitune.Plugins:
    """A fresh plugin manager and registry; nothing survives the test."""
    return omnitune.load_plugins()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with hidden size 32 and a word-level vocabulary, saved like a hub model."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def save_tiny_bert(folder: Path) -> Path:
    """Write the tiny BERT and its tokenizer into ``folder``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER]
    words = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    words.normalizer = normalizers.BertNormalizer(lowercase=True)
    words.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    BertTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                      sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


def sentiment_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    """Short reviews whose label is carried by one sentiment word among filler."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = "pos" if index % 2 == 0 else "neg"
        words = rng.sample(FILLER, 4) + [rng.choice(POSITIVE if label == "pos" else NEGATIVE)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label, "source": f"s{index % 17}"})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(400))


def tiny_run(tiny_bert: Path, data: Path, output_dir: Path, **train: object) -> dict:
    """A run config for the tiny BERT on a generated CSV."""
    return {
        "task": {"name": "text-classification", "max_length": 16},
        "backbone": {"name": "transformers", "model": str(tiny_bert), "pooling": "mean"},
        "head": {"name": "linear", "dropout": 0.1},
        "dataset": {"name": "text-file", "train": str(data), "group_column": "source"},
        "train": {"epochs": 2, "batch_size": 16, "lr": 3e-3, "progress": False, **train},
        "output_dir": str(output_dir),
    }
