"""Audio datasets: a folder of class subfolders, or a manifest of paths with labels or transcripts.

Only file headers are read here (readable, not empty, rate, length); the audio itself is decoded
later, batch by batch, in DataLoader workers.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnitune.data import Splits, distinct_labels, read_table, split_by_group, subsample
from omnitune.errors import ConfigError, DataError
from omnitune_speech.audio import AudioChecks, BadAudio, check_header
from omnitune_speech.plugin import (
    AUDIO_SUFFIXES,
    AudioDatasetOptions,
    AudioFolderConfig,
    AudioManifestConfig,
)

log = logging.getLogger("omnitune")


@dataclass(frozen=True)
class AudioExample:
    """One audio file and its label or transcript; ``group`` (a speaker) keeps files in one split."""

    path: str
    target: str
    group: str


def audio_folder(config: AudioFolderConfig) -> Splits:
    """``root/<label>/<file>.{wav,flac,ogg}``; labels are the subfolder names."""
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset.root: {root} is not a folder; expected one subfolder per class")
    pattern = _compile(config.group_pattern)
    labels = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    candidates = []
    for label in labels:
        for file in sorted((root / label).iterdir()):
            if file.suffix.lower() in AUDIO_SUFFIXES:
                match = pattern.search(file.name) if pattern else None
                group = match.group(1) if match and match.groups() else f"{label}/{file.name}"
                candidates.append((str(file), AudioExample(str(file), label, group)))
    examples = _screen(candidates, config)
    used = sorted({e.target for e in examples})
    if len(used) < 2:
        raise DataError(f"{root}: need audio files in at least two class subfolders, found {used}")
    return _split(examples, config, {"labels": used})


def audio_manifest(config: AudioManifestConfig) -> Splits:
    """Rows of a CSV/TSV/JSONL manifest; relative audio paths are read from the manifest's folder."""
    manifest = Path(config.manifest).expanduser()
    group = [config.group_column] if config.group_column else []
    columns = [config.path_column, config.target_column, *group]
    candidates = []
    for row_number, row in read_table(manifest, columns):
        where = f"{manifest}, row {row_number}"
        audio = str(row[config.path_column] or "").strip()
        target = str(row[config.target_column] or "").strip()
        if not audio or not target:
            empty = config.path_column if not audio else config.target_column
            raise DataError(f"{where}: field {empty!r} is empty; expected an audio path and a "
                            f"{config.target}")
        if config.target == "transcript" and config.lowercase:
            target = target.lower()
        path = manifest.parent / audio
        group = str(row[config.group_column]) if config.group_column else str(path)
        candidates.append((where, AudioExample(str(path), " ".join(target.split()), group)))
    examples = _screen(candidates, config)
    if config.target == "label":
        where = f"{manifest}, column {config.target_column!r}"
        return _split(examples, config, {"labels": distinct_labels((e.target for e in examples), where)})
    splits = _split(examples, config, {})
    splits.info["vocabulary"] = sorted({c for e in splits.train for c in e.target})
    return splits


def checks_of(config: AudioDatasetOptions) -> AudioChecks:
    return AudioChecks(max_seconds=config.max_seconds, sample_rate=config.sample_rate)


def _screen(candidates: list[tuple[str, AudioExample]], config: AudioDatasetOptions) -> list[AudioExample]:
    """Keep the files whose headers pass the checks; stop at a bad one, or skip it with a warning."""
    checks = checks_of(config)
    kept, skipped = [], []
    for where, example in candidates:
        try:
            check_header(Path(example.path), checks)
        except BadAudio as problem:
            message = str(problem) if where == example.path else f"{where}: {problem}"
            if config.bad_files == "error":
                raise BadAudio(message + " (set dataset.bad_files: skip to leave such files out)") from None
            skipped.append(message)
            continue
        kept.append(example)
    if skipped:
        log.warning("skipped %d bad audio file(s); first: %s", len(skipped), skipped[0])
    if not kept:
        raise DataError("no usable audio files" + (f"; first problem: {skipped[0]}" if skipped else " found"))
    return kept


def _split(examples: list[AudioExample], config: AudioDatasetOptions, info: dict[str, Any]) -> Splits:
    fractions = (1 - config.validation_fraction - config.test_fraction, config.validation_fraction,
                 config.test_fraction)
    train, validation, test = split_by_group(examples, fractions, config.seed, group=lambda e: e.group)
    held_out = [subsample(rows, config.max_eval_samples, config.seed + salt) or None
                for salt, rows in ((1, validation), (2, test))]
    info |= {"audio": {**checks_of(config).to_dict(), "bad_files": config.bad_files}}
    if config.limitations:
        info["limitations"] = list(config.limitations)  # the model card's "Known limitations"
    return Splits(subsample(train, config.max_train_samples, config.seed), *held_out, info=info)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"dataset.group_pattern: {pattern!r} is not a valid regex ({error})") from error
