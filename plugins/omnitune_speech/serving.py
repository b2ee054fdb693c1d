"""Torch-free audio preprocessing for an exported bundle: decode with soundfile, resample with a
numpy port of torchaudio's windowed-sinc resampler, crop or pad, batch; sliding windows over long
audio; greedy CTC decoding. The spectral front end is inside the graph."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnitune.errors import DataError
from omnitune.serving.processor import ClassificationProcessor, Feeds, RunGraph
from omnitune_speech.decode import AudioChecks, BadAudio, decode_mono
from omnitune_speech.windows import best_windows, hop_samples


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """``torchaudio.functional.resample`` (sinc_interp_hann, width 6, rolloff 0.99) in numpy."""
    if source_rate == target_rate:
        return waveform
    gcd = math.gcd(source_rate, target_rate)
    orig, new = source_rate // gcd, target_rate // gcd
    base = min(orig, new) * 0.99
    width = math.ceil(6 * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float32)[None] / orig
    t = (np.arange(0, -new, -1, dtype=np.float32)[:, None] / new + idx) * base
    t = np.clip(t, -6, 6)
    window = np.cos(t * math.pi / 6 / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernels = np.where(t == 0, np.float32(1.0), np.sin(t) / t)
    kernels = (kernels * window * (base / orig)).astype(np.float32)
    padded = np.pad(waveform.astype(np.float32), (width, width + orig))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernels.shape[1])[::orig]
    resampled = (frames @ kernels.T).reshape(-1)
    return resampled[:math.ceil(new * len(waveform) / orig)]


class AudioBatcher:
    """Raw audio (paths or bytes) -> ``waveforms (B, N)`` and ``lengths (B,)`` as the task builds them."""

    def __init__(self, preprocessing: dict[str, Any]) -> None:
        self.sample_rate = int(preprocessing["sample_rate"])
        checks = preprocessing.get("checks") or {}
        self.checks = AudioChecks(max_seconds=checks.get("max_seconds", 30.0),
                                  sample_rate=checks.get("sample_rate"))
        clip = preprocessing.get("clip_seconds")
        self.clip_samples = round(clip * self.sample_rate) if clip else None

    def __call__(self, inputs: Sequence[Any], whole: bool = False) -> Feeds:
        """``whole`` keeps audio longer than ``clip_seconds`` whole instead of cropping its middle
        (for windows at prediction time); shorter audio is zero-padded to ``clip_seconds``."""
        clips = [self._read(item, index) for index, item in enumerate(inputs)]
        lengths = [len(clip) for clip in clips]
        if self.clip_samples is not None:
            fitted = [_fit_clip(clip, self.clip_samples, whole) for clip in clips]
            clips, lengths = [clip for clip, _ in fitted], [length for _, length in fitted]
        waveforms = np.zeros((len(clips), max(len(c) for c in clips)), dtype=np.float32)
        for row, clip in enumerate(clips):
            waveforms[row, :len(clip)] = clip
        return {"waveforms": waveforms, "lengths": np.array(lengths, dtype=np.int64)}

    def _read(self, item: Any, index: int) -> np.ndarray:
        if isinstance(item, bytes):
            source, name = io.BytesIO(item), f"inputs[{index}] (audio bytes)"
        elif isinstance(item, str | Path):
            source, name = str(item), f"inputs[{index}] ({item})"
        else:
            raise DataError(f"inputs[{index}]: expected an audio file path or audio bytes, "
                            f"got {type(item).__name__}")
        if isinstance(source, str) and not Path(source).is_file():
            raise BadAudio(f"{name}: file not found")
        data, rate = decode_mono(source, self.checks, name)
        return resample(data, rate, self.sample_rate)


def _fit_clip(waveform: np.ndarray, samples: int, whole: bool) -> tuple[np.ndarray, int]:
    """The clip as the task holds it and how many of its samples are audio: cropped to its
    middle ``samples`` or zero-padded to them; with ``whole``, longer audio is kept whole."""
    if whole and len(waveform) > samples:
        return waveform, len(waveform)
    return _crop_or_pad(waveform, samples), min(len(waveform), samples)


def _crop_or_pad(waveform: np.ndarray, samples: int) -> np.ndarray:
    if len(waveform) >= samples:
        start = (len(waveform) - samples) // 2
        return waveform[start:start + samples]
    return np.pad(waveform, (0, samples - len(waveform)))


class AudioClassificationProcessor(ClassificationProcessor):
    """Audio clips in; ``label`` and ``probabilities`` out. Audio longer than ``clip_seconds`` is
    scored by sliding windows every ``window_hop_seconds``, as the PyTorch ``Predictor`` does (the
    same code), with ``window_start_s``, ``window_end_s`` and ``windows`` reported; a bundle
    exported before windows (no ``window_hop_seconds`` in its preprocessing) crops the middle."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        super().__init__(directory, preprocessing)
        self.batch = AudioBatcher(preprocessing)
        hop = preprocessing.get("window_hop_seconds")
        self.hop = hop_samples(hop, self.batch.sample_rate) if hop and self.batch.clip_samples else None
        background = set(preprocessing.get("background_labels", ()))
        self.background = [name in background for name in self.labels]

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        return self.batch(inputs)

    def predict(self, run: RunGraph, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        if self.hop is None:
            return super().predict(run, inputs)
        feeds = self.batch(inputs, whole=True)

        def score(waveforms: np.ndarray, lengths: np.ndarray) -> np.ndarray:
            return run({"waveforms": waveforms, "lengths": lengths})["scores"]

        best = best_windows(score, feeds["waveforms"], feeds["lengths"].tolist(), self.batch.clip_samples,
                            self.hop, self.background)
        predictions = self.decide(np.stack([window.scores for window in best]))
        return [prediction | window.fields(self.batch.sample_rate)
                for prediction, window in zip(predictions, best, strict=True)]


class SpeechRecognitionProcessor:
    """Audio in; ``text`` out: best character per frame, repeats merged, blanks dropped."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        self.batch = AudioBatcher(preprocessing)
        self.vocabulary: list[str] = list(preprocessing["vocabulary"])
        self.blank = int(preprocessing.get("blank", 0))

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        return self.batch(inputs)

    def predict(self, run: RunGraph, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        outputs = run(self.encode(inputs))
        texts = []
        for best, length in zip(outputs["logits"].argmax(-1).tolist(), outputs["frame_lengths"].tolist(),
                                strict=True):
            chars, previous = [], self.blank
            for index in best[:length]:
                if index != previous and index != self.blank:
                    chars.append(self.vocabulary[index - 1])
                previous = index
            texts.append("".join(chars))
        return [{"text": text} for text in texts]
