"""LoRA adapters through peft, on any backbone built of ``nn.Linear`` layers."""

from __future__ import annotations

from torch import nn

from omnitune.config import LoraSettings
from omnitune.errors import ConfigError


def apply_lora(model: nn.Module, settings: LoraSettings) -> None:
    """Inject LoRA adapters into ``model.backbone`` and freeze every other backbone weight.

    Targets: ``settings.target_modules``, else the backbone's ``lora_target_modules``, else
    every linear layer. The head stays fully trainable.
    """
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as error:
        raise ConfigError("train.strategy: lora needs peft (pip install 'omnitune[text]')") from error
    backbone = model.backbone
    linear = {name.rsplit(".", 1)[-1] for name, m in backbone.named_modules() if isinstance(m, nn.Linear)}
    targets = settings.target_modules or getattr(backbone, "lora_target_modules", None) or sorted(linear)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=targets)
    try:
        inject_adapter_in_model(config, backbone)
    except ValueError as error:
        raise ConfigError(f"train.lora.target_modules: {error}") from error
    for name, parameter in backbone.named_parameters():
        parameter.requires_grad_("lora_" in name)


def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into its base weight (faster inference); returns how many merged."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    for layer in layers:
        layer.merge()
    return len(layers)
