"""The conformance kit over every plugin shipped or demonstrated here: one entry per task.

Adding a plugin's task is one ``ConformanceCase`` line in ``CASES``: a name, a function that
writes a small run config (and its data) under a folder, and raw inputs to predict on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from omnitune.testing import CHECKS, ConformanceCase

from conftest import save_tiny_bert, sentiment_rows, tiny_run, write_csv


def text_classification(workdir: Path) -> dict:
    data = write_csv(workdir / "reviews.csv", sentiment_rows(96))
    return tiny_run(save_tiny_bert(workdir / "bert"), data, workdir / "run", batch_size=8)


CASES = [
    ConformanceCase("text-classification", text_classification, ["the film was wonderful", "dull"],
                    invalid=["task.max_length=2", "dataset.validation_fraction=1.5"]),
]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_conformance(case: ConformanceCase, check: str, tmp_path: Path) -> None:
    CHECKS[check](case, tmp_path)
