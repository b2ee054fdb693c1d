"""Errors a user can act on, each with the exit code the CLI returns for it."""

from __future__ import annotations

import reprlib
from typing import Any

EXIT_INTERRUPTED = 130
MAX_ECHOED_CHARS = 200


def shorten(value: Any, limit: int = MAX_ECHOED_CHARS) -> str:
    """``repr(value)`` in at most about ``limit`` characters, however large or deep the value:
    what error messages echo of a user's value."""
    shown = _ECHO.repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({type(value).__name__}, cut)"


_ECHO = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
_ECHO.maxlevel, _ECHO.maxdict, _ECHO.maxlist, _ECHO.maxtuple, _ECHO.maxset = 3, 8, 8, 8, 8
_ECHO.maxstring = _ECHO.maxother = MAX_ECHOED_CHARS
_ECHO.maxlong = 60


class OmnituneError(Exception):
    """Base of every error omnitune raises on purpose."""

    exit_code = 1


class ConfigError(OmnituneError):
    """A run config is invalid: names the field and what was expected."""

    exit_code = 2


class DataError(OmnituneError):
    """A dataset file is missing or malformed: names the file, row and field."""

    exit_code = 3


class PluginError(OmnituneError):
    """A plugin or registry problem: unknown names, duplicates, broken plugins."""

    exit_code = 4


class UnknownNameError(PluginError, KeyError):
    """A task, backbone, head, dataset or metric name that nothing registered."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0])


class DuplicateNameError(PluginError):
    """Two plugins registered the same name for the same kind."""


class AssetError(OmnituneError):
    """A pretrained weight file or packaged dataset could not be resolved or verified."""

    exit_code = 5


class CheckpointError(OmnituneError):
    """A checkpoint or artifact is missing, incomplete or incompatible."""

    exit_code = 6


class TrainingError(OmnituneError):
    """Training cannot go on (a non-finite loss, say); the last good checkpoint is kept."""

    exit_code = 7


class OutputLockedError(OmnituneError):
    """Another live run holds the output folder's lock; the message names its pid and host."""

    exit_code = 8


class TrainingInterrupted(OmnituneError):
    """SIGINT or SIGTERM stopped training after saving a resumable checkpoint."""

    exit_code = EXIT_INTERRUPTED
