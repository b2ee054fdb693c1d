"""Speech in real recorded noise: the clean clips of an unseen-voice set (``speech_unseen_voices``)
with a one-second excerpt of a real recording added at 5-20 dB SNR, beside the same clips clean
and with coloured noise.

    OMP_NUM_THREADS=1 python benchmarks/speech_recorded_noise.py --voices test2 --artifact PATH [...]

The recordings are freesound.org field recordings that Debian's ``minetest-data`` package ships
(pinned and sha256-checked like every other asset, unpacked, never installed): running water
(Yuval, CC0, 4 x 6 s), bubbling lava (Halion, CC0, 2 x 7.5 s), crackling fire (Dynamicell and
dobroide, CC BY 3.0, 5 files, 4-8 s) and a furnace (10 s). No recipe was chosen on them and no
training augmentation uses them (training adds coloured noise). The speech is synthetic
(espeak-ng); the noise is real. Prints a table, then a JSON object as the last line.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF
from speech_robust import set_accuracy
from speech_unseen_voices import RATE, SNR_DB, VOICE_SETS, noise_scale, unseen_voice_sets

from omnitune.assets import cache_dir, fetch_once
from omnitune.data import read_table
from omnitune_vision.debian import DebianAsset, resolve_deb

MODS = DebianAsset("minetest-data", "5.6.1+dfsg+~1.9.0mt8+dfsg-2",
                   "91371dd2bd51cfcd4fa60c138667989a47047dfe1a47f7523b9ad1782d397585",
                   "usr/share/games/minetest/games/minetest_game/mods")
RECORDINGS = {
    "water": [f"env_sounds/sounds/env_sounds_water.{n}.ogg" for n in range(1, 5)],
    "lava": [f"env_sounds/sounds/env_sounds_lava.{n}.ogg" for n in range(1, 3)],
    "fire": [*(f"fire/sounds/fire_fire.{n}.ogg" for n in range(1, 4)), "fire/sounds/fire_large.ogg",
             "fire/sounds/fire_small.ogg"],
    "furnace": ["default/sounds/default_furnace_active.ogg"],
}
SEED_OFFSET = 1000  # the excerpts' seed: the voice set's own plus this, so no draw repeats its noise


def recordings() -> list[tuple[str, np.ndarray]]:
    """``(kind, mono 16 kHz waveform)`` for every recording."""
    folder = resolve_deb(MODS)
    loaded = []
    for kind, files in RECORDINGS.items():
        for name in files:
            audio, rate = soundfile.read(folder / name, dtype="float32", always_2d=True)
            mono = torch.from_numpy(audio.mean(axis=1))
            loaded.append((kind, AF.resample(mono, rate, RATE).numpy()))
    return loaded


def recorded_noise_set(voices: str) -> Path:
    """The manifest of set ``voices``' clean clips with recorded noise added (cached)."""
    voice_set = VOICE_SETS[voices]
    clean = unseen_voice_sets(voices)["clean"]
    entry = fetch_once(cache_dir() / "speech-robust" / f"{voice_set.cache_name}-recorded-noise-v1",
                       lambda staging: _write_noisy(clean, staging, voice_set.seed + SEED_OFFSET))
    return entry / "manifest.csv"


def _write_noisy(clean_manifest: Path, staging: Path, seed: int) -> None:
    rng, noises = np.random.default_rng(seed), recordings()
    rows = []
    for _, row in read_table(clean_manifest, ["path", "label"]):
        clip, _ = soundfile.read(clean_manifest.parent / row["path"], dtype="float32")
        index = int(rng.integers(len(noises)))
        kind, noise = noises[index]
        start = int(rng.integers(0, len(noise) - RATE + 1))
        excerpt, snr = noise[start:start + RATE], float(rng.uniform(*SNR_DB))
        gain = noise_scale(clip, snr) / (np.sqrt(np.mean(excerpt ** 2)) + 1e-9)  # excerpt to unit RMS
        noisy = np.clip(clip + excerpt * gain, -1, 1)
        (staging / row["label"]).mkdir(parents=True, exist_ok=True)
        soundfile.write(staging / row["path"], noisy.astype(np.float32), RATE)
        rows.append(dict(row) | {"noise": f"{kind}-{index}", "snr_db": round(snr, 2)})
    with open(staging / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", default="test2", choices=sorted(VOICE_SETS))
    parser.add_argument("--artifact", type=Path, action="append", required=True,
                        help="a trained audio-classification artifact to score; repeatable")
    args = parser.parse_args()
    sets = unseen_voice_sets(args.voices) | {"recorded": recorded_noise_set(args.voices)}
    started = time.perf_counter()
    results = {str(artifact): {kind: set_accuracy(artifact, manifest) for kind, manifest in sets.items()}
               for artifact in args.artifact}
    print(f"{'artifact':60} {'clean':>7} {'coloured noise':>15} {'recorded noise':>15}")
    for artifact, scores in results.items():
        clean, coloured, recorded = scores["clean"], scores["noisy"], scores["recorded"]
        print(f"{artifact[-60:]:60} {clean:7.3f} {coloured:15.3f} {recorded:15.3f}")
    noise_kinds = sorted({row["noise"].split("-")[0] for _, row in read_table(sets["recorded"], ["noise"])})
    print(json.dumps({"voices": args.voices, "clips": sum(1 for _ in read_table(sets["clean"], ["path"])),
                      "recorded_noise": noise_kinds, "results": results,
                      "wall_s": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
