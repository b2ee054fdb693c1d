"""Speech backbones: tiny torchaudio and transformers encoders through fit -> artifact -> Predictor
(rebuilt from the artifact alone), and the real pretrained GE2E encoder (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from speech_audio import SHARED, tiny_cnn, train_settings, write_tone_folder

import omnitune

TINY_WAV2VEC2 = {
    "extractor_mode": "group_norm", "extractor_conv_layer_config": [[16, 10, 5], [16, 3, 2], [16, 2, 2]],
    "extractor_conv_bias": False, "encoder_embed_dim": 32, "encoder_projection_dropout": 0.0,
    "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 4, "encoder_num_layers": 2,
    "encoder_num_heads": 2, "encoder_attention_dropout": 0.0, "encoder_ff_interm_features": 64,
    "encoder_ff_interm_dropout": 0.0, "encoder_dropout": 0.0, "encoder_layer_norm_first": False,
    "encoder_layer_drop": 0.0,
}


def _fit_and_predict(backbone: dict, tmp_path: Path, plugins: omnitune.Plugins) -> dict:
    root = write_tone_folder(tmp_path / "tones", per_class=8)
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5}, "backbone": backbone,
           "dataset": {"name": "audio-folder", "root": str(root), "validation_fraction": 0,
                       "test_fraction": 0},
           "train": train_settings(max_steps=2), "output_dir": str(tmp_path / "run")}
    artifact = omnitune.finetune(run, plugins=plugins).artifact
    return {"artifact": artifact, "prediction": omnitune.Predictor.load(artifact, plugins=plugins).predict(
        [str(root / "low" / "spk0_0.wav")])[0]}


def test_torchaudio_wav2vec2_from_a_safetensors_checkpoint(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    import torchaudio
    from safetensors.torch import save_file

    source = torchaudio.models.wav2vec2_model(**TINY_WAV2VEC2, aux_num_out=None)
    checkpoint = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(checkpoint))
    backbone = {"name": "torchaudio-wav2vec2", "architecture": "custom",
                "architecture_options": TINY_WAV2VEC2, "checkpoint": str(checkpoint)}

    from omnitune_speech.plugin import TorchaudioBackboneConfig
    from omnitune_speech.wav2vec2 import torchaudio_wav2vec2

    options = {k: v for k, v in backbone.items() if k != "name"}
    built = torchaudio_wav2vec2(TorchaudioBackboneConfig(**options))
    assert torch.equal(built.model.encoder.transformer.layers[1].attention.k_proj.weight,
                       source.encoder.transformer.layers[1].attention.k_proj.weight)
    assert (built.num_features, built.num_layers) == (32, 3)

    result = _fit_and_predict(backbone, tmp_path, plugins)
    checkpoint.unlink()  # the artifact alone must rebuild the model
    again = omnitune.Predictor.load(result["artifact"], plugins=plugins)
    (prediction,) = again.predict([str(tmp_path / "tones" / "low" / "spk0_0.wav")])
    assert prediction["probabilities"] == pytest.approx(result["prediction"]["probabilities"])


def test_torchaudio_checkpoint_that_does_not_fit_is_named(tmp_path: Path) -> None:
    from omnitune.errors import AssetError
    from omnitune_speech.plugin import TorchaudioBackboneConfig
    from omnitune_speech.wav2vec2 import torchaudio_wav2vec2

    checkpoint = tmp_path / "other.pt"
    torch.save({"encoder.unrelated": torch.zeros(2)}, checkpoint)
    config = TorchaudioBackboneConfig(architecture="custom", architecture_options=TINY_WAV2VEC2,
                                      checkpoint=str(checkpoint))
    with pytest.raises(AssetError, match=r"other\.pt does not fit .*unexpected \['encoder.unrelated'\]"):
        torchaudio_wav2vec2(config)


def test_transformers_audio_encoder_from_a_local_folder(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    folder = tmp_path / "tiny-w2v2"
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, conv_dim=(16, 16, 16), conv_stride=(5, 2, 2),
                                 conv_kernel=(10, 3, 2), num_conv_pos_embeddings=16,
                                 num_conv_pos_embedding_groups=4)).save_pretrained(folder)
    result = _fit_and_predict({"name": "transformers-audio", "model": str(folder)}, tmp_path, plugins)
    assert (result["artifact"] / "backbone" / "config.json").is_file()
    assert_two_class_prediction(result["prediction"])


def test_cnn_mfcc_front_end_and_too_many_blocks(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    result = _fit_and_predict({**tiny_cnn(), "features": "mfcc", "n_mfcc": 16}, tmp_path, plugins)
    assert_two_class_prediction(result["prediction"])
    from omnitune.errors import ConfigError
    from omnitune_speech.cnn import speech_cnn
    from omnitune_speech.plugin import CNNBackboneConfig

    with pytest.raises(ConfigError, match="halve the 8 bands to nothing"):
        speech_cnn(CNNBackboneConfig(n_mels=8, channels=(4, 4, 4, 4)))


@pytest.mark.slow
def test_ge2e_loads_the_resemblyzer_weights_and_embeds_real_speech() -> None:
    """Real GE2E weights from the Resemblyzer wheel (sha256-pinned, read with weights_only=True),
    run on real synthetic-speech clips."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent")
    from omnitune.assets import resolve
    from omnitune_speech.audio import AudioChecks, read_audio, stack
    from omnitune_speech.ge2e import RESEMBLYZER, ge2e
    from omnitune_speech.plugin import GE2EConfig

    encoder = ge2e(GE2EConfig()).eval()
    saved = torch.load(resolve(RESEMBLYZER), map_location="cpu", weights_only=True)["model_state"]
    assert torch.equal(encoder.lstm.weight_hh_l2, saved["lstm.weight_hh_l2"])
    assert torch.equal(encoder.linear.bias, saved["linear.bias"])
    assert sum(p.numel() for p in encoder.parameters()) == 1_423_616
    clips = [read_audio(SHARED / word / "en-us_m1_140.flac", 16000, AudioChecks()) for word in ("yes", "no")]
    with torch.no_grad():
        frames, frame_lengths = encoder(*stack(clips))
    assert frames.shape == (2, 101, 256) and frame_lengths.tolist() == [101, 101]
    assert (frames >= 0).all() and frames.std() > 0


