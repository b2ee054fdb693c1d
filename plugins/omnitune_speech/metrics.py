"""Character and word error rates, from per-utterance error counts the CTC task outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Outputs = dict[str, torch.Tensor]


def edit_distance(hypothesis: Sequence[object], reference: Sequence[object]) -> int:
    """Levenshtein distance: substitutions, insertions and deletions turning one into the other."""
    previous = list(range(len(reference) + 1))
    for i, item in enumerate(hypothesis, start=1):
        current = [i]
        for j, wanted in enumerate(reference, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item != wanted)))
        previous = current
    return previous[-1]


def error_counts(hypotheses: list[str], references: list[str]) -> dict[str, torch.Tensor]:
    """Per utterance: character and word edits, and reference lengths (what CER/WER divide by)."""
    rows = [(edit_distance(h, r), len(r), edit_distance(h.split(), r.split()), len(r.split()))
            for h, r in zip(hypotheses, references, strict=True)]
    columns = torch.tensor(rows, dtype=torch.long).reshape(-1, 4).T
    return dict(zip(("char_errors", "ref_chars", "word_errors", "ref_words"), columns, strict=True))


def cer(_config: object) -> Callable[[Outputs], float]:
    """Character edits over reference characters, summed over the evaluation set."""
    return lambda outputs: _rate(outputs["char_errors"], outputs["ref_chars"])


def wer(_config: object) -> Callable[[Outputs], float]:
    """Word edits over reference words, summed over the evaluation set."""
    return lambda outputs: _rate(outputs["word_errors"], outputs["ref_words"])


def _rate(errors: torch.Tensor, total: torch.Tensor) -> float:
    return errors.sum().item() / max(total.sum().item(), 1)
