"""A tiny trained artifact shared by the hardening tests (one short CPU run per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

import omnitune

from conftest import sentiment_rows, tiny_run, write_csv


@pytest.fixture(scope="session")
def tiny_artifact(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact of the tiny BERT after a few steps on generated reviews (synthetic data)."""
    folder = tmp_path_factory.mktemp("tiny-artifact")
    data = write_csv(folder / "reviews.csv", sentiment_rows(120))
    run = tiny_run(tiny_bert, data, folder / "run", epochs=1, max_steps=3)
    return omnitune.finetune(run).artifact