def assert_two_class_prediction(prediction: dict) -> None:
    """A distribution over exactly the two classes, and the label is its most likely one."""
    probabilities = prediction["probabilities"]
    assert sorted(probabilities) == ["high", "low"]
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert prediction["label"] == max(probabilities, key=probabilities.get)


@pytest.mark.parametrize(("noise_floor", "tolerance"), [(0.0, 1e-5), (1.5, 1e-4)])
def test_ge2e_padding_after_a_clip_leaves_its_frames_unchanged(noise_floor: float, tolerance: float) -> None:
    """The LSTM runs unpacked (three times faster on CPU): in a batch with a longer clip, a short
    clip's frames are those it gets alone, up to the frames whose STFT window reaches its end (with
    ``noise_floor`` those last frames count towards the floor, hence the looser tolerance)."""
    from omnitune_speech.ge2e import GE2EEncoder
    from omnitune_speech.plugin import GE2EConfig

    torch.manual_seed(0)
    encoder = GE2EEncoder(GE2EConfig(noise_floor=noise_floor)).eval()
    short, long = torch.randn(8000) * 0.1, torch.randn(16000) * 0.1
    with torch.no_grad():
        alone, alone_lengths = encoder(short.unsqueeze(0), torch.tensor([8000]))
        batched, lengths = encoder(torch.stack([torch.nn.functional.pad(short, (0, 8000)), long]),
                                   torch.tensor([8000, 16000]))
    assert lengths.tolist() == [alone_lengths.item(), 101] == [51, 101]
    inside = (8000 - 200) // 160 + 1  # frames whose 25 ms window ends inside the short clip
    assert torch.allclose(batched[0, :inside], alone[0, :inside], atol=tolerance)


def test_ge2e_noise_floor_exports_to_onnx_and_matches_pytorch(tmp_path: Path) -> None:
    """The noise floor (a sort over frame energies) goes into the ONNX graph, and onnxruntime
    gives the frames PyTorch gives, for clips of two lengths in one batch."""
    import onnxruntime

    from omnitune_speech.ge2e import GE2EEncoder
    from omnitune_speech.plugin import GE2EConfig

    torch.manual_seed(0)
    encoder = GE2EEncoder(GE2EConfig(noise_floor=1.5)).eval()
    waveforms = torch.randn(2, 8000) * 0.1
    waveforms[0, 2000:5000] += torch.sin(torch.arange(3000) * 0.3)  # a tone inside steady noise
    lengths = torch.tensor([8000, 6000])
    torch.onnx.export(encoder, (waveforms, lengths), str(tmp_path / "ge2e.onnx"), dynamo=True,
                      external_data=False, input_names=["waveforms", "lengths"],
                      output_names=["frames", "frame_lengths"], opset_version=18)
    session = onnxruntime.InferenceSession(str(tmp_path / "ge2e.onnx"), providers=["CPUExecutionProvider"])
    frames, _ = session.run(None, {"waveforms": waveforms.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        expected, _ = encoder(waveforms, lengths)
    assert frames.shape == expected.shape
    assert torch.allclose(torch.from_numpy(frames), expected, atol=1e-4)


def test_ge2e_exports_with_int8_keeping_the_front_end_and_first_lstm_float(
        tmp_path: Path, plugins: omnitune.Plugins) -> None:
    """GE2E exports with a fixed clip length (its LSTM does not export with a dynamic one) and int8
    leaves the power-mel front end and the first LSTM in float (``float_through``). Without held-out
    clips it refuses, saying so."""
    from omnitune.errors import ConfigError
    from omnitune.export import export

    root = write_tone_folder(tmp_path / "tones", per_class=8)
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5, "pooling": "attention"},
           "backbone": {"name": "ge2e", "noise_floor": 1.5}, "head": {"name": "mlp"},
           "dataset": {"name": "audio-folder", "root": str(root), "validation_fraction": 0,
                       "test_fraction": 0},
           "train": train_settings(max_steps=2), "output_dir": str(tmp_path / "run")}
    artifact = omnitune.finetune(run, plugins=plugins).artifact
    with pytest.raises(ConfigError, match="no test or validation split"):
        export(artifact, tmp_path / "refused")
    run["dataset"] |= {"group_pattern": r"^(spk\d+)_", "validation_fraction": 0.25}
    run["output_dir"] = str(tmp_path / "held-out")
    artifact = omnitune.finetune(run, plugins=plugins).artifact
    manifest = export(artifact, tmp_path / "bundle", quantize="int8", exporter="dynamo")
    assert manifest["parity"]["failures"] == [] and manifest["quantization"]["failures"] == []
    filterbank, first_lstm = manifest["models"]["int8"]["kept_float"]  # node names given by the exporter
    assert "matmul" in filterbank.lower() and "LSTM" in first_lstm
