"""The conformance kit over every plugin shipped or demonstrated here: one entry per task.

Adding a plugin's task is one ``ConformanceCase`` entry in ``CASES``: a name, a function that
writes a small run config (and its data) under a folder, and raw inputs to predict on. The
example plugins are pip-installed into a throwaway venv and discovered through their entry points.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from omnitune.testing import CHECKS, ConformanceCase

from conftest import PluginEnv, save_tiny_bert, sentiment_rows, tabular_rows, tabular_run, tiny_run, write_csv


def text_classification(workdir: Path) -> dict:
    data = write_csv(workdir / "reviews.csv", sentiment_rows(96))
    return tiny_run(save_tiny_bert(workdir / "bert"), data, workdir / "run", batch_size=8)


def tabular_classification(workdir: Path) -> dict:
    return tabular_run(write_csv(workdir / "table.csv", tabular_rows(120)), workdir / "run")


CASES = [
    ConformanceCase("text-classification", text_classification, ["the film was wonderful", "dull"],
                    invalid=["task.max_length=2", "dataset.validation_fraction=1.5"]),
    ConformanceCase("tabular-classification (examples/acme-tabular)", tabular_classification,
                    [{"income": 90_000, "age": 70, "noise": 0}, [20_000, 20, 0.5], "50000,49,0"],
                    invalid=["backbone.depth=0", "dataset.feature_columns=[]"]),
]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_conformance(case: ConformanceCase, check: str, tmp_path: Path, example_plugins: PluginEnv) -> None:
    CHECKS[check](case, tmp_path)


def test_the_kit_fails_a_case_whose_bad_value_is_accepted(tmp_path: Path, example_plugins: PluginEnv) -> None:
    from omnitune.testing import ConformanceError

    lenient = ConformanceCase("lenient", tabular_classification, [[0, 0, 0]], invalid=["dataset.seed=3"])
    with pytest.raises(ConformanceError, match="lenient: bad-config: --set dataset.seed=3 was accepted"):
        CHECKS["bad-config"](lenient, tmp_path)
