"""Files inside a pinned Debian package: fetched with ``apt-get download``, verified, cached."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omnitune.assets import cache_dir, fetch_once, sha256_of
from omnitune.errors import AssetError


@dataclass(frozen=True)
class DebianAsset:
    """A folder inside a pinned .deb (``member`` is relative to the package's root, e.g. ``usr/share/x``)."""

    package: str
    version: str
    deb_sha256: str
    member: str

    @property
    def key(self) -> str:
        return f"{self.package}-{self.deb_sha256[:12]}"


def resolve_deb(asset: DebianAsset) -> Path:
    """Local path of ``asset.member``: downloaded (never installed) and extracted on first use,
    through the same locked cache entry as every other asset."""

    def fill(staging: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="omnitune-deb-") as scratch:
            deb = _download(asset, Path(scratch))
            actual = sha256_of(deb)
            if actual != asset.deb_sha256:
                raise AssetError(f"{deb.name}: sha256 {actual} does not match the pinned "
                                 f"{asset.deb_sha256}; refusing it")
            _run(["dpkg-deb", "-x", str(deb), str(staging)], asset)

    return fetch_once(cache_dir() / "debian" / asset.key, fill) / asset.member


def _download(asset: DebianAsset, directory: Path) -> Path:
    """``apt-get download``, refreshing the package lists once if the package is unknown to them."""
    spec = f"{asset.package}={asset.version}"
    done = _run(["apt-get", "download", spec], asset, directory, check=False)
    if done.returncode != 0:
        _run(["apt-get", "update"], asset, directory)
        _run(["apt-get", "download", spec], asset, directory)
    debs = list(directory.glob("*.deb"))
    if len(debs) != 1:
        raise AssetError(f"apt-get download {spec} left {len(debs)} .deb files, expected one")
    return debs[0]


def _run(command: list[str], asset: DebianAsset, cwd: Path | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise AssetError(f"{command[0]} is not available to fetch Debian package {asset.package}; "
                         "install the package or point the dataset at a local copy") from error
    if check and done.returncode != 0:
        raise AssetError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done
