"""The ten command words of speech-commands-synth in espeak-ng accents and voices that corpus lacks,
clean and with coloured noise at 5-20 dB SNR: made on the fly into the asset cache, never committed.

espeak-ng and its libraries come from pinned Debian packages (``apt-get download``, sha256-checked,
unpacked with ``dpkg-deb -x``, never installed). speech-commands-synth used the accents en-029,
en-gb, en-gb-scotland, en-gb-x-rp and en-us, the variants m1-m4, f1-f3, Alex, Annie and david, and
the speeds 140 and 180; these sets use none of them. Synthetic speech, not human recordings.

Ten sets, disjoint in voice variant and speed from the corpus and from each other:

- ``test``: the three English accents espeak-ng has beyond the corpus's five (Lancaster, West
  Midlands, New York City), variants m5-m7, f4, f5; scored once (2026-11-29), for the chosen recipe.
- ``test2``: the fresh test condition made after ``test`` had been looked at: the same three accents
  (espeak-ng 1.51 has no other English accent), variants john, max, paul, Andrea, belinda, speeds
  145 and 165, other noise seeds; scored once, for the recipe chosen on ``dev``.
- ``test3``: the third test condition, made 2026-11-30 after ``test2`` had been read: the same three
  accents, ten variants and two speeds (135, 160) used by no other set, noise seed 24 (600 clips);
  scored once, for the recipe chosen on ``dev`` and ``dev-english``.
- ``dev-english``: for choosing recipes beside ``dev`` (600 clips): the corpus's five English
  accents read by six variants and at two speeds (142, 168) that no set uses, noise seed 25. Its
  accents are heard in training, so it measures unseen voices in noise, not accent; ``dev``
  measures accent (foreign-accented, far harder than the test accents).
- ``dev``: for choosing recipes (600 clips). espeak-ng has no English accent left, so it is the
  English words read with German, Dutch and Welsh letter-to-sound rules and phonemes
  (foreign-accented English), ten variants. Its first version (``dev-accents-v1``, 300 clips, the
  first five variants) chose the 30 epochs of 2026-11-30.
- ``dev-formants`` and ``test4`` (2026-11-30, both made before any run on them): the corpus's
  accents read by six unused formant- or pitch-shifted variants (dev), and the three unseen accents
  read by ten unused variants, some strongly shifted (test, scored once after the choice).
- ``test5`` (2026-11-30, made before any run on it): the three unseen accents read by every variant
  no other set uses, bar numbered copies of a used one (``iven2``), the unvoiced ``whisper`` and
  ``whisperf`` and ``Mr serious`` (a space in its name): sixteen variants, speeds 147 and 158, noise
  seed 28 (960 clips); scored once, for the recipe chosen on the three dev sets.
- ``test6`` (2026-11-30, made before any run on it, after ``test5`` had been read): the three unseen
  accents read by the numbered copies of variants (``iven2``, ``klatt3``, ``robosoft7``, ...), the
  only ones left: twenty voices, speeds 152 and 166, noise seed 29 (1,200 clips); scored once
  (2026-11-30), for the recipe chosen on the three dev sets (noise floor, attention pooling).
- ``test7`` (2026-11-30, made before any run on it, after ``test6`` had been read): another
  synthesiser, as espeak-ng has no English voice left. flite 2.2 (pinned Debian packages, like
  espeak-ng) reads the words with its five voices (kal at 8 kHz, kal16, awb, rms, slt), stretched
  to 90, 100 and 115% of their duration and aimed at 95, 130, 175 and 220 Hz of pitch, noise seed
  30 (600 clips); scored once (2026-11-30), for the uneven warp chosen on the three dev sets.
- ``test8`` (2026-11-30, made before any run on it, after ``test7`` had been read): espeak-ng has no
  variant left, so twelve are made up (``made_up_variant``: pitch, formants, flutter and roughness
  drawn with seed 31; nine have their intonation inverted, one is nearly flat) and read in the
  three unseen accents at speeds 153 and 163, noise seed 31 (720 clips); scored once
  (2026-11-30), for the recipe chosen on the three dev sets (the speech-embedding backbone).
"""

from __future__ import annotations

import csv
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from omnitune.assets import cache_dir, fetch_once
from omnitune_speech.augment import coloured_noise
from omnitune_vision.debian import DebianAsset, resolve_deb

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SNR_DB = (5.0, 20.0)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power falls as 1 / f**exponent
RATE = 16000


