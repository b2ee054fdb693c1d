"""Keyword spotting that holds up: voices, accents and noise that training never met.

    OMP_NUM_THREADS=1 python benchmarks/speech_robust.py [--manifest PATH] [--output-dir DIR]
        [--recipe N] [--conditions dev|dev-english|dev-formants|test|test2|...|test8 ...]
        [--set KEY=VALUE ...] [--artifact PATH ...]

Trains on speech-commands-synth (synthetic espeak-ng speech) split by voice variant, as
``speech_keywords.py`` does, and scores every recipe on three conditions side by side. The test
conditions (``--conditions test``, the default):

- clean, unseen voices: the corpus's own test split (variants f3, m4; accents heard in training);
- clean, unseen accents: the ten words in three espeak-ng accents and five voice variants absent
  from the corpus, at other speeds (``speech_unseen_voices.py``; 300 clips; scored 2026-11-29/30);
- noisy, unseen accents: the same 300 clips with white, pink or brown noise at 5-20 dB SNR.

Recipes are chosen on the dev conditions (``--conditions dev``), which never touch the test sets:
the corpus's validation voices, and 600 clips in other accents and voices (``speech_unseen_voices``
set ``dev``), clean and noisy. ``--set`` changes the chosen recipes (``omnitune --set`` syntax,
e.g. ``train.epochs=15``), for trying a setting on dev. ``--conditions test2`` is the fresh test
condition (the corpus's test voices, and 300 clips of new voices, speeds and noise seeds in the
unseen accents), made after ``test`` had been looked at; ``--conditions test3`` the third (ten
more voice variants, other speeds and noise seed; 600 clips), made after ``test2`` had been read,
with the dev condition ``dev-english`` (the corpus's English accents read by unseen voices, in
noise) beside ``dev``. ``--artifact DIR`` scores a trained run
(a dev run's ``run2/artifact``) instead of training, so a recipe chosen on dev is scored on a test
condition without retraining.

Rows: the majority class; the frozen GE2E probe; the recipe the README recommended until
2026-11-29 (frozen GE2E, gain and white noise); the default recipe, read from
``examples/speech_keywords.yaml`` (the speech-embedding CNN fine-tuned with the task's augmentation
widened, speeds 0.7-1.3 and a random equalizer, the noise floor, SpecAugment with uneven mel
warping, attention pooling, for 40 epochs, keeping the final weights; chosen on the dev
conditions, the README has the figures); the frozen speech-embedding probe; the same recipe on
GE2E for 60 epochs, the default until 2026-11-30 evening. Prints a
table with the training CPU time (user+sys) and wall time, then a JSON object as
the last line.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from speech_common import AUGMENT_2026_11_23, MANIFEST, dataset, print_table
from speech_unseen_voices import unseen_voice_sets

import omnitune
from omnitune.config import apply_override, read_yaml
from omnitune.data import read_table
from omnitune_speech.datasets import audio_manifest
from omnitune_speech.plugin import AudioManifestConfig

RECOMMENDED = read_yaml(Path(__file__).resolve().parents[1] / "examples" / "speech_keywords.yaml")
FROZEN = {"epochs": 10, "batch_size": 32, "lr": 1e-3, "head_lr": 1e-2, "strategy": "freeze-backbone"}
RECIPES: dict[str, dict[str, Any]] = {
    "frozen GE2E probe (no augmentation)": {
        "task": {"name": "audio-classification", "augment": None},
        "backbone": {"name": "ge2e", "spec_augment": None},
        "train": FROZEN,
    },
    "README recipe until now (frozen GE2E, gain + white noise 10-40 dB)": {
        "task": {"name": "audio-classification",
                 "augment": AUGMENT_2026_11_23},
        "backbone": {"name": "ge2e", "spec_augment": None},
        "train": FROZEN,
    },
    "default recipe (examples/speech_keywords.yaml: speech-embedding fine-tuned, widened augmentation "
    "+ noise floor + SpecAugment + uneven mel warping, attention pooling, MLP head, final weights)": {
        key: RECOMMENDED[key] for key in ("task", "backbone", "head", "train")},
    "frozen speech-embedding probe (no augmentation)": {
        "task": {"name": "audio-classification", "augment": None},
        "backbone": {"name": "speech-embedding", "spec_augment": None},
        "train": FROZEN,
    },
    "the recipe until 2026-11-30 evening (GE2E in place of speech-embedding, 60 epochs)": {
        "task": RECOMMENDED["task"], "head": RECOMMENDED["head"],
        "backbone": {"name": "ge2e", "noise_floor": 1.5,
                     "spec_augment": {"mel_warp": 0.3, "mel_warp_points": 4}},
        "train": RECOMMENDED["train"] | {"epochs": 60},
    },
}
NEW_CLIPS = {  # what each condition's new clips are, as the table's columns name them
    "test": "unseen accents", "test2": "fresh unseen accents", "test3": "test3 unseen accents",
    "test4": "test4 unseen accents", "test5": "test5 unseen accents", "test6": "test6 unseen accents",
    "test7": "test7 flite voices", "test8": "test8 made-up voices",
    "dev": "dev accents", "dev-english": "dev English voices", "dev-formants": "dev formant-shifted voices",
}
CONDITIONS = {  # the corpus's own voices, then the new clips clean and noisy
    kind: ("clean, validation voices" if kind.startswith("dev") else "clean, unseen voices",
           f"clean, {clips}", f"noisy (5-20 dB), {clips}")
    for kind, clips in NEW_CLIPS.items()
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def condition_accuracies(artifact: Path, conditions: str, new_sets: dict[str, Path]) -> dict[str, float]:
    """Accuracy of an artifact on the corpus's test (or validation) split and on both sets of new
    accents."""
    corpus_split = "validation" if conditions.startswith("dev") else "test"
    names = CONDITIONS[conditions]
    scores = {names[0]: omnitune.evaluate(artifact, split=corpus_split)[f"{corpus_split}_accuracy"]}
    for condition, kind in zip(names[1:], ("clean", "noisy"), strict=True):
        scores[condition] = set_accuracy(artifact, new_sets[kind])
    return scores


def set_accuracy(artifact: Path, manifest: Path) -> float:
    """Accuracy of an artifact on every clip of ``manifest`` (no split held out)."""
    whole_set = [f"dataset.manifest={manifest}", "dataset.validation_fraction=0", "dataset.test_fraction=0"]
    return omnitune.evaluate(artifact, split="train", overrides=whole_set)["train_accuracy"]


def majority_accuracies(majority: str, corpus_labels: list[str], conditions: str,
                        new_sets: dict[str, Path]) -> dict[str, float]:
    label_lists = [corpus_labels] + [[row["label"] for _, row in read_table(new_sets[kind], ["label"])]
                                     for kind in ("clean", "noisy")]
    return {condition: sum(label == majority for label in labels) / len(labels)
            for condition, labels in zip(CONDITIONS[conditions], label_lists, strict=True)}


def recipe_run(recipe: dict[str, Any], overrides: list[str], data: dict[str, Any],
               output_dir: Path) -> dict[str, Any]:
    """The run config of ``recipe`` on ``data``, seeded, with ``--set`` overrides applied."""
    train = {**recipe["train"], "progress": False, "seed": 0}
    run = copy.deepcopy({**recipe, "train": train, "dataset": data, "overwrite": True,
                         "output_dir": str(output_dir)})
    for override in overrides:
        apply_override(run, override)
    return run


def artifact_scores(artifact: Path, new_sets: dict[str, dict[str, Path]]) -> dict[str, float]:
    """Accuracy of a trained artifact on every condition of ``new_sets``' kinds."""
    scores: dict[str, float] = {}
    for kind, sets in new_sets.items():
        scores |= condition_accuracies(artifact, kind, sets)
    return scores


