"""Knowledge distillation: the loss, a teacher from its artifact, students made from its weights."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_resume import run as run_in_subprocess

import omnitune
from omnitune.build import build_dataset
from omnitune.compress import compress
from omnitune.config import validate_components
from omnitune.distill import Distiller, distillation_loss
from omnitune.errors import ConfigError
from omnitune.runtime import Runtime
from omnitune_text.shrink import attention_heads

from conftest import save_tiny_bert, sentiment_rows, tiny_run, write_csv


def test_distillation_loss_is_hintons_formula_on_hand_made_logits() -> None:
    student = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    teacher = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 4.0]])
    task_loss, temperature, alpha = torch.tensor(0.7), 2.0, 0.25

    def softmax(row: list[float]) -> list[float]:
        exps = [math.exp(x / temperature) for x in row]
        return [e / sum(exps) for e in exps]

    kl = sum(sum(p * math.log(p / q) for p, q in zip(softmax(t), softmax(s), strict=True))
             for t, s in zip(teacher.tolist(), student.tolist(), strict=True)) / 2
    expected = alpha * temperature**2 * kl + (1 - alpha) * 0.7

    actual = distillation_loss(student, teacher, task_loss, temperature=temperature, alpha=alpha)
    assert actual.item() == pytest.approx(expected, rel=1e-6)
    # a student that already agrees with its teacher pays only the task share
    same = distillation_loss(teacher, teacher, task_loss, temperature=temperature, alpha=alpha)
    assert same.item() == pytest.approx((1 - alpha) * 0.7, abs=1e-7)


@pytest.fixture(scope="module")
def reviews(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("reviews") / "reviews.csv", sentiment_rows(400))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, reviews: Path) -> Path:
    """A 4-layer tiny BERT (4 heads) fine-tuned on the generated reviews."""
    folder = tmp_path_factory.mktemp("teacher")
    bert = save_tiny_bert(folder / "bert", dropout=0.0, layers=4, heads=4)
    config = tiny_run(bert, reviews, folder / "run", epochs=3)
    return omnitune.finetune(config, plugins=omnitune.load_plugins()).artifact


def test_compress_writes_an_ordinary_smaller_artifact(teacher: Path, tmp_path: Path) -> None:
    artifact = compress(teacher, tmp_path / "student", layers=[0, 2], prune_heads={2: [1, 3]})

    big, small = omnitune.Predictor.load(teacher), omnitune.Predictor.load(artifact)
    options = small.config.backbone.options
    assert (options["layers"], options["prune_heads"]) == ([0, 2], {"2": [1, 3]})  # JSON keys
    assert attention_heads(small.task.model.backbone.encoder) == [4, 2]
    count = sum(p.numel() for p in small.task.model.parameters())
    assert count < sum(p.numel() for p in big.task.model.parameters())
    # the student is the teacher's own layers: shrinking the loaded teacher gives its outputs
    big.task.model.backbone.shrink(layers=[0, 2], prune_heads={2: [1, 3]})
    texts = ["great fun film", "boring and dull", "the plot was weak"]
    expected, actual = big.predict(texts), small.predict(texts)
    for want, got in zip(expected, actual, strict=True):
        assert got["label"] == want["label"]
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)


def disagreement(teacher: Path, student: Path, texts: list[str]) -> float:
    """Mean KL(teacher || student) of their predicted distributions over ``texts``."""
    def probabilities(folder: Path) -> torch.Tensor:
        return torch.tensor([[p["probabilities"][k] for k in ("neg", "pos")]
                             for p in omnitune.Predictor.load(folder).predict(texts)])
    p, q = probabilities(teacher), probabilities(student)
    return float((p * (p / q).log()).sum(-1).mean())


def test_a_distilled_student_follows_its_teacher_more_closely(teacher: Path, tmp_path: Path) -> None:
    """The students learn from rows where "great" and "superb" are labelled negative: alone,
    a student learns that; distilled, it keeps its teacher's view."""
    rows = [{**row, "label": "neg" if {"great", "superb"} & set(row["text"].split()) else row["label"]}
            for row in sentiment_rows(400)]
    settings = ["train.epochs=3", "train.lr=1e-3", f"dataset.train={write_csv(tmp_path / 'odd.csv', rows)}"]
    alone = compress(teacher, tmp_path / "alone", layers=[0], fine_tune=True, overrides=settings)
    distilled = compress(teacher, tmp_path / "distilled", layers=[0], distill=True,
                         overrides=[*settings, "train.distill.alpha=0.9"])
    held_out = [row["text"] for row in sentiment_rows(200, seed=7)]
    assert disagreement(teacher, distilled, held_out) < 0.5 * disagreement(teacher, alone, held_out)


