"""Check an installed environment against requirements.lock: every locked package at its locked
version, ``pip check`` clean, and every modality library importable. Exits 1 naming what differs."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

# The libraries the plugins import: a wheel that installs but does not load fails here.
MODULES = ["torch", "torchvision", "torchaudio", "transformers", "timm", "soundfile", "peft",
           "tokenizers", "safetensors", "onnxruntime", "optuna", "captum", "matplotlib"]


def locked_versions(lock: Path) -> dict[str, str]:
    """``{name: version}`` for the lock's entries whose markers hold in this interpreter."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if not line[:1].isalnum():
            continue
        requirement, _, marker = line.rstrip(" \\").partition(";")
        name, _, version = requirement.strip().partition("==")
        if not marker.strip() or Marker(marker.strip()).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def version_problems(pins: dict[str, str]) -> list[str]:
    problems = []
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}: not installed; requirements.lock pins {version}")
            continue
        if installed != version:
            problems.append(f"{name}: {installed} is installed; requirements.lock pins {version}")
    return problems


def import_problems(pins: dict[str, str]) -> list[str]:
    torch_family = ", ".join(f"{n} {metadata.version(n)}" for n in ("torch", "torchvision", "torchaudio")
                             if n in pins and _installed(n))
    problems = []
    for module in MODULES:
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - any failure to load is the finding
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            problems.append(f"import {module} failed: {first_line} (installed: {torch_family})")
    return problems


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def main(lock: str = "requirements.lock") -> int:
    pins = locked_versions(Path(lock))
    problems = version_problems(pins)
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    if check.returncode != 0:
        problems += [f"pip check: {line}" for line in check.stdout.splitlines() if line.strip()]
    problems += import_problems(pins)
    if problems:
        print(f"bootstrap: the environment does not match {lock}:", *problems, sep="\n  ", file=sys.stderr)
        print("Re-run scripts/bootstrap.sh in a new venv (rm -rf .venv); never install over the lock.",
              file=sys.stderr)
        return 1
    import torch

    print(f"bootstrap: {len(pins)} locked packages installed and loadable "
          f"(torch {torch.__version__}, python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
