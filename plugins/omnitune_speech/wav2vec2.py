"""torchaudio's wav2vec2 / HuBERT / WavLM as omnitune backbones.

Weights come from a torchaudio pipeline bundle (downloaded by torchaudio, needs its hub) or a
local state dict (safetensors, or ``torch.load(weights_only=True)``). The artifact records the
builder and its keywords, so ``export_dir`` rebuilds the architecture without any download.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
import torchaudio
from torch import nn

from omnitune.errors import AssetError, CheckpointError
from omnitune_speech.backbone import SpeechBackbone, load_into, load_state_dict, read_export
from omnitune_speech.plugin import WAV2VEC2_ARCHITECTURES, TorchaudioBackboneConfig

log = logging.getLogger("omnitune")
GENERIC_BUILDERS = ("wav2vec2_model", "wavlm_model")


class Wav2Vec2Backbone(SpeechBackbone):
    """A torchaudio ``Wav2Vec2Model``: conv feature encoder (50 frames/s) then transformer."""

    def __init__(self, model: nn.Module, builder: dict[str, Any], config: TorchaudioBackboneConfig) -> None:
        super().__init__()
        model.aux = None  # a fine-tuned ASR bundle's output layer: the task brings its own head
        self.model = model
        self.builder = builder
        self.config = config
        self.sample_rate = config.sample_rate
        self.num_features: int = model.encoder.feature_projection.projection.out_features
        self.num_layers: int = len(model.encoder.transformer.layers) + 1

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.normalize_waveform:
            waveforms = normalize_waveforms(waveforms, lengths)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_feature_encoder):
            features, frame_lengths = self.model.feature_extractor(waveforms, lengths)
        layers = self.model.encoder.extract_features(features, frame_lengths, self.config.layer)
        return layers[-1], frame_lengths

    def layer_index(self, name: str) -> int:
        """Feature encoder and projection 0, transformer layer k is k + 1."""
        match = re.search(r"transformer\.layers\.(\d+)\.", name)
        return int(match.group(1)) + 1 if match else 0

    def export_spec(self) -> dict[str, Any]:
        return {"builder": self.builder}


def torchaudio_wav2vec2(config: TorchaudioBackboneConfig, export_dir: Path | None = None) -> Wav2Vec2Backbone:
    """From a bundle, a named architecture (+ checkpoint), or an artifact's ``export_dir``."""
    if export_dir is not None:
        builder = read_export(export_dir).get("builder")
        return Wav2Vec2Backbone(_build(builder, export_dir / "speech_backbone.json"), builder, config)
    if config.bundle is not None:
        model, builder = _from_bundle(config.bundle)
    else:
        name = "wav2vec2_model" if config.architecture == "custom" else config.architecture
        builder = {"name": name, "options": dict(config.architecture_options)}
        model = _build(builder, "architecture_options")
    if config.checkpoint is not None:
        path = Path(config.checkpoint).expanduser()
        state = {k: v for k, v in load_state_dict(path).items() if not k.startswith("aux.")}
        model.aux = None
        load_into(model, state, path)
    elif config.bundle is None:
        log.warning("torchaudio-wav2vec2: architecture %s without a checkpoint starts from random weights",
                    config.architecture)
    return Wav2Vec2Backbone(model, builder, config)


def normalize_waveforms(waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per clip over its own samples; padding stays 0."""
    positions = torch.arange(waveforms.shape[1], device=waveforms.device)
    valid = (positions < lengths.unsqueeze(1)).to(waveforms.dtype)
    count = lengths.clamp(min=1).unsqueeze(1).to(waveforms.dtype)
    mean = (waveforms * valid).sum(1, keepdim=True) / count
    variance = ((waveforms - mean).square() * valid).sum(1, keepdim=True) / count
    return (waveforms - mean) / (variance + 1e-7).sqrt() * valid


def _build(builder: Any, source: Path | str) -> nn.Module:
    """Call an allow-listed ``torchaudio.models`` builder; a saved spec never names arbitrary code."""
    allowed = (*WAV2VEC2_ARCHITECTURES, *GENERIC_BUILDERS)
    if not isinstance(builder, dict) or builder.get("name") not in allowed:
        raise CheckpointError(f"{source}: expected a builder among {allowed}, got {builder!r}")
    options = dict(builder.get("options", {}))
    if builder["name"] in GENERIC_BUILDERS:
        options["aux_num_out"] = None
    try:
        return getattr(torchaudio.models, builder["name"])(**options)
    except TypeError as error:
        raise CheckpointError(f"{source}: torchaudio.models.{builder['name']} rejected the options: "
                              f"{error}") from error


def _from_bundle(name: str) -> tuple[nn.Module, dict[str, Any]]:
    bundle = getattr(torchaudio.pipelines, name, None)
    if not isinstance(bundle, torchaudio.pipelines.Wav2Vec2Bundle):
        known = [n for n in dir(torchaudio.pipelines) if isinstance(getattr(torchaudio.pipelines, n),
                                                                   torchaudio.pipelines.Wav2Vec2Bundle)]
        raise AssetError(f"backbone.bundle: {name!r} is not a torchaudio wav2vec2-family bundle; "
                         f"known: {', '.join(known)}")
    try:
        model = bundle.get_model()
    except Exception as error:  # noqa: BLE001 - network and cache failures vary
        raise AssetError(f"torchaudio bundle {name} could not be downloaded ({error}); offline, set "
                         "architecture and a local checkpoint instead") from error
    model = getattr(model, "model", model)  # bundles that normalise wrap the model
    # torchaudio keeps a bundle's builder keywords in the dataclass field _params.
    options = {k: v for k, v in bundle._params.items() if k != "aux_num_out"}
    builder = "wavlm_model" if "encoder_num_buckets" in options else "wav2vec2_model"
    return model, {"name": builder, "options": options}
