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


def image_classification(workdir: Path) -> dict:
    from test_vision_end_to_end import COLOURS
    from test_vision_end_to_end import tiny_run as vision_run
    from vision_fixtures import write_image_folder

    return vision_run(write_image_folder(workdir / "images", COLOURS, per_class=8), workdir / "run",
                      batch_size=8)


def audio_classification(workdir: Path) -> dict:
    from speech_audio import tiny_cnn, train_settings, write_tone_folder

    return {"task": {"name": "audio-classification", "clip_seconds": 0.5}, "backbone": tiny_cnn(),
            "dataset": {"name": "audio-folder", "root": str(write_tone_folder(workdir / "tones", 8))},
            "train": train_settings(batch_size=8), "output_dir": str(workdir / "run")}


def speech_recognition(workdir: Path) -> dict:
    from speech_audio import tiny_cnn, train_settings, write_transcribed_manifest

    manifest = write_transcribed_manifest(workdir / "asr", count=24)
    return {"task": {"name": "speech-recognition"}, "backbone": tiny_cnn(),
            "dataset": {"name": "audio-manifest", "manifest": str(manifest), "target": "transcript",
                        "target_column": "text"},
            "train": train_settings(batch_size=8), "output_dir": str(workdir / "run")}


def recommendation(workdir: Path) -> dict:
    from test_recsys_end_to_end import recsys_run, write_world

    (workdir / "world").mkdir(exist_ok=True)
    return recsys_run(write_world(workdir / "world", users=30), workdir / "run",
                      {"name": "mf", "dim": 8}, batch_size=32)


def causal_lm(workdir: Path) -> dict:
    from lm_fixtures import lm_run, save_tiny_llama, write_capitals

    model = save_tiny_llama(workdir / "llama")
    return lm_run(model, write_capitals(workdir / "capitals.jsonl"), workdir / "run")


CASES = [
    ConformanceCase("text-classification", text_classification, ["the film was wonderful", "dull"],
                    invalid=["task.max_length=2", "dataset.validation_fraction=1.5"]),
    ConformanceCase("image-classification", image_classification,
                    lambda workdir: sorted((workdir / "images").rglob("*.png"))[:3],
                    invalid=["task.image_size=0", "dataset.test_fraction=2"]),
    ConformanceCase("audio-classification", audio_classification,
                    lambda workdir: sorted((workdir / "tones").rglob("*.wav"))[:3],
                    invalid=["backbone.n_mels=2", "task.clip_seconds=-1"]),
    ConformanceCase("speech-recognition", speech_recognition,
                    lambda workdir: sorted((workdir / "asr").glob("*.flac"))[:3],
                    invalid=["backbone.channels=[]", "dataset.target=words"]),
    ConformanceCase("recommendation", recommendation, ["user1", "user2", "nobody"],
                    invalid=["backbone.dim=0", "dataset.rating_threshold=abc"]),
    ConformanceCase("causal-lm", causal_lm, ["capital of peru?", [{"role": "user", "content": "hi"}]],
                    invalid=["task.max_length=2", "task.top_p=0"]),
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


def test_run_all_runs_every_check_in_a_row(tmp_path: Path) -> None:
    from omnitune.testing import run_all

    recommendation_case = next(case for case in CASES if case.name == "recommendation")
    run_all(recommendation_case, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(CHECKS)
