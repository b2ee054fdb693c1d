"""Recommendation end to end on generated interactions: config -> fit -> artifact -> Predictor ->
recommend / similar_items / unknown user / unknown item, and the CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import omnitune
from omnitune.errors import TrainingInterrupted
from omnitune_recsys.datasets import interactions_file
from omnitune_recsys.plugin import InteractionsFileConfig
from omnitune_recsys.ranking import evaluate_scores, popularity_scores, random_scores

from conftest import FILLER, NEGATIVE, POSITIVE, write_csv

GENRE_WORDS = (POSITIVE, NEGATIVE, FILLER)
ITEMS_PER_GENRE = 40


def genre_of(item: int) -> int:
    return item % 3


def write_world(folder: Path, users: int = 120, seed: int = 0) -> tuple[Path, Path]:
    """Users who each like one genre: they rate 9 of its items 4-5 and 3 other items 1-2. Item
    texts use words of the tiny BERT's vocabulary, one word list per genre."""
    rng = random.Random(seed)
    items = range(3 * ITEMS_PER_GENRE)
    rows = []
    for user in range(users):
        liked = [i for i in items if genre_of(i) == user % 3]
        others = [i for i in items if genre_of(i) != user % 3]
        chosen = [(i, rng.choice("45")) for i in rng.sample(liked, 9)]
        chosen += [(i, rng.choice("12")) for i in rng.sample(others, 3)]
        rng.shuffle(chosen)
        rows += [{"user_id": f"user{user}", "item_id": f"item{item}", "rating": rating,
                  "timestamp": str(1000 * user + t)} for t, (item, rating) in enumerate(chosen)]
    texts = [{"item_id": f"item{i}", "title": " ".join(rng.sample(GENRE_WORDS[genre_of(i)], 2)),
              "genres": rng.choice(GENRE_WORDS[genre_of(i)])} for i in items]
    return write_csv(folder / "interactions.csv", rows), write_csv(folder / "items.csv", texts)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_world(tmp_path_factory.mktemp("recsys"))


def recsys_run(world: tuple[Path, Path], output_dir: Path, backbone: dict, **train: object) -> dict:
    interactions, items = world
    return {
        "task": {"name": "recommendation", "top_k": 5},
        "backbone": backbone,
        "dataset": {"name": "interactions-file", "interactions": str(interactions), "items": str(items),
                    "rating_threshold": 4},
        "train": {"epochs": 15, "batch_size": 64, "lr": 2e-2, "weight_decay": 0.0, "progress": False,
                  **train},
        "output_dir": str(output_dir),
    }


def popularity_baseline(world: tuple[Path, Path]) -> dict[str, float]:
    splits = interactions_file(InteractionsFileConfig(interactions=str(world[0]), rating_threshold=4))
    return evaluate_scores(popularity_scores(splits.info["popularity"]), splits.test,
                           len(splits.info["items"]))


def test_mf_fit_artifact_predictor(world: tuple[Path, Path], tmp_path: Path,
                                   plugins: omnitune.Plugins) -> None:
    run = recsys_run(world, tmp_path / "run", {"name": "mf", "dim": 16})
    result = omnitune.finetune(run, plugins=plugins)

    baseline = popularity_baseline(world)
    assert result.metrics["test_recall_at_10"] > baseline["recall_at_10"] + 0.1, (result.metrics, baseline)
    assert result.metrics["test_ndcg_at_10"] > baseline["ndcg_at_10"]
    info = json.loads((result.artifact / "data_info.json").read_text())
    assert len(info["users"]) == 120 and len(info["items"]) == 3 * ITEMS_PER_GENRE

    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    known, unknown = predictor.predict(["user4", "stranger"])
    assert known["known_user"] and len(known["items"]) == 5
    trained_on = {info["items"][i] for i in info["train_items"][info["users"].index("user4")]}
    recommended = [entry["item"] for entry in known["items"]]
    assert not trained_on & set(recommended)
    assert sum(genre_of(int(i.removeprefix("item"))) == 4 % 3 for i in recommended) >= 4
    assert not unknown["known_user"] and "unknown user 'stranger'" in unknown["note"]
    most_popular = max(range(len(info["items"])), key=lambda i: (info["popularity"][i], -i))
    assert unknown["items"][0]["item"] == info["items"][most_popular]

    similar = predictor.task.similar_items("item3", k=8)
    assert len(similar["items"]) == 8 and "item3" not in [e["item"] for e in similar["items"]]
    assert sum(genre_of(int(e["item"].removeprefix("item"))) == 0 for e in similar["items"]) >= 6
    with pytest.raises(omnitune.DataError, match="unknown item 'item999'"):
        predictor.task.similar_items("item999")
    assert predictor.task.recommend("user4", k=3)["items"] == known["items"][:3]
    again = omnitune.evaluate(result.artifact, plugins=plugins)
    assert again["test_ndcg_at_10"] == pytest.approx(result.metrics["test_ndcg_at_10"], abs=1e-6)


