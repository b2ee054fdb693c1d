"""Atomic checkpoints, resume, and the artifact folder (safetensors + JSON)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from omnitune.errors import CheckpointError

Weights = dict[str, torch.Tensor]

WEIGHTS = "model.safetensors"
TRAINING_STATE = "training_state.pt"
COMPLETE_MARK = "complete.json"
LATEST_POINTER = "latest"
log = logging.getLogger("omnitune")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False,
                                     encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o666 & ~current_umask())  # mkstemp's 0600 ignores the umask
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def publish_directory(staging: Path, target: Path) -> None:
    """Make a fully written ``staging`` folder appear as ``target`` in one rename."""
    _fsync_tree(staging)
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)


def staging_directory(parent: Path, name: str) -> Path:
    """A fresh temporary folder beside where ``name`` will be published."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.tmp-"))


def remove_staging(directory: Path) -> int:
    """Delete what a crash left half-written under ``directory`` (never a published folder)."""
    stale = [p for p in directory.glob(".*.tmp-*") if p.is_dir()] if directory.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def save_checkpoint(
    root: Path, step: int, weights: Weights, training_state: dict[str, Any], keep: int
) -> Path:
    """Write ``root/step-N`` atomically, point ``root/latest`` at it, keep the newest ``keep``."""
    name = f"step-{step:08d}"
    staging = staging_directory(root, name)
    save_file(weights, str(staging / WEIGHTS))
    torch.save(training_state, staging / TRAINING_STATE)
    write_json(staging / COMPLETE_MARK, {"step": step})
    target = root / name
    publish_directory(staging, target)
    atomic_write_text(root / LATEST_POINTER, name + "\n")
    for old in complete_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def complete_checkpoints(root: Path) -> list[Path]:
    """Every fully written checkpoint under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if (p / COMPLETE_MARK).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint ``latest`` points at, or the newest complete one if the pointer is stale."""
    pointer = root / LATEST_POINTER
    if pointer.is_file():
        candidate = root / pointer.read_text(encoding="utf-8").strip()
        if (candidate / COMPLETE_MARK).is_file():
            return candidate
    complete = complete_checkpoints(root)
    return complete[-1] if complete else None


def load_checkpoint(path: Path) -> tuple[Weights, dict[str, Any]]:
    """The weights and the training state of a checkpoint (tensors only, no code runs: a
    pickle that would is refused)."""
    try:
        return read_weights(path / WEIGHTS), torch.load(path / TRAINING_STATE, map_location="cpu",
                                                        weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"checkpoint {path} could not be loaded: {detail}") from error


def load_latest_checkpoint(root: Path) -> tuple[Path, Weights, dict[str, Any]] | None:
    """The newest checkpoint under ``root`` that loads, with its weights and training state:
    ``latest`` first, then the older complete ones, newest first. Each one skipped is named in a
    warning; None when there is no checkpoint; a CheckpointError naming each when none loads."""
    latest = latest_checkpoint(root)
    if latest is None:
        return None
    problems: list[str] = []
    for path in [latest, *(p for p in reversed(complete_checkpoints(root)) if p != latest)]:
        try:
            weights, training_state = load_checkpoint(path)
        except CheckpointError as error:
            problems.append(str(error))
            log.warning("%s; trying an older checkpoint", error)
            continue
        if problems:
            log.warning("resuming from %s, the newest checkpoint that loads", path)
        return path, weights, training_state
    raise CheckpointError(f"no checkpoint under {root} could be loaded:\n" + "\n".join(problems)
                          + "\nstart afresh with --overwrite, or choose another output_dir")


def log_lines_up_to(path: Path, step: int) -> list[str]:
    """The records of a JSONL log whose ``step`` is at most ``step``. A line that is not a JSON
    object (cut short by a kill in the middle of an append) is dropped with a warning."""
    kept = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        try:
            record = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            record = None
            log.warning("%s, line %d: not a complete JSON record (a write cut short); dropped", path, number)
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    return kept


def savable_weights(model: torch.nn.Module, state: Weights) -> Weights:
    """``state`` (a state dict of ``model``) as safetensors stores it: a tied weight under its
    first name only, and no two tensors sharing memory."""
    aliases = {alias for group in _tied_groups(model) for alias in group[1:]}
    savable: Weights = {}
    storages: set[tuple[torch.device, int]] = set()
    for name, tensor in state.items():
        if name in aliases:
            continue
        storage = (tensor.device, tensor.untyped_storage().data_ptr())
        if storage in storages or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        storages.add(storage)
        savable[name] = tensor.detach()
    return savable


def complete_weights(model: torch.nn.Module, weights: Weights) -> Weights:
    """``weights`` with every name of each tied weight filled in, as ``model.state_dict()`` has."""
    complete = dict(weights)
    expected = model.state_dict().keys()
    for group in _tied_groups(model):
        present = next((name for name in group if name in weights), None)
        if present is not None:
            complete.update({name: weights[present] for name in group if name in expected})
    return complete


def load_state(model: torch.nn.Module, weights: Weights, source: Path) -> None:
    """Copy ``weights`` (read from ``source``) into ``model``; every key and shape must match."""
    try:
        missing, unexpected = model.load_state_dict(complete_weights(model, weights), strict=False)
    except RuntimeError as error:
        raise CheckpointError(f"{source} does not fit the model: {error}") from error
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not fit the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )


def save_weights(weights: Weights, path: Path) -> None:
    """Save ``weights`` (see ``savable_weights``) as safetensors via a temporary file and a rename."""
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(weights, str(staging))
    staging.chmod(0o666 & ~current_umask())
    os.replace(staging, path)


def read_weights(path: Path) -> Weights:
    """The tensors of a safetensors file, on the CPU."""
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        return load_file(path)
    except SafetensorError as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a safetensors file into ``model`` (one process, unsharded); every key must match."""
    load_state(model, read_weights(path), path)


def _tied_groups(model: torch.nn.Module) -> list[list[str]]:
    """Names that refer to one and the same parameter or buffer, for each that has several."""
    names: dict[int, list[str]] = {}
    named = itertools.chain(model.named_parameters(remove_duplicate=False),
                            model.named_buffers(remove_duplicate=False))
    for name, tensor in named:
        names.setdefault(id(tensor), []).append(name)
    return [group for group in names.values() if len(group) > 1]


def _fsync_tree(directory: Path) -> None:
    """Flush every file of ``directory`` to disk and give the tree the umask's permissions
    (safetensors and mkdtemp create 0600/0700 files whatever the umask)."""
    umask = current_umask()
    directory.chmod(0o777 & ~umask)
    for path in directory.rglob("*"):
        if path.is_dir():
            path.chmod(0o777 & ~umask)
        elif path.is_file():
            path.chmod(0o666 & ~umask)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def save_artifact(
    directory: Path,
    weights: Weights,
    files: dict[str, Any],
    export: Callable[[Path], None] | None = None,
) -> Path:
    """Write the artifact folder atomically: weights, one JSON file per entry of ``files``,
    and whatever ``export`` writes into ``backbone/`` (configs, tokenizer, ...)."""
    staging = staging_directory(directory.parent, directory.name)
    save_file(weights, str(staging / WEIGHTS))
    for name, data in files.items():
        write_json(staging / f"{name}.json", data)
    if export is not None:
        (staging / "backbone").mkdir()
        export(staging / "backbone")
    publish_directory(staging, directory)
    return directory
