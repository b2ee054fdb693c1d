"""Print the hash-pinned requirements of a torch-free serving environment: the serving packages
and everything they need, as pinned in requirements.lock (read from the packages installed in
this interpreter, which bootstrap installed from that lock).

    .venv/bin/python scripts/serving_requirements.py > serving.txt
    python -m venv serve && serve/bin/pip install --require-hashes --no-deps -r serving.txt
    serve/bin/pip install --no-deps .   # omnitune itself (its plugins' serving modules are torch-free)
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SERVING = ("onnxruntime", "tokenizers", "numpy", "pillow", "soundfile", "fastapi", "uvicorn", "pluggy",
           "pydantic", "tqdm", "python-multipart")
NEVER = frozenset({"torch", "transformers", "timm", "torchaudio", "torchvision"})


def closure(roots: tuple[str, ...]) -> set[str]:
    """The roots and their installed dependencies (this platform's markers, no extras)."""
    environment = default_environment() | {"extra": ""}
    seen: set[str] = set()
    todo = [canonicalize_name(name) for name in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(canonicalize_name(requirement.name))
    return seen


def pinned(lock: Path, names: set[str]) -> list[str]:
    """The lock's entries (``name==version`` with its hashes) for ``names``."""
    entries = re.split(r"\n(?=\S)", lock.read_text(encoding="utf-8"))
    chosen = []
    for entry in entries:
        match = re.match(r"([A-Za-z0-9_.\-]+)==", entry)
        if match and canonicalize_name(match.group(1)) in names:
            chosen.append("\n".join(line for line in entry.splitlines() if not line.lstrip().startswith("#")))
    return chosen


def main() -> int:
    names = closure(SERVING)
    heavy = names & NEVER
    if heavy:
        print(f"serving_requirements: {sorted(heavy)} would enter the serving environment", file=sys.stderr)
        return 1
    print("\n".join(pinned(Path(__file__).resolve().parent.parent / "requirements.lock", names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
