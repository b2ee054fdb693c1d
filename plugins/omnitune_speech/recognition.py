"""The speech-recognition task: per-frame character logits trained with CTC, greedy decoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnitune.errors import ConfigError
from omnitune.task import StepOutput
from omnitune_speech.augment import WaveAugment
from omnitune_speech.backbone import SpeechBackbone
from omnitune_speech.metrics import error_counts
from omnitune_speech.plugin import SpeechRecognitionConfig
from omnitune_speech.speech_task import SpeechTask

BLANK = 0


class FrameClassifier(nn.Module):
    """Augment (training only), backbone frames, head on every frame: ``(B, T, 1 + characters)``."""

    def __init__(self, backbone: SpeechBackbone, head: nn.Module, augment: WaveAugment) -> None:
        super().__init__()
        self.augment = augment
        self.backbone = backbone
        self.head = head

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames, frame_lengths = self.backbone(self.augment(waveforms, lengths), lengths)
        return self.head(frames), frame_lengths


class SpeechRecognition(SpeechTask):
    """Character CTC over the training transcripts' characters (index 0 is the blank); the mean
    loss is per reference character."""

    metrics = ("cer", "wer")
    monitor = "cer"
    monitor_mode = "min"

    def __init__(self, config: SpeechRecognitionConfig, *, backbone: SpeechBackbone,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        super().__init__(backbone, data_info, None, "speech-recognition")
        if not data_info.get("vocabulary"):
            raise ConfigError("speech-recognition needs a dataset with transcripts "
                              "(audio-manifest with target: transcript)")
        self.vocabulary: list[str] = list(data_info["vocabulary"])
        self.char_index = {char: i + 1 for i, char in enumerate(self.vocabulary)}
        self.model = FrameClassifier(backbone, head(backbone.num_features, len(self.vocabulary) + 1),
                                     WaveAugment(config.augment))

    def collate(self, examples: list[Any]) -> dict[str, Any]:
        kept, waveforms, lengths = self.decode([e.path for e in examples])
        transcripts = [examples[i].target for i in kept]
        encoded = [[self.char_index[c] for c in text if c in self.char_index] for text in transcripts]
        return {"waveforms": waveforms, "lengths": lengths, "transcripts": transcripts,
                "targets": torch.tensor([i for row in encoded for i in row], dtype=torch.long),
                "target_lengths": torch.tensor([len(row) for row in encoded], dtype=torch.long)}

    def num_items(self, batch: dict[str, Any]) -> int:
        return max(int(batch["target_lengths"].sum()), 1)

    def num_examples(self, batch: dict[str, Any]) -> int:
        return len(batch["lengths"])

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> StepOutput:
        logits, frame_lengths = model(batch["waveforms"], batch["lengths"])
        log_probs = logits.float().log_softmax(-1)
        loss = F.ctc_loss(log_probs.transpose(0, 1), batch["targets"], frame_lengths, batch["target_lengths"],
                          blank=BLANK, reduction="sum", zero_infinity=True)
        real = torch.arange(logits.shape[1], device=logits.device) < frame_lengths[:, None].to(logits.device)
        outputs = {"log_probs": log_probs, "frame_lengths": frame_lengths,
                   "logits": logits, "logits_mask": real}  # logits per frame: distillation over frames
        return StepOutput(loss / self.num_items(batch), outputs)

    def evaluation_step(self, model: nn.Module, batch: dict[str, Any]) -> StepOutput:
        out = self.training_step(model, batch)
        hypotheses = self.greedy_decode(out.outputs["log_probs"], out.outputs["frame_lengths"])
        return StepOutput(out.loss, error_counts(hypotheses, batch["transcripts"]))

    def predict_step(self, model: nn.Module, batch: dict[str, Any]) -> list[dict[str, Any]]:
        logits, frame_lengths = model(batch["waveforms"], batch["lengths"])
        return [{"text": text} for text in self.greedy_decode(logits, frame_lengths)]

    def greedy_decode(self, logits: torch.Tensor, frame_lengths: torch.Tensor) -> list[str]:
        """Best class per frame, repeats merged, blanks dropped."""
        texts = []
        for best, length in zip(logits.argmax(-1).tolist(), frame_lengths.tolist(), strict=True):
            chars, previous = [], BLANK
            for index in best[:length]:
                if index != previous and index != BLANK:
                    chars.append(self.vocabulary[index - 1])
                previous = index
            texts.append("".join(chars))
        return texts

    def preprocessing(self) -> dict[str, Any]:
        return {**super().preprocessing(), "vocabulary": self.vocabulary, "blank": BLANK}
