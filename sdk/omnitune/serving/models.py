"""What the server serves: a torch-free ``Bundle``, or a PyTorch artifact through ``Predictor``
(torch is imported only in that case)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from omnitune.serving.bundle import Bundle, is_bundle

FILE_TASKS = frozenset({"image-classification", "audio-classification", "speech-recognition"})


class ServedModel(Protocol):
    file_inputs: bool

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]: ...

    def metadata(self) -> dict[str, Any]: ...


class BundleModel:
    """An exported bundle run with onnxruntime."""

    def __init__(self, folder: Path, variant: str) -> None:
        self.bundle = Bundle(folder, variant=variant)
        self.file_inputs = self.bundle.task in FILE_TASKS or self.bundle.manifest.get("file_inputs", False)

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        return self.bundle.predict(inputs, batch_size=max(len(inputs), 1))

    def metadata(self) -> dict[str, Any]:
        return self.bundle.metadata()


class ArtifactModel:
    """A PyTorch artifact run with ``omnitune.Predictor``."""

    def __init__(self, folder: Path) -> None:
        from omnitune.predict import Predictor

        self.predictor = Predictor.load(folder, device="cpu")
        self.folder = folder
        self.file_inputs = self.predictor.config.task.name in FILE_TASKS

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        return self.predictor.predict(inputs, batch_size=max(len(inputs), 1))

    def metadata(self) -> dict[str, Any]:
        files = {name: _read(self.folder / f"{name}.json") for name in ("data_info", "metrics", "omnitune")}
        return {"format": "pytorch", "task": self.predictor.config.task.name,
                "labels": files["data_info"].get("labels"), "metrics": files["metrics"],
                "versions": files["omnitune"]}


def load_model(path: str | Path, variant: str = "fp32") -> ServedModel:
    """A bundle folder (has manifest.json) or a PyTorch artifact folder."""
    path = Path(path)
    return BundleModel(path, variant) if is_bundle(path) else ArtifactModel(path)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