@dataclass(frozen=True)
class VoiceSet:
    """Every word in every espeak-ng accent, variant and speed; ``cache_name`` names the cache entry
    (bump its version when the recipe changes)."""

    cache_name: str
    accents: tuple[str, ...]
    variants: tuple[str, ...]
    speeds: tuple[int, ...]
    seed: int

    def utterances(self, scratch: Path) -> Iterator[tuple[dict[str, object], np.ndarray]]:
        """``(manifest row without noise, speech at RATE)`` for every combination."""
        yield from _espeak_utterances(_espeak_command(), self.accents, self.variants, self.speeds, scratch)


@dataclass(frozen=True)
class FliteSet:
    """Every word in every flite voice, duration stretch (percent) and pitch target (Hz): another
    synthesiser than the corpus's espeak-ng."""

    cache_name: str
    voices: tuple[str, ...]
    stretches: tuple[int, ...]
    pitches_hz: tuple[int, ...]
    seed: int

    def utterances(self, scratch: Path) -> Iterator[tuple[dict[str, object], np.ndarray]]:
        """``(manifest row without noise, speech at RATE)`` for every combination."""
        speak = _flite_command()
        combinations = itertools.product(WORDS, self.voices, self.stretches, self.pitches_hz)
        for word, voice, stretch, pitch in combinations:
            row = {"path": f"{word}/flite_{voice}_{stretch}_{pitch}.flac", "label": word, "accent": "flite",
                   "variant": voice, "stretch": stretch, "pitch_hz": pitch}  # the columns runs group by
            arguments = ["-voice", voice, "--setf", f"duration_stretch={stretch / 100}",
                         "--setf", f"int_f0_target_mean={pitch}", "-t", word, "-o"]
            yield row, _synthesise(speak, arguments, scratch)


@dataclass(frozen=True)
class GeneratedVoiceSet:
    """Every word in every accent and speed, read by ``voices`` espeak-ng voice variants made up for
    this set: pitch, the first four formants, flutter and roughness drawn from ``seed``."""

    cache_name: str
    accents: tuple[str, ...]
    voices: int
    speeds: tuple[int, ...]
    seed: int

    def utterances(self, scratch: Path) -> Iterator[tuple[dict[str, object], np.ndarray]]:
        """``(manifest row without noise, speech at RATE)`` for every combination."""
        _, installed, _ = _espeak_install()
        shutil.copytree(installed / "espeak-ng-data", scratch / "espeak-ng-data")
        variants = [f"made{number:02d}" for number in range(1, self.voices + 1)]
        rng = np.random.default_rng(self.seed)
        for name in variants:
            (scratch / "espeak-ng-data" / "voices" / "!v" / name).write_text(made_up_variant(name, rng))
        speak = _espeak_command(data=scratch)
        yield from _espeak_utterances(speak, self.accents, tuple(variants), self.speeds, scratch)


def _espeak_utterances(speak: tuple[list[str], dict[str, str]], accents: tuple[str, ...],
                       variants: tuple[str, ...], speeds: tuple[int, ...],
                       scratch: Path) -> Iterator[tuple[dict[str, object], np.ndarray]]:
    """Every word read by espeak-ng in every accent, variant and speed, with its manifest row."""
    for word, accent, variant, speed in itertools.product(WORDS, accents, variants, speeds):
        row = {"path": f"{word}/{accent}_{variant}_{speed}.flac", "label": word, "accent": accent,
               "variant": variant, "speed": speed}
        arguments = ["-v", f"{accent}+{variant}", "-s", str(speed), word, "-w"]
        yield row, _synthesise(speak, arguments, scratch)


def made_up_variant(name: str, rng: np.random.Generator) -> str:
    """An espeak-ng voice variant file: ``pitch`` base 70-230 Hz and top 50-170 Hz (espeak-ng's two
    values; a top under the base inverts the intonation, as for 9 of ``test8``'s 12 voices, and one
    is nearly flat), formants 1-4 at 85-118% of their frequency and 75-125% of their height,
    flutter 0-40, roughness 0-4."""
    lines = ["language variant", f"name {name}",
             f"pitch {rng.integers(70, 231)} {rng.integers(50, 171)}",
             f"flutter {rng.integers(0, 41)}", f"roughness {rng.integers(0, 5)}"]
    lines += [f"formant {n} {rng.integers(85, 119)} {rng.integers(75, 126)} 100" for n in range(1, 5)]
    return "\n".join(lines) + "\n"