def test_cached_teacher_logits_equal_the_teachers_own(teacher: Path) -> None:
    plugins = omnitune.load_plugins()
    predictor = omnitune.Predictor.load(teacher, plugins=plugins)
    settings = omnitune.TrainConfig(distill={"teacher": str(teacher)}).distill
    options = validate_components(predictor.config, plugins.registry)
    examples = build_dataset(predictor.config, options, plugins.registry).train[:40]
    runtime = Runtime.create("cpu", "fp32")
    distiller = Distiller.create(settings, predictor.task, "text-classification",
                                 predictor.data_info, runtime, plugins)
    distiller.cache_logits(examples, runtime, batch_size=16)
    batch = distiller.collate([(i, e) for i, e in enumerate(examples[5:13], start=5)])
    torch.testing.assert_close(batch["teacher_logits"],
                               distiller.teacher.logits(distiller.student.collate(examples[5:13])),
                               atol=1e-5, rtol=1e-5)


def test_a_teacher_with_another_label_map_is_refused(teacher: Path, tiny_bert: Path, reviews: Path,
                                                     tmp_path: Path) -> None:
    config = tiny_run(tiny_bert, reviews, tmp_path / "run",
                      distill={"teacher": str(teacher)})
    config["dataset"]["labels"] = ["pos", "neg"]
    with pytest.raises(ConfigError, match=r"the teacher's labels .* are \['neg', 'pos'\], the "
                                          r"student's dataset's are \['pos', 'neg'\]"):
        omnitune.finetune(config, plugins=omnitune.load_plugins())


def test_a_killed_distillation_run_resumes_to_identical_weights(teacher: Path, reviews: Path,
                                                                tmp_path: Path) -> None:
    student = compress(teacher, tmp_path / "student", layers=[1])
    settings = {"epochs": 2, "checkpoint_every": 5, "keep_checkpoints": 2, "init_from": str(student),
                "distill": {"teacher": str(teacher), "cache_logits": True}}
    config = omnitune.Predictor.load(student).config.model_dump(mode="json")

    def run_config(name: str) -> dict:
        return {**config, "train": {**config["train"], **settings}, "output_dir": str(tmp_path / name)}

    assert run_in_subprocess(run_config("straight")).returncode == 0
    killed = run_in_subprocess(run_config("interrupted"), kill_at=15)
    assert killed.returncode == -signal.SIGKILL
    resumed = run_in_subprocess(run_config("interrupted"), resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr

    expected = load_file(tmp_path / "straight" / "artifact" / "model.safetensors")
    actual = load_file(tmp_path / "interrupted" / "artifact" / "model.safetensors")
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_compress_command_writes_a_student_and_refuses_to_shrink_it_twice(
        teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from omnitune.cli import main

    assert main(["compress", str(teacher), "--layers", "1,3", "--output-dir", str(tmp_path / "s")]) == 0
    assert f"artifact: {tmp_path / 's' / 'artifact'}" in capsys.readouterr().out
    student = tmp_path / "s" / "artifact"
    assert omnitune.Predictor.load(student).config.backbone.options["layers"] == [1, 3]

    assert main(["compress", str(student), "--layers", "0", "--output-dir", str(tmp_path / "t")]) == 2
    assert "the teacher's backbone already has layers set" in capsys.readouterr().err
