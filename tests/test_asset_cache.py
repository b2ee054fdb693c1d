"""The asset cache under concurrency: processes resolving one asset at once (torchrun's ranks,
nodes sharing OMNITUNE_CACHE) fetch it once, and each gets the identical, complete files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from omnitune import assets, checkpoint

FILES = 50
RESOLVE = """
import hashlib, json, sys
from omnitune.assets import PackagedAsset, resolve
folder = resolve(PackagedAsset("omnitune-fixture", "1.0", sys.argv[1], "omnitune_fixture/data/"))
print(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}))
"""


def build_wheel(folder: Path) -> Path:
    """A real wheel of 50 files of 256 KB each, for pip to download from a local index."""
    wheel = folder / "omnitune_fixture-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as bundle:
        for index in range(FILES):
            bundle.writestr(f"omnitune_fixture/data/part-{index:02d}.bin", os.urandom(1 << 18))
        bundle.writestr("omnitune_fixture-1.0.dist-info/METADATA",
                        "Metadata-Version: 2.1\nName: omnitune-fixture\nVersion: 1.0\n")
        bundle.writestr("omnitune_fixture-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        bundle.writestr("omnitune_fixture-1.0.dist-info/RECORD", "")
    return wheel


def test_four_processes_fetch_one_asset_once(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    wheel = build_wheel(tmp_path / "index")
    pip_log = tmp_path / "pip.log"
    env = {**os.environ, assets.CACHE_ENV: str(tmp_path / "cache"), "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(wheel.parent), "PIP_CONSTRAINT": "", "PIP_LOG": str(pip_log)}
    sha = assets.sha256_of(wheel)
    runs = [subprocess.Popen([sys.executable, "-c", RESOLVE, sha], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, [err[-800:] for _, err in outputs]
    listings = [json.loads(out) for out, _ in outputs]
    assert len(listings[0]) == FILES and all(listing == listings[0] for listing in listings)
    with zipfile.ZipFile(wheel) as bundle:
        expected = {Path(n).name: hashlib.sha256(bundle.read(n)).hexdigest()
                    for n in bundle.namelist() if n.endswith(".bin")}
    assert listings[0] == expected
    entries = sorted(p.name for p in (tmp_path / "cache" / "packages").iterdir())
    assert entries == [f"omnitune-fixture-1.0-{sha[:12]}", f"omnitune-fixture-1.0-{sha[:12]}.lock"]
    assert pip_log.read_text().count("Successfully downloaded omnitune-fixture") == 1  # one download


def test_fill_runs_once_and_a_failed_fill_leaves_nothing_visible(tmp_path: Path) -> None:
    calls: list[Path] = []

    def broken(staging: Path) -> None:
        (staging / "half.bin").write_bytes(b"x")
        raise OSError("disk full")

    entry = tmp_path / "cache" / "entry"
    with pytest.raises(OSError, match="disk full"):
        assets.fetch_once(entry, broken)
    assert not entry.exists() and [p.name for p in entry.parent.iterdir()] == ["entry.lock"]

    def fill(staging: Path) -> None:
        calls.append(staging)
        (staging / "model.bin").write_bytes(b"weights")

    assert (assets.fetch_once(entry, fill) / "model.bin").read_bytes() == b"weights"
    assert entry.stat().st_mode & 0o777 == 0o777 & ~checkpoint.current_umask()  # shareable
    assert assets.fetch_once(entry, fill) == entry and len(calls) == 1
