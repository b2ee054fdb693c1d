"""The GE2E speaker encoder (Resemblyzer 0.1.4): 40 power-mel bands -> 3-layer LSTM -> 256-d.

The weights come from the Resemblyzer wheel on PyPI (fetched with ``pip download --no-deps``,
sha256-checked, never installed) and are read with ``torch.load(weights_only=True)``. The front
end matches Resemblyzer's: 16 kHz, 25 ms windows, 10 ms steps, 40 Slaney mel bands of power
(not log), quiet clips raised to -30 dBFS. Its voice-activity trimming is left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnitune.assets import PackagedAsset, resolve
from omnitune_speech.backbone import SpeechBackbone, load_into, load_state_dict
from omnitune_speech.frontend import MelFrontEnd, NoiseFloor, SpecAugment
from omnitune_speech.plugin import GE2EConfig

RESEMBLYZER = PackagedAsset(
    package="Resemblyzer",
    version="0.1.4",
    wheel_sha256="8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
    member="resemblyzer/pretrained.pt",
)
SAMPLE_RATE = 16000
MEL_BANDS = 40
HIDDEN = 256
LAYERS = 3
TARGET_DBFS = -30.0


class GE2EEncoder(SpeechBackbone):
    """Frames are ``relu(linear(lstm_output))``; at the last frame (``pooling: last``) that is,
    up to the L2 norm, GE2E's own utterance embedding."""

    sample_rate = SAMPLE_RATE
    num_features = HIDDEN
    num_layers = LAYERS + 1
    int8 = "dynamic"
    exports_fixed_length_only = True  # torch.export specialises the LSTM's sequence length
    float_through = ("LSTM",)  # power mels: int8 accuracy fell from 0.995 to 0.76 (2026-11-30)

    def __init__(self, config: GE2EConfig) -> None:
        super().__init__()
        self.normalize_volume = config.normalize_volume
        self.frontend = MelFrontEnd("power-mel", SAMPLE_RATE, MEL_BANDS, 25.0, 10.0, slaney=True)
        self.spec_augment = SpecAugment(config.spec_augment) if config.spec_augment else nn.Identity()
        self.noise_floor = NoiseFloor(config.noise_floor) if config.noise_floor > 0 else None
        self.lstm = nn.LSTM(MEL_BANDS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.normalize_volume:
            waveforms = _raise_to_dbfs(waveforms, lengths, TARGET_DBFS)
        mels = self.frontend(waveforms)
        frame_lengths = self.frontend.frame_lengths(lengths, mels.shape[2])
        if self.noise_floor is not None:
            mels = self.noise_floor(mels, frame_lengths)
        mels = self.spec_augment(mels).transpose(1, 2)
        # Unpacked on purpose: the LSTM reads forwards, so a frame's output never depends on the
        # padding after it, and on CPU a packed sequence costs about three times the time.
        outputs, _ = self.lstm(mels)
        return torch.relu(self.linear(outputs)), frame_lengths

    def layer_index(self, name: str) -> int:
        """LSTM layer k is depth k + 1; the projection is the top."""
        match = re.search(r"_l(\d+)$", name)
        return int(match.group(1)) + 1 if name.startswith("lstm.") and match else self.num_layers

    def feature_module(self) -> nn.Module:
        return self.frontend

    def export_spec(self) -> dict[str, Any]:
        return {"mel_bands": MEL_BANDS, "hidden": HIDDEN, "layers": LAYERS, "sample_rate": SAMPLE_RATE}


def ge2e(config: GE2EConfig, export_dir: Path | None = None) -> GE2EEncoder:
    """The pretrained GE2E encoder; from ``export_dir`` the bare architecture (weights follow)."""
    encoder = GE2EEncoder(config)
    if export_dir is None:
        path = Path(config.checkpoint).expanduser() if config.checkpoint else resolve(RESEMBLYZER)
        state = load_state_dict(path)
        wanted = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
        load_into(nn.ModuleDict({"lstm": encoder.lstm, "linear": encoder.linear}), wanted, path)
    return encoder


def _raise_to_dbfs(waveforms: torch.Tensor, lengths: torch.Tensor, target: float) -> torch.Tensor:
    """Scale each clip up (never down) so its RMS over its own samples reaches ``target`` dBFS."""
    power = waveforms.square().sum(1) / lengths.clamp(min=1)
    dbfs = 10 * torch.log10(power.clamp(min=1e-10))
    gain = torch.where(dbfs < target, 10 ** ((target - dbfs) / 20), torch.ones_like(dbfs))
    return waveforms * gain.unsqueeze(1)