UNSEEN_ACCENTS = ("en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")  # English accents the corpus lacks
CORPUS_ACCENTS = ("en-029", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us")
VOICE_SETS: dict[str, VoiceSet | FliteSet | GeneratedVoiceSet] = {
    "test": VoiceSet("unseen-accents-v1", UNSEEN_ACCENTS,
                     ("m5", "m6", "m7", "f4", "f5"), (155, 170), seed=20),
    "test2": VoiceSet("unseen-accents-v2", UNSEEN_ACCENTS,
                      ("john", "max", "paul", "Andrea", "belinda"), (145, 165), seed=22),
    "test3": VoiceSet("unseen-accents-v3", UNSEEN_ACCENTS,
                      ("Michael", "benjamin", "robert", "shelby", "anika", "Mike", "caleb", "travis",
                       "victor", "zac"), (135, 160), seed=24),
    "dev": VoiceSet("dev-accents-v2", ("de", "nl", "cy"),
                    ("m8", "adam", "edward", "linda", "steph", "quincy", "norbert", "Lee", "Alicia",
                     "aunty"), (150, 175), seed=23),
    "dev-english": VoiceSet("dev-english-v1", CORPUS_ACCENTS,
                            ("Andy", "Denis", "Hugo", "Marco", "rob", "sandro"), (142, 168), seed=25),
    "dev-formants": VoiceSet("dev-formants-v1", CORPUS_ACCENTS,
                             ("gustave", "marcelo", "grandma", "robosoft6", "UniRobot", "Storm"), (148, 172),
                             seed=26),
    "test4": VoiceSet("unseen-accents-v4", UNSEEN_ACCENTS,
                      ("kaukovalta", "Demonic", "announcer", "anikaRobot", "grandpa", "Nguyen", "Jacky",
                       "antonio", "pedro", "iven"), (138, 162), seed=27),
    "test5": VoiceSet("unseen-accents-v5", UNSEEN_ACCENTS,
                      ("AnxiousAndy", "Diogo", "Gene", "Henrique", "Mario", "RicishayMax", "Tweaky", "boris",
                       "croak", "ed", "fast", "klatt", "michel", "miguel", "pablo", "robosoft"), (147, 158),
                      seed=28),
    "test6": VoiceSet("unseen-accents-v6", UNSEEN_ACCENTS,
                      ("iven2", "iven3", "iven4", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
                       "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft7", "robosoft8", "steph2",
                       "steph3", "Gene2", "edward2", "RicishayMax2", "RicishayMax3"), (152, 166), seed=29),
    "test7": FliteSet("flite-voices-v2", ("kal", "kal16", "awb", "rms", "slt"), (90, 100, 115),
                      (95, 130, 175, 220), seed=30),
    "test8": GeneratedVoiceSet("made-up-voices-v1", UNSEEN_ACCENTS, 12, (153, 163), seed=31),
}

LIBS = "usr/lib/x86_64-linux-gnu"
FLITE = (
    DebianAsset("flite", "2.2-5", "f4ce03470bf9974c2cb9cacd981e6be29339ef4c97cf994dd6fa3f90e6544db9",
                "usr/bin/flite"),
    DebianAsset("libflite1", "2.2-5", "bfa8c591f1b47730b30b372ec38e02918a1c9795eada67684e1746390ad2f061",
                LIBS),
)
ESPEAK = (
    DebianAsset("espeak-ng", "1.51+dfsg-10+deb12u2",
                "a11396a690f85f55e6e6b2965505237ddf3dc95c51936aa61de936f1ccf8f4d0", "usr/bin/espeak-ng"),
    DebianAsset("espeak-ng-data", "1.51+dfsg-10+deb12u2",
                "573f5661c6a5adcf949018baad158c4c773bf5579390ee5235a890f1cd694106", LIBS),
    DebianAsset("libespeak-ng1", "1.51+dfsg-10+deb12u2",
                "2b127a95b50d92cbd7a615968d2ac1566e1cbc87e27bcda0c2894afb2407c6d2", LIBS),
    DebianAsset("libpcaudio0", "1.2-2",
                "5309759e4d129c7d9a601240cc6e62820ecfa86a1a98e207992ffa6a572dbcd2", LIBS),
    DebianAsset("libsonic0", "0.2.0-12",
                "9d60de6918ace0b10e3e4e95421befd08aaf03b5b2a3d71ceb799e0cf259916f", LIBS),
)


def unseen_voice_sets(which: str = "test") -> dict[str, Path]:
    """``{"clean": manifest.csv, "noisy": manifest.csv}`` of the same utterances of set ``which``
    (a key of ``VOICE_SETS``)."""
    voice_set = VOICE_SETS[which]
    entry = fetch_once(cache_dir() / "speech-robust" / voice_set.cache_name,
                       lambda staging: _write_sets(staging, voice_set))
    return {name: entry / name / "manifest.csv" for name in ("clean", "noisy")}


def _write_sets(staging: Path, voice_set: VoiceSet | FliteSet | GeneratedVoiceSet) -> None:
    rng = np.random.default_rng(voice_set.seed)
    torch.manual_seed(voice_set.seed)
    rows: dict[str, list[dict[str, object]]] = {"clean": [], "noisy": []}
    with tempfile.TemporaryDirectory(prefix="omnitune-speech-") as scratch:
        for row, speech in voice_set.utterances(Path(scratch)):
            clean = _placed(speech, rng)
            colour = str(rng.choice(list(NOISE_COLOURS)))
            snr = float(rng.uniform(*SNR_DB))
            noise = coloured_noise(torch.zeros(1, RATE), torch.tensor([NOISE_COLOURS[colour]]))[0].numpy()
            noisy = np.clip(clean + noise * noise_scale(clean, snr), -1, 1)
            for kind, audio, extra in (("clean", clean, {}),
                                       ("noisy", noisy, {"noise": colour, "snr_db": round(snr, 2)})):
                (staging / kind / str(row["label"])).mkdir(parents=True, exist_ok=True)
                soundfile.write(staging / kind / str(row["path"]), audio.astype(np.float32), RATE)
                rows[kind].append(row | extra)
    for kind, kind_rows in rows.items():
        with open(staging / kind / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(kind_rows[0]))
            writer.writeheader()
            writer.writerows(kind_rows)


def _espeak_install() -> tuple[Path, Path, dict[str, str]]:
    """The unpacked espeak-ng binary, the folder holding its ``espeak-ng-data``, and an environment
    with its libraries on ``LD_LIBRARY_PATH``."""
    binary, data, *libraries = (resolve_deb(asset) for asset in ESPEAK)
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(str(path) for path in [data, *libraries])}
    return binary, data, env


