"""Encoded examples -> one batch of rows: padded one example a row, or packed several a row."""

from __future__ import annotations

import torch

from omnitune_text.chat_encoding import IGNORE, Encoded


def batch_rows(encoded: list[Encoded], pad_id: int, pack_to: int | None = None) -> dict[str, torch.Tensor]:
    """Token ids, labels and the example each token belongs to (``example``; -1 on padding).

    Unpacked (``pack_to`` None): one example a row, right-padded, with an ``attention_mask``.
    Packed: consecutive examples share a row of at most ``pack_to`` tokens, ``position_ids``
    restart at 0 for each example and there is no attention mask, so transformers' mask builder
    (``find_packed_sequence_indices``) makes attention block-diagonal: no token sees another
    example. Either way an example's first token is never a target (it would be predicted from
    the example before it).
    """
    lengths = [len(e.ids) for e in encoded]
    rows = packed_rows(lengths, pack_to) if pack_to else [[index] for index in range(len(encoded))]
    width = max(sum(lengths[index] for index in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, IGNORE)
    example = torch.full_like(ids, -1)
    positions = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        start = 0
        for index in row:
            end = start + lengths[index]
            ids[r, start:end] = torch.tensor(encoded[index].ids)
            labels[r, start + 1:end] = torch.tensor(encoded[index].labels[1:])
            example[r, start:end] = index
            positions[r, start:end] = torch.arange(lengths[index])
            start = end
        positions[r, start:] = torch.arange(width - start)  # the padding is a block of its own
    batch = {"input_ids": ids, "labels": labels, "example": example}
    if pack_to:
        return batch | {"position_ids": positions}
    return batch | {"attention_mask": (example >= 0).long()}


def packed_rows(lengths: list[int], width: int) -> list[list[int]]:
    """Example indices grouped in order into rows of at most ``width`` tokens."""
    rows: list[list[int]] = []
    used = width
    for index, length in enumerate(lengths):
        if used + length > width:
            rows.append([])
            used = 0
        rows[-1].append(index)
        used += length
    return rows
