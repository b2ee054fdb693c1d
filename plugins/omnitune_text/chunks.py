"""Long texts as overlapping chunks of at most ``max_length`` tokens, and what was cut."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from omnitune.classification import chunk_members
from omnitune.errors import ConfigError
from omnitune_text.plugin import ChunkingOptions


class TextChunker:
    """Tokenizes texts into chunks with the tokenizer's own overflow (``stride`` tokens shared by
    consecutive chunks), keeps the first ``max_chunks`` of each text and flags the texts cut.
    Without chunking options every text is one chunk cut at ``max_length``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int,
                 chunking: ChunkingOptions | None) -> None:
        self.tokenizer, self.max_length, self.chunked = tokenizer, max_length, chunking is not None
        self.max_chunks = chunking.max_chunks if chunking else 1
        self.stride = 0 if chunking is None else chunking.stride
        if self.stride is None:
            self.stride = max_length // 8
        room = max_length - tokenizer.num_special_tokens_to_add()
        if self.chunked and not tokenizer.is_fast:
            raise ConfigError(f"task.chunking needs a fast tokenizer; {type(tokenizer).__name__} is not "
                              "one (set task.chunking: null to cut texts at max_length)")
        if self.stride >= room:
            raise ConfigError(f"task.chunking.stride: {self.stride} must be below the {room} text tokens "
                              f"a chunk of max_length {max_length} holds")

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` per chunk, ``members`` (texts, chunks) when
        chunked, and ``truncated`` (1 for each text longer than what was kept)."""
        if not self.tokenizer.is_fast:
            return self._cut(texts)
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                 stride=self.stride, return_overflowing_tokens=True, return_tensors="pt")
        owners = encoded["overflow_to_sample_mapping"].long()
        position = torch.arange(len(owners)) - torch.searchsorted(owners, owners)
        kept = position < self.max_chunks
        chunks_per_text = torch.bincount(owners, minlength=len(texts))
        batch = {"input_ids": encoded["input_ids"][kept], "attention_mask": encoded["attention_mask"][kept]}
        if self.chunked:
            batch["members"] = chunk_members(owners[kept], len(texts))
        return batch | {"truncated": (chunks_per_text > self.max_chunks).long()}

    def _cut(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """A slow tokenizer (no overflow): cut at ``max_length``, texts that were longer flagged."""
        lengths = [len(ids) for ids in self.tokenizer(list(texts))["input_ids"]]
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                "truncated": torch.tensor([int(n > self.max_length) for n in lengths])}
