"""The speech benchmarks' dev and test voice sets: no voice variant or speed is shared between two
sets or with speech-commands-synth, so no dev choice ever hears a test voice."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from speech_unseen_voices import VOICE_SETS, VoiceSet  # noqa: E402

CORPUS_VARIANTS = {"m1", "m2", "m3", "m4", "f1", "f2", "f3", "Alex", "Annie", "david"}
CORPUS_SPEEDS = {140, 180}


def test_voice_sets_share_no_variant_or_speed() -> None:
    espeak_sets = {name: voices for name, voices in VOICE_SETS.items() if isinstance(voices, VoiceSet)}
    for (name_a, a), (name_b, b) in itertools.combinations(espeak_sets.items(), 2):
        assert not set(a.variants) & set(b.variants), (name_a, name_b)
        assert not set(a.speeds) & set(b.speeds), (name_a, name_b)
    for name, voice_set in espeak_sets.items():
        assert not set(voice_set.variants) & CORPUS_VARIANTS, name
        assert not set(voice_set.speeds) & CORPUS_SPEEDS, name
    assert len({voice_set.seed for voice_set in VOICE_SETS.values()}) == len(VOICE_SETS)
