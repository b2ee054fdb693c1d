"""requirements.lock agrees with pyproject.toml: every dependency of every extra is locked, at a
version its range admits, and the torch family sits at the pins of constraints.txt."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKED_EXTRAS = ("all", "test", "bench", "mlflow", "wandb")


def lock_entries() -> dict[str, list[str]]:
    """``{name: [version, ...]}``: a universal lock may hold one version per Python range."""
    entries: dict[str, list[str]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line[:1].isalnum():
            name, _, version = line.split(";")[0].rstrip(" \\").partition("==")
            entries.setdefault(canonicalize_name(name), []).append(version.strip())
    return entries


def project_requirements() -> list[Requirement]:
    """The core dependencies and those of the locked extras, following self-references."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    found = [Requirement(text) for text in project["dependencies"]]
    pending, seen = list(LOCKED_EXTRAS), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in map(Requirement, extras[extra]):
            if canonicalize_name(requirement.name) == "omnitune":
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


@pytest.mark.parametrize("requirement", project_requirements(), ids=str)
def test_every_dependency_is_locked_within_its_range(requirement: Requirement) -> None:
    versions = lock_entries().get(canonicalize_name(requirement.name))
    assert versions, f"{requirement.name} is in pyproject.toml, not in requirements.lock: run scripts/lock.sh"
    outside = [v for v in versions if not requirement.specifier.contains(v, prereleases=True)]
    assert not outside, f"requirements.lock has {requirement.name}=={outside[0]}, outside {requirement}"


def test_constraints_pin_the_lock() -> None:
    locked = lock_entries()
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert locked[canonicalize_name(name)] == [version.strip()], line


def test_every_locked_package_has_hashes() -> None:
    blocks = (ROOT / "requirements.lock").read_text().split("\n")
    for index, line in enumerate(blocks):
        if line[:1].isalnum():
            assert blocks[index + 1].strip().startswith("--hash=sha256:"), f"{line.split()[0]} has no hash"


def test_install_check_names_a_drifted_torchaudio(tmp_path: Path) -> None:
    """The 2026-11-29 breakage: torchaudio 2.11.1 beside torch 2.11.0. Installed over this venv
    (first on the path), bootstrap's check must fail naming the package and both versions."""
    fetched = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--target", str(tmp_path), "torchaudio==2.11.1"],
                             capture_output=True, text=True)
    if fetched.returncode != 0:
        pytest.skip(f"PyPI not reachable: {fetched.stderr.strip()[-200:]}")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_install.py"),
                           str(ROOT / "requirements.lock")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1
    assert "torchaudio: 2.11.1 is installed; requirements.lock pins 2.11.0" in done.stderr
    assert "import torchaudio failed" in done.stderr and "torch 2.11.0" in done.stderr
