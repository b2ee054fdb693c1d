"""One run per output folder: an exclusive lock file naming its holder (pid and host).

The lock is an ``flock`` on ``output_dir/.omnitune.lock``, so the kernel releases it when the
holder exits or is killed: a lock file left behind by a dead run is stale and is taken over.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from omnitune.errors import OutputLockedError

LOCK_FILE = ".omnitune.lock"
log = logging.getLogger("omnitune")
_held: dict[Path, int] = {}  # output folder -> the open file descriptor holding its lock
F = TypeVar("F", bound=Callable[..., Any])


def lock_output_dir(output_dir: Path) -> None:
    """Take the exclusive lock of ``output_dir`` for this process (a no-op if it holds it already);
    another live holder is an ``OutputLockedError`` naming it."""
    key = output_dir.resolve()
    if key in _held:
        return
    path = key / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe(_read_holder(fd))
        os.close(fd)
        raise OutputLockedError(
            f"output_dir {output_dir} is in use by another run ({holder}); wait for it to finish, "
            "or choose another output_dir"
        ) from None
    previous = _read_holder(fd)
    if previous:
        log.info("output_dir %s: took over a stale lock left by %s (no longer running)",
                 output_dir, _describe(previous))
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(UTC).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode() + b"\n", 0)
    _held[key] = fd


def release_output_dir(output_dir: Path) -> None:
    """Give up the lock of ``output_dir`` if this process holds it; the file is left, unlocked."""
    fd = _held.pop(output_dir.resolve(), None)
    if fd is not None:
        os.ftruncate(fd, 0)
        os.close(fd)


def releases_output_locks(function: F) -> F:
    """Decorate a run: every output lock it took is released when it returns or raises."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        before = set(_held)
        try:
            return function(*args, **kwargs)
        finally:
            for folder in set(_held) - before:
                release_output_dir(folder)

    return run  # type: ignore[return-value]


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder not recorded yet"
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"
