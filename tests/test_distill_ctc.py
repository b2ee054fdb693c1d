"""Distillation for CTC: the KD term over a speech-recognition model's frames, padded frames left
out; tiny CNNs on generated 'a'/'b' tone clips of different lengths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from speech_audio import tiny_cnn, train_settings, write_transcribed_manifest

import omnitune
from omnitune.distill import softened_kl


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
