"""Reading IDX files (the MNIST family's format), plain or gzipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from omnitune.errors import DataError

UNSIGNED_BYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array in an IDX file (``.gz`` is decompressed); errors name the file."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as error:
        raise DataError(f"{path}: IDX file not found") from error
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: unreadable ({error})") from error
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != UNSIGNED_BYTE:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (expected magic 00 00 08 NN, "
                        f"got {data[:4].hex(' ') or 'nothing'})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: IDX header cut short")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise DataError(f"{path}: IDX shape {shape} needs {expected} bytes, the file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