def test_two_tower_ranks_cold_items_by_their_text(world: tuple[Path, Path], tiny_bert: Path, tmp_path: Path,
                                                  plugins: omnitune.Plugins) -> None:
    backbone = {"name": "two-tower", "dim": 16,
                "text_backbone": {"name": "transformers", "model": str(tiny_bert), "pooling": "mean"}}
    run = recsys_run(world, tmp_path / "run", backbone, epochs=20)
    run["dataset"]["cold_item_fraction"] = 0.2
    result = omnitune.finetune(run, plugins=plugins)

    splits = interactions_file(InteractionsFileConfig(interactions=str(world[0]), items=str(world[1]),
                                                      rating_threshold=4, cold_item_fraction=0.2))
    cold = set(splits.info["cold_items"])
    chance = evaluate_scores(random_scores(len(splits.info["items"])), splits.test, len(splits.info["items"]))
    assert len(cold) == 24
    assert result.metrics["test_ndcg_at_5"] > chance["ndcg_at_5"] + 0.2, (result.metrics, chance)

    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    cold_id = splits.info["items"][min(cold)]
    similar = predictor.task.similar_items(cold_id, k=10)
    same_genre = [genre_of(int(e["item"].removeprefix("item"))) == genre_of(int(cold_id[4:]))
                  for e in similar["items"]]
    assert sum(same_genre) >= 7, similar
    assert (result.artifact / "backbone" / "two_tower.json").is_file()
    assert not (result.artifact / "backbone" / "text").exists()  # frozen encoder: vectors are in the weights


@pytest.fixture(scope="module")
def user_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each user's taste is the genre they like; region is noise; user0 has no row."""
    rng = random.Random(1)
    rows = [{"user_id": f"user{u}", "taste": f"genre{u % 3}", "region": rng.choice("NSEW")}
            for u in range(1, 120)]
    return write_csv(tmp_path_factory.mktemp("users") / "users.csv", rows)


def test_two_tower_user_features_answer_an_unknown_user(world: tuple[Path, Path], user_file: Path,
                                                        tiny_bert: Path, tmp_path: Path,
                                                        plugins: omnitune.Plugins) -> None:
    backbone = {"name": "two-tower", "dim": 16,
                "text_backbone": {"name": "transformers", "model": str(tiny_bert), "pooling": "mean"}}
    run = recsys_run(world, tmp_path / "run", backbone)
    run["dataset"] |= {"users": str(user_file), "user_feature_columns": ["taste", "region"]}
    result = omnitune.finetune(run, plugins=plugins)
    info = json.loads((result.artifact / "data_info.json").read_text())
    assert info["user_features"]["vocabularies"]["taste"] == ["genre0", "genre1", "genre2"]

    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    assert "backbone.user_feature_embeddings.weight" in dict(predictor.task.model.named_parameters())
    popular = predictor.task.recommend("newcomer", k=10)
    assert popular["basis"] == "popular" and not popular["known_user"]
    for genre in range(3):
        answer = predictor.task.recommend("newcomer", k=10, features={"taste": f"genre{genre}"})
        assert answer["basis"] == "features" and "from its features" in answer["note"]
        items = [int(entry["item"].removeprefix("item")) for entry in answer["items"]]
        assert sum(genre_of(i) == genre for i in items) >= 8, answer
        assert [e["item"] for e in answer["items"]] != [e["item"] for e in popular["items"]]
    queries = ["user4", {"user": "newcomer", "features": {"taste": "genre2"}},
               {"user": "newcomer", "features": {"taste": "genre9"}}]
    known, by_dict, unseen = predictor.predict(queries)
    assert known["basis"] == "history" and by_dict["basis"] == "features"
    assert unseen["basis"] == "popular" and "none of its features" in unseen["note"]
    with pytest.raises(omnitune.DataError, match=r"unknown user feature\(s\) \['age'\]"):
        predictor.task.recommend("newcomer", features={"age": "30"})