def _espeak_command(data: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """espeak-ng reading its voices from ``data`` (default: the unpacked package's)."""
    binary, installed, env = _espeak_install()
    return [str(binary), f"--path={data or installed}"], env


def _flite_command() -> tuple[list[str], dict[str, str]]:
    """The unpacked flite binary, its library on ``LD_LIBRARY_PATH``."""
    binary, library = (resolve_deb(asset) for asset in FLITE)
    return [str(binary)], {**os.environ, "LD_LIBRARY_PATH": str(library)}


def _synthesise(speak: tuple[list[str], dict[str, str]], arguments: list[str], scratch: Path) -> np.ndarray:
    """Run the synthesiser with ``arguments`` followed by the output wav's path; the speech at RATE."""
    command, env = speak
    wav = scratch / "word.wav"
    subprocess.run([*command, *arguments, str(wav)], env=env, check=True, capture_output=True)
    return _read_resampled(wav)


def _read_resampled(wav: Path) -> np.ndarray:
    audio, rate = soundfile.read(wav, dtype="float32")
    return AF.resample(torch.from_numpy(audio), rate, RATE).numpy()


def _placed(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The voiced part, at a random offset in one second, peak-normalised to a random level."""
    voiced = np.flatnonzero(np.abs(speech) > 1e-3)
    speech = speech[voiced[0]:voiced[-1] + 1][:RATE]
    clip = np.zeros(RATE, dtype=np.float32)
    start = rng.integers(0, RATE - len(speech) + 1)
    clip[start:start + len(speech)] = speech * rng.uniform(0.3, 0.9) / np.abs(speech).max()
    return clip


def noise_scale(clip: np.ndarray, snr_db: float) -> float:
    """The RMS of noise that puts it ``snr_db`` below the clip's power (over the second)."""
    return float(np.sqrt(np.mean(clip ** 2) / 10 ** (snr_db / 10)))
