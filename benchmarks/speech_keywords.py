"""Keyword spotting on speech-commands-synth (synthetic espeak-ng speech), split by voice variant.

    python benchmarks/speech_keywords.py [--manifest PATH] [--output-dir DIR]

Runs (1) the majority class of the training split, (2) the small CNN over log-mels trained from
scratch, (3) the pretrained GE2E speaker encoder frozen with a linear head; (2) and (3) get the same
budget of 10 epochs; the CNN also runs with 40. Prints a table, then a
JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from speech_common import AUGMENT_2026_11_23, MANIFEST, dataset, print_table, timed_finetune

from omnitune_speech.datasets import audio_manifest
from omnitune_speech.plugin import AudioManifestConfig

RUNS = {
    "speech-cnn, from scratch": {
        "task": {"name": "audio-classification", "augment": AUGMENT_2026_11_23},
        "backbone": {"name": "speech-cnn"},
        "train": {"epochs": 10, "batch_size": 32, "lr": 3e-3, "head_lr": 3e-3, "weight_decay": 0.01},
    },
    "speech-cnn, from scratch, 4x the epochs": {
        "task": {"name": "audio-classification", "augment": AUGMENT_2026_11_23},
        "backbone": {"name": "speech-cnn"},
        "train": {"epochs": 40, "batch_size": 32, "lr": 3e-3, "head_lr": 3e-3, "weight_decay": 0.01},
    },
    "GE2E pretrained, frozen + linear head": {
        "task": {"name": "audio-classification", "pooling": "mean", "augment": None},
        "backbone": {"name": "ge2e", "spec_augment": None},
        "train": {"epochs": 10, "batch_size": 32, "lr": 1e-3, "head_lr": 1e-2, "strategy": "freeze-backbone"},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--output-dir", type=Path, default=Path(tempfile.mkdtemp(prefix="speech-kws-")))
    args = parser.parse_args()
    data = dataset(args.manifest, "label")
    splits = audio_manifest(AudioManifestConfig(**{k: v for k, v in data.items() if k != "name"}))
    voices = [{e.group for e in s} for s in (splits.train, splits.validation, splits.test)]
    assert voices[2].isdisjoint(voices[0]), "a test voice variant is in training"
    majority, _ = Counter(e.target for e in splits.train).most_common(1)[0]
    majority_accuracy = sum(e.target == majority for e in splits.test) / len(splits.test)
    results = {"majority class": {"test_accuracy": majority_accuracy}}
    rows = [("majority class", results["majority class"]["test_accuracy"], "", "")]
    for index, (name, run) in enumerate(RUNS.items()):
        train = {**run["train"], "progress": False, "seed": 0}
        metrics, seconds = timed_finetune({**run, "train": train, "dataset": data, "overwrite": True,
                                           "output_dir": str(args.output_dir / f"run{index}")})
        results[name] = {"test_accuracy": metrics["test_accuracy"], "test_macro_f1": metrics["test_macro_f1"],
                         "epochs": train["epochs"], "wall_s": round(seconds, 1)}
        rows.append((name, metrics["test_accuracy"], metrics["test_macro_f1"], f"{seconds:.0f} s"))
    print(f"\nsplit by voice variant: train {sorted(voices[0])}, test {sorted(voices[2])}; "
          f"{len(splits.train)}/{len(splits.validation)}/{len(splits.test)} clips")
    print_table(("test voices never heard in training", "test accuracy", "test macro-F1", "wall time"), rows)
    summary = {"benchmark": "speech_keywords", "test_variants": sorted(voices[2]), "results": results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
