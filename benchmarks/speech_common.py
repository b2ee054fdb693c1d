"""Shared by the speech benchmarks: the speech-commands-synth manifest, split by voice variant."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import omnitune

# The augmentation these benchmarks' published figures were measured with (2026-11-23), before the
# defaults gained speeds, coloured noise and a 5-25 dB range.
AUGMENT_2026_11_23 = {"gain_db": 6.0, "noise_snr_db": [10.0, 40.0], "noise_colour": [0.0, 0.0],
                      "speeds": None}
SYNTHETIC = ("Synthetic speech: trained and tested on espeak-ng output (speech-commands-synth: 5 accents "
             "x 10 voice variants x 2 speeds), not on recorded human voices; expect lower scores on real "
             "speech.")
MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech-commands-synth" / "manifest.csv"


def dataset(manifest: Path, target: str) -> dict[str, Any]:
    """Ten voice variants: six train, two validate, two test; no test voice is heard in training."""
    if not manifest.is_file():
        sys.exit(f"{manifest} not found: pass --manifest (the speech-commands-synth manifest.csv)")
    return {"name": "audio-manifest", "manifest": str(manifest), "target": target,
            "group_column": "variant", "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 0,
            "limitations": [SYNTHETIC]}


def timed_finetune(run: dict[str, Any]) -> tuple[dict[str, float], float]:
    started = time.perf_counter()
    result = omnitune.finetune(run)
    return result.metrics, time.perf_counter() - started


def print_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
