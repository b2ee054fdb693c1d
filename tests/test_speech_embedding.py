"""The speech-embedding backbone: Google's keyword-spotting CNN read out of openwakeword's ONNX
graphs (the real wheel from PyPI), rebuilt in torch to give what those graphs give, then trained,
reloaded from its artifact alone and exported to ONNX with int8."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from speech_audio import write_tone_folder

import omnitune
from omnitune.errors import AssetError, ConfigError
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


def chirp(seconds: float, seed: int) -> np.ndarray:
    """A rising tone over faint noise: speech-like energy moving through the mel bands."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * 16000)) / 16000
    sweep = 0.4 * np.sin(2 * np.pi * (200 + 900 * t / seconds) * t)
    return (sweep + rng.normal(0, 0.01, len(t))).astype(np.float32)


def test_the_torch_rebuild_gives_what_the_onnx_graphs_give() -> None:
    """Real weights, 1.5 seconds of audio: nine 96-d embeddings equal to openwakeword's own, to
    float rounding."""
    clip = chirp(1.5, seed=0)
    model = speech_embedding(SpeechEmbeddingConfig(context_seconds=0)).eval()
    with torch.no_grad():
        frames, windows = model(torch.from_numpy(clip)[None], torch.tensor([len(clip)]))
    expected = openwakeword_embeddings(clip)
    assert frames.shape == (1, 9, 96) and windows.tolist() == [9]
    assert np.abs(expected).max() > 10 and np.abs(frames[0].numpy() - expected).max() < 1e-4
    assert sum(p.numel() for p in model.network.parameters()) == 328_152


@pytest.mark.parametrize("noise_floor", [0.0, 1.5])
def test_a_clip_gives_the_same_windows_alone_and_beside_a_longer_one(noise_floor: float) -> None:
    """0.25 s of silence on each side: a one-second clip gives 9 windows, a half-second one 3; in
    one batch the short clip's windows are those it gets alone (what follows its end is silenced,
    as the context after it would be)."""
    model = speech_embedding(SpeechEmbeddingConfig(noise_floor=noise_floor)).eval()
    short, long = torch.from_numpy(chirp(0.5, seed=1)), torch.from_numpy(chirp(1.0, seed=2))
    with torch.no_grad():
        alone, alone_windows = model(short[None], torch.tensor([8000]))
        batched, windows = model(torch.stack([F.pad(short, (0, 8000)), long]), torch.tensor([8000, 16000]))
        bare, bare_windows = speech_embedding(SpeechEmbeddingConfig(context_seconds=0)).eval()(
            long[None], torch.tensor([16000]))
    assert batched.shape == (2, 9, 96) and windows.tolist() == [3, 9] and alone_windows.tolist() == [3]
    assert torch.allclose(batched[0, :3], alone[0, :3], atol=1e-3)
    assert bare.shape == (1, 3, 96) and bare_windows.tolist() == [3]


def test_a_model_dir_without_the_graphs_is_named(tmp_path: Path) -> None:
    from omnitune.assets import resolve

    with pytest.raises(AssetError, match=r"melspectrogram\.onnx: not found"):
        speech_embedding(SpeechEmbeddingConfig(model_dir=str(tmp_path)))
    (tmp_path / "melspectrogram.onnx").write_bytes(b"not a graph")
    with pytest.raises(AssetError, match=r"melspectrogram\.onnx: not a readable ONNX model"):
        speech_embedding(SpeechEmbeddingConfig(model_dir=str(tmp_path)))
    shutil.copy(resolve(EMBEDDING), tmp_path / "melspectrogram.onnx")  # the wrong graph
    with pytest.raises(AssetError, match=r"melspectrogram\.onnx: no tensor '0\.stft\.conv_real\.weight'"):
        speech_embedding(SpeechEmbeddingConfig(model_dir=str(tmp_path)))


def test_trains_reloads_and_exports_with_int8(tmp_path: Path, plugins: omnitune.Plugins,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
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
    result = omnitune.finetune(run, plugins=plugins, evaluate_test=False)
    clip = str(root / "high" / "spk1_1.wav")
    model = result.task.model.eval()
    with torch.no_grad():
        trained = model(**result.task.encode_inputs([clip])).softmax(-1)[0]
    monkeypatch.setenv("OMNITUNE_CACHE", str(tmp_path / "empty-cache"))  # no wheel to read graphs from
    predicted = omnitune.Predictor.load(result.artifact, plugins=plugins).predict([clip])[0]["probabilities"]
    assert not (tmp_path / "empty-cache" / "packages").exists()
    expected = dict(zip(result.task.labels, trained.tolist(), strict=True))
    assert predicted == pytest.approx(expected, abs=1e-5)

    artifact = result.artifact
    manifest = export(artifact, tmp_path / "bundle", quantize="int8", exporter="dynamo")
    assert manifest["parity"]["failures"] == [] and manifest["quantization"]["failures"] == []
    kept = [name.lower() for name in manifest["models"]["int8"]["kept_float"]]  # the exporter's names
    assert len(kept) == 3 and "conv" in kept[0] and "conv" in kept[1] and "matmul" in kept[2]  # STFT, mels


def test_export_without_a_clip_length_is_refused(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    """The graph pads short inputs to one whole window, which holds for one input length only."""
    root = write_tone_folder(tmp_path / "tones", per_class=8)
    run = {"task": {"name": "audio-classification", "clip_seconds": None},
           "backbone": {"name": "speech-embedding"},
           "dataset": {"name": "audio-folder", "root": str(root), "group_pattern": r"^(spk\d+)_",
                       "validation_fraction": 0.25, "test_fraction": 0},
           "train": {"max_steps": 1, "batch_size": 8, "progress": False}, "output_dir": str(tmp_path / "run")}
    artifact = omnitune.finetune(run, plugins=plugins, evaluate_test=False).artifact
    with pytest.raises(ConfigError, match="SpeechEmbedding exports to ONNX for one input length only; "
                                          "set task.clip_seconds"):
        export(artifact, tmp_path / "bundle")
