"""Image records and splits that decode pictures on access (in DataLoader workers)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
from PIL import Image

from omnitune.errors import DataError
from omnitune_vision.images import from_pixels, open_rgb

log = logging.getLogger("omnitune")


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One labelled image: a file path, or a uint8 pixel array (H, W) or (H, W, 3)."""

    source: str | np.ndarray
    label: str
    name: str  # shown in messages: the path, or "<dataset>[index]"


@dataclass(frozen=True)
class ImageExample:
    """A decoded picture; ``image`` is None for an unreadable file skipped under ``bad_files: skip``."""

    image: Image.Image | None
    label: str
    name: str
    augment: bool


class ImageSplit(Sequence[ImageExample]):
    """The records of one split. Indexing decodes the picture; with ``bad_files="skip"`` an
    unreadable file is logged with its path, counted in ``skipped`` and yields ``image=None``."""

    def __init__(self, records: Sequence[ImageRecord], *, augment: bool, bad_files: str = "error") -> None:
        self.records = list(records)
        self.augment = augment
        self.bad_files = bad_files
        self.skipped: list[str] = []  # per process: each DataLoader worker counts its own

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> ImageExample: ...
    @overload
    def __getitem__(self, index: slice) -> list[ImageExample]: ...

    def __getitem__(self, index: int | slice) -> ImageExample | list[ImageExample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        record = self.records[index]
        return ImageExample(self._decode(record), record.label, record.name, self.augment)

    def _decode(self, record: ImageRecord) -> Image.Image | None:
        if isinstance(record.source, np.ndarray):
            return from_pixels(record.source)
        try:
            return open_rgb(record.source)
        except DataError as error:
            if self.bad_files == "error":
                raise
            self.skipped.append(record.name)
            log.warning("skipped unreadable image %d in this split so far: %s", len(self.skipped), error)
            return None
