"""What produced an artifact (library versions, device, resolved precision, seed, command, git
commit), recorded beside its weights; and the differences from the environment loading it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "transformers", "timm", "torchaudio", "torchvision", "peft", "omnitune")


def library_versions() -> dict[str, str | None]:
    """Python's version and each library's installed version (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def reproducibility(runtime: Any, seed: int) -> dict[str, Any]:
    """The record saved as ``reproducibility.json`` in every artifact."""
    return {
        "versions": library_versions(),
        "device": str(runtime.device),
        "device_name": _device_name(runtime.device),
        "precision": runtime.precision,
        "world_size": runtime.world_size,
        "seed": seed,
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else None,
        "platform": platform.platform(),
        "git": git_state(Path.cwd()),
    }


def git_state(directory: Path) -> dict[str, Any] | None:
    """The commit checked out in ``directory`` and whether the work tree has changes; None
    outside a git work tree (or without git)."""
    try:
        commit = _git(directory, "rev-parse", "HEAD")
        dirty = bool(_git(directory, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def version_differences(recorded: dict[str, Any]) -> list[str]:
    """``"torch 2.11.0 (recorded) != 2.10.0 (installed)"`` for each library whose version changed."""
    current = library_versions()
    return [f"{name} {was} (recorded) != {current.get(name)} (installed)"
            for name, was in recorded.get("versions", {}).items() if current.get(name) != was]


def _git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                          timeout=10, check=True)
    return done.stdout.strip()


def _device_name(device: Any) -> str:
    if getattr(device, "type", None) == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text(encoding="utf-8").splitlines() if cpuinfo.is_file() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} cores"
