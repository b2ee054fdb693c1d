"""Distillation for speech: the KD term over a speech-recognition model's frames (CTC), padded
frames left out; a teacher that decodes audio differently from its student scores its own
decoding of the student's clips. Tiny CNNs on generated tone clips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from speech_audio import tiny_cnn, train_settings, write_tone_folder, write_transcribed_manifest

import omnitune
from omnitune.build import build_dataset
from omnitune.config import validate_components
from omnitune.distill import TEACHER_INPUTS, Distiller, softened_kl
from omnitune.runtime import Runtime


def test_frame_kd_averages_over_real_frames_only() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    real = torch.tensor([[True, True, True, True], [True, True, False, False]])
    temperature = 2.0

    def frame_kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        p, q = (t / temperature).softmax(-1), (s / temperature).softmax(-1)
        return (p * (p / q).log()).sum()

    frames = [(b, f) for b in range(2) for f in range(4) if real[b, f]]
    expected = sum(frame_kl(student[b, f], teacher[b, f]) for b, f in frames) / len(frames)
    assert softened_kl(student, teacher, temperature, real).item() == pytest.approx(expected.item(), rel=1e-5)
    # whatever the padded frames hold changes nothing
    noisy = student.clone()
    noisy[1, 2:] = 100 * torch.randn(2, 3)
    assert softened_kl(noisy, teacher, temperature, real).item() == pytest.approx(expected.item(), rel=1e-5)


def recognition_run(manifest: Path, output_dir: Path, channels: list[int], epochs: int,
                    distill: dict | None = None) -> dict:
    return {"task": {"name": "speech-recognition"},
            "backbone": {**tiny_cnn(), "channels": channels, "spec_augment": None},
            "dataset": {"name": "audio-manifest", "manifest": str(manifest), "target_column": "text",
                        "target": "transcript", "group_column": "speaker",
                        "validation_fraction": 0.17, "test_fraction": 0.17},
            "train": train_settings(epochs=epochs, batch_size=8, lr=3e-2, head_lr=3e-2, distill=distill),
            "output_dir": str(output_dir)}


def frame_disagreement(teacher: Path, student: Path, clips: list[str]) -> float:
    """Mean per-frame KL(teacher || student) over the real frames of ``clips``."""
    def frames(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
        task = omnitune.Predictor.load(folder, device="cpu").task
        batch = task.encode_inputs(clips)
        with torch.no_grad():
            logits, lengths = task.model.eval()(batch["waveforms"], batch["lengths"])
        return logits, torch.arange(logits.shape[1]) < lengths[:, None]

    (teacher_logits, real), (student_logits, student_real) = frames(teacher), frames(student)
    assert torch.equal(real, student_real)
    return softened_kl(student_logits, teacher_logits, 1.0, real).item()


def test_a_ctc_student_distilled_over_frames_follows_its_teacher(tmp_path: Path,
                                                                 plugins: omnitune.Plugins) -> None:
    manifest = write_transcribed_manifest(tmp_path / "clips")
    teacher = omnitune.finetune(recognition_run(manifest, tmp_path / "teacher", [8, 16], 10),
                                plugins=plugins)
    assert teacher.metrics["test_cer"] <= 0.25, teacher.metrics
    distill = {"teacher": str(teacher.artifact), "temperature": 2.0, "alpha": 0.9}
    alone = omnitune.finetune(recognition_run(manifest, tmp_path / "alone", [4, 8], 4), plugins=plugins)
    distilled = omnitune.finetune(recognition_run(manifest, tmp_path / "kd", [4, 8], 4, distill),
                                  plugins=plugins)

    # clips of two and three characters: the shorter ones' padded frames are masked
    clips = [str(tmp_path / "clips" / f"clip{index}.flac") for index in range(6)]
    assert (frame_disagreement(teacher.artifact, distilled.artifact, clips)
            < frame_disagreement(teacher.artifact, alone.artifact, clips))


def test_a_teacher_at_another_sample_rate_scores_its_own_decoding_of_the_clips(
        tmp_path: Path, plugins: omnitune.Plugins) -> None:
    root = write_tone_folder(tmp_path / "tones", per_class=8)

    def keywords(name: str, sample_rate: int) -> tuple[Path, omnitune.Predictor]:
        run = {"task": {"name": "audio-classification", "clip_seconds": 0.5},
               "backbone": {**tiny_cnn(), "sample_rate": sample_rate},
               "dataset": {"name": "audio-folder", "root": str(root)},
               "train": train_settings(max_steps=2, batch_size=8), "output_dir": str(tmp_path / name)}
        artifact = omnitune.finetune(run, plugins=plugins).artifact
        return artifact, omnitune.Predictor.load(artifact, plugins=plugins)

    (artifact, teacher), (_, student) = keywords("teacher", 8000), keywords("student", 16000)
    settings = omnitune.TrainConfig(distill={"teacher": str(artifact)}).distill
    distiller = Distiller.create(settings, student.task, "audio-classification", student.data_info,
                                 Runtime.create("cpu", "fp32"), plugins)
    options = validate_components(student.config, plugins.registry)
    examples = build_dataset(student.config, options, plugins.registry).train[:6]
    batch = distiller.collate(list(enumerate(examples)))

    # the student's half-second clips at 16 kHz, the teacher's own at 8 kHz, for the same files
    assert batch["waveforms"].shape == (6, 8000)
    assert batch[TEACHER_INPUTS]["waveforms"].shape == (6, 4000)
    with torch.no_grad():
        scored = distiller.teacher.logits(batch[TEACHER_INPUTS]).softmax(-1)
    predicted = teacher.predict([example.path for example in examples])
    expected = torch.tensor([[p["probabilities"][label] for label in teacher.task.labels] for p in predicted])
    torch.testing.assert_close(scored, expected, atol=1e-5, rtol=1e-5)
