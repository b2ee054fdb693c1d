"""transformers audio encoders (Wav2Vec2Model, HubertModel, WavLMModel, ...) as backbones."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

from omnitune_speech.backbone import SpeechBackbone
from omnitune_speech.plugin import TransformersAudioConfig
from omnitune_speech.wav2vec2 import normalize_waveforms


class TransformersAudio(SpeechBackbone):
    """Raw waveform in, hidden states out (one frame per conv stride, 20 ms for Wav2Vec2)."""

    def __init__(self, encoder: torch.nn.Module, config: TransformersAudioConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = config
        self.sample_rate = config.sample_rate
        self.num_features: int = encoder.config.hidden_size
        feature_encoder = getattr(encoder, "feature_extractor", None)
        if config.freeze_feature_encoder and feature_encoder is not None:
            feature_encoder.requires_grad_(False)  # the loop's freezing strategies leave it so

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.normalize_waveform:
            waveforms = normalize_waveforms(waveforms, lengths)
        mask = (torch.arange(waveforms.shape[1], device=waveforms.device) < lengths.unsqueeze(1)).long()
        out = self.encoder(input_values=waveforms, attention_mask=mask,
                           output_hidden_states=self.config.layer is not None)
        states = out.last_hidden_state if self.config.layer is None else out.hidden_states[self.config.layer]
        frames = states.shape[1]
        frame_lengths = torch.ceil(lengths * frames / waveforms.shape[1]).long().clamp(min=1, max=frames)
        return states, frame_lengths

    def export(self, directory: Path) -> None:
        """The encoder's config.json (no weights), for ``export_dir``."""
        self.encoder.config.save_pretrained(directory)


def transformers_audio(config: TransformersAudioConfig, export_dir: Path | None = None) -> TransformersAudio:
    """An AutoModel audio encoder by hub id or local folder; from ``export_dir`` without weights."""
    if export_dir is not None:
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(export_dir, local_files_only=True))
        return TransformersAudio(encoder, config)
    local = Path(config.model).expanduser()
    source = str(local) if local.is_dir() else config.model
    encoder = AutoModel.from_pretrained(source, revision=config.revision, local_files_only=local.is_dir(),
                                        dtype=torch.float32)
    return TransformersAudio(encoder, config)