def trained_scores(run: dict[str, Any],
                   new_sets: dict[str, dict[str, Path]]) -> tuple[dict[str, float], dict[str, Any]]:
    """Train ``run``: its accuracy on every condition of ``new_sets``' kinds, and its training CPU
    (user+sys) and wall seconds and validation accuracy."""
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    result = omnitune.finetune(run)
    cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start
    costs = {"train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1),
             "validation_accuracy": result.metrics.get("eval_accuracy")}
    return artifact_scores(result.artifact, new_sets), costs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--output-dir", type=Path, help="where the runs go; default: a new temporary folder")
    parser.add_argument("--recipe", type=int, action="append", choices=range(len(RECIPES)),
                        help="run only this recipe (0-based row of RECIPES; repeatable); default: all")
    parser.add_argument("--conditions", choices=tuple(CONDITIONS), action="append",
                        help="score on the test conditions, or on the dev ones (for choosing recipes); "
                        "repeatable; default: test")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change every chosen recipe (repeatable), e.g. train.epochs=15")
    parser.add_argument("--artifact", type=Path, action="append", default=[],
                        help="score this trained artifact (e.g. a dev run's) instead of training; repeatable")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    kinds = args.conditions or ["test"]
    data = dataset(args.manifest, "label")
    splits = audio_manifest(AudioManifestConfig(**{k: v for k, v in data.items() if k != "name"}))
    new_sets = {kind: unseen_voice_sets(kind) for kind in kinds}
    majority, _ = Counter(e.target for e in splits.train).most_common(1)[0]
    corpus_labels = {kind: [e.target for e in (splits.validation if kind.startswith("dev") else splits.test)]
                     for kind in kinds}
    results: dict[str, Any] = {"majority class": {}}
    for kind in kinds:
        results["majority class"] |= majority_accuracies(majority, corpus_labels[kind], kind, new_sets[kind])
    rows = [("majority class", *results["majority class"].values(), "", "")]
    for artifact in args.artifact:
        results[str(artifact)] = artifact_scores(artifact, new_sets)
        rows.append((str(artifact), *results[str(artifact)].values(), "(trained before)", ""))
    for index, (name, recipe) in enumerate(RECIPES.items()):
        if args.artifact or (args.recipe is not None and index not in args.recipe):
            continue
        args.output_dir = args.output_dir or Path(tempfile.mkdtemp(prefix="speech-robust-"))
        run = recipe_run(recipe, args.overrides, data, args.output_dir / f"run{index}")
        scores, costs = trained_scores(run, new_sets)
        results[name] = scores | costs
        rows.append((name, *scores.values(), f"{costs['train_cpu_s']:.0f} s",
                     f"{costs['train_wall_s']:.0f} s"))
    print(f"\ntrained on speech-commands-synth ({len(splits.train)} clips, variants "
          f"{sorted({e.group for e in splits.train})}); accuracy on:")
    header = list(dict.fromkeys(name for kind in kinds for name in CONDITIONS[kind]))
    print_table(("recipe", *header, "training CPU (user+sys)", "training wall"), rows)
    print(json.dumps({"benchmark": "speech_robust", "conditions": kinds, "overrides": args.overrides,
                      "results": results}))

if __name__ == "__main__":
    main()