def test_user_features_need_a_model_that_has_them(world: tuple[Path, Path], tiny_bert: Path, tmp_path: Path,
                                                  plugins: omnitune.Plugins) -> None:
    backbone = {"name": "two-tower", "user_features": True,
                "text_backbone": {"name": "transformers", "model": str(tiny_bert)}}
    with pytest.raises(omnitune.ConfigError, match="user_features needs a dataset with user features"):
        omnitune.finetune(recsys_run(world, tmp_path / "run", backbone, max_steps=1), plugins=plugins)


def test_two_tower_fine_tunes_its_text_encoder_with_sampled_softmax(
        world: tuple[Path, Path], tiny_bert: Path, tmp_path: Path, plugins: omnitune.Plugins) -> None:
    backbone = {"name": "two-tower", "dim": 16, "train_text_encoder": True, "text_max_length": 8,
                "text_backbone": {"name": "transformers", "model": str(tiny_bert), "pooling": "mean"}}
    run = recsys_run(world, tmp_path / "run", backbone, max_steps=6, batch_size=32)
    run["task"] |= {"loss": "softmax", "similarity": "cosine", "temperature": 0.1}
    result = omnitune.finetune(run, plugins=plugins)
    assert result.metrics["steps"] == 6
    assert (result.artifact / "backbone" / "text" / "config.json").is_file()
    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    names = [name for name, _ in predictor.task.model.named_parameters()]
    assert any(name.startswith("backbone.text_encoder.") for name in names)
    assert len(predictor.predict("user0")[0]["items"]) == 5


def test_cli_predict_for_a_user(world: tuple[Path, Path], tmp_path: Path, plugins: omnitune.Plugins) -> None:
    result = omnitune.finetune(recsys_run(world, tmp_path / "run", {"name": "mf", "dim": 8}, max_steps=3),
                               plugins=plugins)
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(result.artifact), "user7",
                           "nobody", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    known, unknown = (json.loads(line) for line in done.stdout.splitlines())
    assert known["input"] == "user7" and known["known_user"] and len(known["items"]) == 5
    assert unknown["known_user"] is False and "most popular" in unknown["note"]


def test_plugin_module_imports_no_torch() -> None:
    code = "import sys, omnitune_recsys.plugin; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_two_tower_without_item_texts_is_a_clear_error(world: tuple[Path, Path], tiny_bert: Path,
                                                       tmp_path: Path, plugins: omnitune.Plugins) -> None:
    backbone = {"name": "two-tower", "text_backbone": {"name": "transformers", "model": str(tiny_bert)}}
    run = recsys_run(world, tmp_path / "run", backbone, max_steps=1)
    del run["dataset"]["items"]
    with pytest.raises(omnitune.ConfigError, match="two-tower needs item texts"):
        omnitune.finetune(run, plugins=plugins)


class InterruptAfterCheckpoint:
    """Stops a run with a real Ctrl-C (SIGINT to this process) right after the checkpoint of
    ``step``; an exception raised by a loop event would only switch the plugin off."""

    def __init__(self, step: int) -> None:
        self.step = step

    @omnitune.hookimpl
    def on_checkpoint_saved(self, state: object, path: str) -> None:
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_two_tower_run_resumes_to_identical_weights(
        world: tuple[Path, Path], tiny_bert: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Negative sampling and id dropout draw random numbers: resume must replay them exactly."""
    from safetensors.torch import load_file

    backbone = {"name": "two-tower", "dim": 8,
                "text_backbone": {"name": "transformers", "model": str(tiny_bert), "pooling": "mean"}}
    settings = {"epochs": 1, "batch_size": 128, "checkpoint_every": 3, "eval_every": 100}
    straight = recsys_run(world, tmp_path / "straight", backbone, **settings)
    interrupted = recsys_run(world, tmp_path / "interrupted", backbone, **settings)
    omnitune.finetune(straight)
    with pytest.raises(TrainingInterrupted):
        omnitune.finetune(interrupted, plugins=omnitune.load_plugins([InterruptAfterCheckpoint(6)]))
    with caplog.at_level("INFO", logger="omnitune"):
        omnitune.finetune(interrupted, resume=True)
    assert "resumed from" in caplog.text and "step 6 of" in caplog.text

    expected = load_file(tmp_path / "straight" / "artifact" / "model.safetensors")
    actual = load_file(tmp_path / "interrupted" / "artifact" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
