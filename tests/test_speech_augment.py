"""The default augmentation: speed, equalizer, gain, coloured noise at the asked SNR, mel-axis stretch."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from omnitune_speech.augment import WaveAugment, change_speed, coloured_noise, random_equalizer
from omnitune_speech.frontend import NoiseFloor, SpecAugment, across_bands, stretch_bands
from omnitune_speech.plugin import AudioClassificationConfig, SpecAugmentOptions, WaveAugmentOptions

RATE = 16000


def low_share(noise: torch.Tensor) -> float:
    """Share of the power below 500 Hz."""
    power = torch.fft.rfft(noise, dim=1).abs().square().sum(0)
    return float(power[:int(500 * noise.shape[1] / RATE)].sum() / power.sum())


def test_noise_colour_tilts_the_spectrum_and_keeps_unit_power() -> None:
    torch.manual_seed(0)
    like = torch.zeros(8, RATE)
    white, pink, brown = (coloured_noise(like, torch.full((8,), k)) for k in (0.0, 1.0, 2.0))
    assert white.square().mean(1) == pytest.approx(torch.ones(8), rel=1e-4)
    assert brown.square().mean(1) == pytest.approx(torch.ones(8), rel=1e-4)
    assert low_share(white) == pytest.approx(500 / 8000, abs=0.01)
    assert low_share(white) < low_share(pink) < low_share(brown) and low_share(brown) > 0.9


def test_speed_changes_the_pitch_and_keeps_the_length() -> None:
    sine = torch.sin(2 * torch.pi * 1000 * torch.arange(RATE) / RATE).unsqueeze(0)
    faster = change_speed(sine, 1.1)
    assert faster.shape == sine.shape
    assert int(torch.fft.rfft(faster[0, :RATE // 2]).abs().argmax()) * 2 == pytest.approx(1100, abs=4)
    assert faster[0, -RATE // 20:].abs().max() == 0  # the shorter audio is zero-padded at the end


def band_gain_db(before: torch.Tensor, after: torch.Tensor, low_hz: int, high_hz: int) -> torch.Tensor:
    """Per row, the power gain in dB between ``low_hz`` and ``high_hz``."""
    band = slice(low_hz * before.shape[1] // RATE, high_hz * before.shape[1] // RATE)

    def power(x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(x, dim=1).abs().square()[:, band].sum(1)

    return 10 * torch.log10(power(after) / power(before))


def test_equalizer_gains_stay_within_bounds_and_differ_per_clip_and_band() -> None:
    torch.manual_seed(0)
    noise = torch.randn(16, RATE)
    filtered = random_equalizer(noise, 6.0)
    low, high = band_gain_db(noise, filtered, 100, 200), band_gain_db(noise, filtered, 4000, 6000)
    for gains in (low, high):
        assert gains.abs().max() <= 6.01 and gains.std() > 1.0  # clips get different filters
    assert (low - high).abs().max() > 3.0  # a tilt or bump, not one gain for every band
    assert torch.allclose(random_equalizer(noise, 0.0), noise, atol=1e-5)
    with pytest.raises(ValidationError, match="equalizer_db"):
        WaveAugmentOptions(equalizer_db=-1)


def test_noise_lands_at_the_asked_snr_in_training_only() -> None:
    torch.manual_seed(0)
    options = WaveAugmentOptions(gain_db=0, noise_snr_db=(5, 5), speeds=None, probability=1.0)
    augment = WaveAugment(options)
    clips = torch.sin(2 * torch.pi * 440 * torch.arange(RATE) / RATE).repeat(4, 1) * 0.3
    noisy = augment.train()(clips, torch.full((4,), RATE))
    snr = 10 * torch.log10(clips.square().mean(1) / (noisy - clips).square().mean(1))
    assert snr == pytest.approx(torch.full((4,), 5.0), abs=0.01)
    assert torch.equal(augment.eval()(clips, torch.full((4,), RATE)), clips)


def test_augmentation_is_on_by_default_and_bad_ranges_are_named() -> None:
    assert AudioClassificationConfig().augment == WaveAugmentOptions()
    with pytest.raises(ValidationError, match="noise_snr_db: expected \\[low, high\\]"):
        WaveAugmentOptions(noise_snr_db=(20, 5))
    with pytest.raises(ValidationError, match="speeds: expected factors between 0.5 and 2"):
        WaveAugmentOptions(speeds=(0.1,))


def test_mel_stretch_moves_a_formant_by_the_factor_and_keeps_time() -> None:
    features = torch.zeros(3, 40, 5)
    features[:, 10, :] = 1.0  # one "formant" at band 10 in every frame
    stretched = stretch_bands(features, torch.tensor([1.0, 1.2, 0.8]))
    assert torch.equal(stretched[0], features[0])
    assert stretched[:, :, 0].argmax(1).tolist() == [10, 12, 8]
    assert torch.equal(stretched[:, :, 0], stretched[:, :, 4])  # every frame alike: time untouched


def test_uneven_stretch_moves_low_and_high_formants_apart() -> None:
    features = torch.zeros(1, 40, 2)
    features[:, (10, 30), :] = 1.0  # two "formants"
    factors = across_bands(torch.tensor([[0.8, 1.2]]), 40)  # squeezed low, stretched high
    peaks = stretch_bands(features, factors)[0, :, 0].nonzero().flatten().tolist()
    assert min(peaks) < 10 and max(peaks) > 30
    assert torch.equal(across_bands(torch.tensor([[1.1]]), 40), torch.full((1, 40), 1.1))


def test_spec_augment_stretches_in_training_only_and_bounds_the_warp() -> None:
    torch.manual_seed(0)
    options = SpecAugmentOptions(freq_masks=0, time_masks=0, mel_warp=0.2)
    augment = SpecAugment(options)
    features = torch.zeros(64, 40, 5)
    features[:, 20, :] = 1.0
    peaks = augment.train()(features)[:, :, 0].argmax(1)
    assert peaks.min() >= 16 and peaks.max() <= 24 and len(set(peaks.tolist())) > 3
    assert torch.equal(augment.eval()(features), features)
    with pytest.raises(ValidationError, match="mel_warp"):
        SpecAugmentOptions(mel_warp=0.6)


def test_noise_floor_removes_steady_noise_keeps_clean_clips_and_ignores_padding() -> None:
    torch.manual_seed(0)
    speech = torch.zeros(2, 40, 100)
    speech[:, 5:15, 40:80] = 10.0  # a word in the middle, silence around it
    noise = torch.linspace(0.5, 2.0, 40).view(1, 40, 1).expand(2, 40, 100)
    lengths = torch.tensor([100, 90])
    subtract = NoiseFloor(1.0)

    cleaned = subtract(speech + noise, lengths)
    assert torch.allclose(cleaned[:, :, :40], NoiseFloor.RESIDUAL * noise[:, :, :40])
    assert torch.allclose(cleaned[:, 5:15, 40:80], speech[:, 5:15, 40:80])
    assert torch.equal(subtract(speech, lengths), speech)

    padded = (speech + noise).clone()
    padded[1, :, 90:] = 0.0  # frames past the clip's length do not lower its floor
    assert torch.allclose(subtract(padded, lengths)[1, :, :90], cleaned[1, :, :90])
