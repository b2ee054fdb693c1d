"""Integrated Gradients over log-mel bands and frames: complete on a trained speech CNN, and on a
hand-made classifier that reads one mel band, that band takes all the attribution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from speech_audio import RATE, tone
from torch import nn

from omnitune.cli import main
from omnitune.explain import explain
from omnitune.explain_audio import explain_frames
from omnitune.predict import Predictor


class BandReader(nn.Module):
    """A backbone stand-in: the speech plugin's real mel front end, read by a classifier."""

    def __init__(self) -> None:
        super().__init__()
        from omnitune_speech.frontend import MelFrontEnd

        self.frontend = MelFrontEnd("log-mel", RATE, 32, 25.0, 10.0)

    def feature_module(self) -> nn.Module:
        return self.frontend


class OneBandClassifier(nn.Module):
    """Logits ``(+s, -s)`` where ``s`` is the mean log-mel of one band: nothing else decides."""

    def __init__(self, band: int) -> None:
        super().__init__()
        self.backbone = BandReader()
        self.band = band

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        level = self.backbone.frontend(waveforms)[:, self.band].mean(-1)
        return torch.stack([level, -level], dim=1)


def _band_of(frequency: float, frontend: nn.Module) -> int:
    """The mel band whose filter responds most to ``frequency``."""
    features = frontend(torch.from_numpy(tone(frequency, 0.5, 0)).unsqueeze(0))
    return int(features[0].mean(-1).argmax())


def test_the_band_that_decides_takes_the_attribution() -> None:
    model = OneBandClassifier(band=0)
    deciding, other = _band_of(500.0, model.backbone.frontend), _band_of(3000.0, model.backbone.frontend)
    model.band = deciding
    clip = torch.from_numpy(tone(500.0, 0.5, 1) + tone(3000.0, 0.5, 2)).unsqueeze(0)  # two equally loud tones
    batch = {"waveforms": clip, "lengths": torch.tensor([clip.shape[1]])}
    e = explain_frames(model, batch, "two tones", "up", 0, steps=32)
    by_band = e.attributions.sum(1)
    assert e.attributions.shape == e.features.shape == (32, e.features.shape[1])
    assert int(by_band.argmax()) == deciding != other
    assert by_band[deciding].item() > 0
    assert by_band.abs().sum().item() == pytest.approx(by_band[deciding].item())  # the others: zero
    loudest = set(e.features.mean(1).topk(6).indices.tolist())
    assert {deciding, other} <= loudest  # the other tone is in the input too, as loud
    assert by_band.sum().item() == pytest.approx(e.score - e.baseline_score, rel=1e-3)


@pytest.fixture(scope="module")
def low_tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "low.wav"
    soundfile.write(path, tone(300.0, 0.5, 7), RATE)
    return path


def test_attributions_on_a_trained_cnn_are_complete(audio_artifact: Path, low_tone: Path) -> None:
    predictor = Predictor.load(audio_artifact)
    (rough,) = explain(predictor, [str(low_tone)], steps=16)
    (e,) = explain(predictor, [str(low_tone)], steps=256)
    batch = predictor.task.encode_inputs([str(low_tone)])
    model = predictor.task.model.eval()
    index = predictor.task.labels.index(e.label)
    with torch.no_grad():
        score = model(batch["waveforms"], batch["lengths"])[0, index].item()
        silent = model(torch.zeros_like(batch["waveforms"]), batch["lengths"])[0, index].item()
    assert (e.score, e.baseline_score) == (pytest.approx(score, abs=1e-5), pytest.approx(silent, abs=1e-5))
    assert e.attributions.shape[0] == 32  # the tiny CNN's n_mels
    difference = score - silent
    assert e.attributions.sum().item() == pytest.approx(difference, abs=1e-5 + 0.02 * abs(difference))
    assert abs(e.delta) < abs(rough.delta)  # the integral converges as the path gets finer
    other = next(label for label in predictor.task.labels if label != e.label)
    (away,) = explain(predictor, [str(low_tone)], target=other, steps=64)
    assert away.label == other and not torch.allclose(away.attributions, e.attributions)


def test_explain_command_draws_the_audio_heat_map(audio_artifact: Path, low_tone: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(audio_artifact), str(low_tone), "--json", "--steps", "16",
                 "--output-dir", str(tmp_path)]) == 0
    record = json.loads(capsys.readouterr().out)
    attributions = np.array(record["attributions"])
    assert attributions.shape[0] == 32 and record["heatmap"] == str(tmp_path / "explanation-0.png")
    with Image.open(record["heatmap"]) as image:
        assert image.format == "PNG" and image.width > 400
