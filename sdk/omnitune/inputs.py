"""Checks on what a user hands ``predict``: the device asked for, and the raw inputs themselves."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from omnitune.errors import ConfigError, DataError, shorten

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"
PATH_SUFFIXES = {".txt", ".csv", ".tsv", ".json", ".jsonl", ".md", ".html", ".pdf", ".doc", ".docx",
                 ".png", ".jpg", ".jpeg", ".wav", ".flac", ".mp3"}
log = logging.getLogger("omnitune")


def check_device(device: str, option: str = "device") -> None:
    """Refuse a device that is malformed or absent here, naming ``option`` (``--device``),
    before any model is loaded."""
    import torch

    if not isinstance(device, str) or not re.match(DEVICE_PATTERN, device):
        raise ConfigError(f"{option}: expected auto, cpu, mps, cuda or cuda:N, got {shorten(device)}")
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise ConfigError(f"{option}: {device!r} was asked for, but CUDA is not available here; "
                              "use cpu or auto")
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{option}: {device!r} was asked for, but there are "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{option}: 'mps' was asked for, but MPS is not available here; use cpu or auto")


def check_inputs(inputs: Sequence[Any], text: bool) -> None:
    """Refuse inputs no model can use: ``None``, empty or blank strings, strings that are not
    valid Unicode (undecodable bytes on a command line); with ``text``, anything but a string.
    A text input that looks like a file path is named in a warning: its content is not read."""
    for number, value in enumerate(inputs, start=1):
        where = f"input {number}"
        if value is None or (text and not isinstance(value, str)):
            raise DataError(f"{where}: expected {'a string of text' if text else 'an input'}, "
                            f"got {type(value).__name__} {shorten(value)}")
        if not isinstance(value, str):
            continue
        if not value.strip():
            raise DataError(f"{where}: is empty or blank; there is nothing to predict on")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise DataError(f"{where}: is not valid UTF-8 text (character {error.start + 1} is an "
                            "undecodable byte); pass UTF-8 text") from None
        if text and _looks_like_a_path(value):
            log.warning("%s looks like a file path (%s); a text model classifies the string itself, "
                        "not the file's content", where, shorten(value, 80))


def read_stdin_inputs(stream: TextIO | None = None) -> list[str]:
    """One input per non-blank line of standard input (UTF-8), for ``omnitune predict ARTIFACT -``."""
    raw = (stream or sys.stdin.buffer).read()
    data = raw if isinstance(raw, str) else _decode(raw)
    inputs = [line for line in data.splitlines() if line.strip()]
    if not inputs:
        raise DataError("standard input: no inputs (expected one per line)")
    return inputs


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(f"standard input, line {line}: not UTF-8 text ({error.reason})") from None


def _looks_like_a_path(value: str) -> bool:
    candidate = value.strip()
    if len(candidate) > 4096 or any(c.isspace() for c in candidate):
        return False
    if "/" in candidate or "\\" in candidate or Path(candidate).suffix.lower() in PATH_SUFFIXES:
        return True
    try:
        return Path(candidate).exists()
    except OSError:
        return False
