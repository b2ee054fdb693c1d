"""What both speech tasks share: decoding audio files into padded batches, lazily, per batch."""

from __future__ import annotations

import logging
from typing import Any

import torch

from omnitune.errors import ConfigError, DataError
from omnitune.task import Task
from omnitune_speech.audio import AudioChecks, BadAudio, crop_or_pad, read_audio, stack
from omnitune_speech.backbone import SpeechBackbone

log = logging.getLogger("omnitune")


class SpeechTask(Task):
    """Decodes files at the backbone's rate (in ``collate``, so in DataLoader workers), mixes to
    mono, crops or pads to ``clip_seconds`` when set, and holds files to the dataset's checks."""

    def __init__(self, backbone: SpeechBackbone, data_info: dict[str, Any], clip_seconds: float | None,
                 task_name: str) -> None:
        if not isinstance(backbone, SpeechBackbone):
            raise ConfigError(f"{task_name} needs a speech backbone (speech-cnn, ge2e, speech-embedding, "
                              f"torchaudio-wav2vec2, transformers-audio), got {type(backbone).__name__}")
        audio = data_info.get("audio", {})
        self.checks = AudioChecks(max_seconds=audio.get("max_seconds", 30.0),
                                  sample_rate=audio.get("sample_rate"))
        self.bad_files: str = audio.get("bad_files", "error")
        self.sample_rate = backbone.sample_rate
        self.clip_seconds = clip_seconds
        self.clip_samples = round(clip_seconds * backbone.sample_rate) if clip_seconds else None

    def encode_inputs(self, inputs: list[Any]) -> dict[str, torch.Tensor]:
        """Audio file paths -> ``waveforms``, ``lengths``; a bad file is an error naming it."""
        _, waveforms, lengths = self.decode([str(path) for path in inputs], bad_files="error")
        return {"waveforms": waveforms, "lengths": lengths}

    def decode(self, paths: list[str], bad_files: str | None = None,
               whole: bool = False) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """``(kept indices, waveforms (B, N), lengths (B,))``; with ``bad_files: skip`` a file that
        fails to decode is left out with a warning. ``whole`` keeps audio longer than
        ``clip_seconds`` whole instead of cropping its middle (for windows at prediction time)."""
        kept, clips, lengths = [], [], []
        for index, path in enumerate(paths):
            try:
                waveform = read_audio(path, self.sample_rate, self.checks)
            except BadAudio as problem:
                if (bad_files or self.bad_files) == "error":
                    raise
                log.warning("skipping bad audio: %s", problem)
                continue
            kept.append(index)
            if self.clip_samples is not None and not (whole and len(waveform) > self.clip_samples):
                lengths.append(min(len(waveform), self.clip_samples))
                waveform = crop_or_pad(waveform, self.clip_samples)
            else:
                lengths.append(len(waveform))
            clips.append(waveform)
        if not kept:
            raise DataError(f"every audio file of a batch was bad, e.g. {paths[0]}")
        waveforms, _ = stack(clips)
        return kept, waveforms, torch.tensor(lengths, dtype=torch.long)

    def preprocessing(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "mono": True, "clip_seconds": self.clip_seconds,
                "checks": self.checks.to_dict()}
