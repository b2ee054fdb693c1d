"""What every speech backbone shares: waveforms in, frame features out, and its export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from omnitune.errors import AssetError, CheckpointError

EXPORT_FILE = "speech_backbone.json"


class SpeechBackbone(nn.Module):
    """``forward(waveforms (B, N), lengths (B,))`` -> ``(frames (B, T, C), frame_lengths (B,))``.

    Waveforms are mono at ``sample_rate``; ``num_features`` is C. Tasks pool the frames (clip
    labels) or read them one by one (CTC).
    """

    sample_rate: int
    num_features: int
    int8: Literal["static", "dynamic"] = "static"
    """How int8 quantizes the ONNX graph: activation ranges calibrated on training clips
    (convolutions), or ranges taken per batch (onnxruntime quantizes LSTMs only that way)."""
    exports_fixed_length_only: bool = False
    """True: the ONNX graph holds for one input length only, so export needs ``task.clip_seconds``."""
    float_through: tuple[str, ...] = ()
    """int8 keeps the ONNX graph float up to and including the first node of these types: a front
    end whose range int8 cannot hold, and what reads it."""

    def feature_module(self) -> nn.Module | None:
        """The module whose output ``(B, bands, frames)`` is what the backbone reads of the audio,
        where explanations attribute (None: the backbone reads raw waveforms)."""
        return None

    def export_spec(self) -> dict[str, Any]:
        """What rebuilding the architecture needs beyond the run config (JSON-able)."""
        return {}

    def export(self, directory: Path) -> None:
        """Write the architecture description (no weights) for ``export_dir``."""
        directory.mkdir(parents=True, exist_ok=True)
        spec = {"class": type(self).__name__, **self.export_spec()}
        (directory / EXPORT_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")


def read_export(directory: Path) -> dict[str, Any]:
    """The spec a backbone's ``export`` wrote into an artifact."""
    path = directory / EXPORT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: missing or unreadable backbone description ({error})") from error


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file, or a ``.pt``/``.pth``/``.bin`` read with
    ``weights_only=True`` (never runs code). A ``{"model_state": ...}`` or ``{"state_dict": ...}``
    wrapper is unwrapped."""
    if not path.is_file():
        raise AssetError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any reader failure means the file is unusable
        raise AssetError(f"{path}: not a loadable state dict ({error})") from error
    for wrapper in ("model_state", "state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict):
        raise AssetError(f"{path}: expected a state dict (name -> tensor), got {type(loaded).__name__}")
    return loaded


def load_into(module: nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    """Load ``state`` into ``module``; every key must match, else an error naming ``source``."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise AssetError(f"{source} does not fit {type(module).__name__}: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
