"""A causal-LM model as a plain Hugging Face folder: LoRA folded in, loadable without omnitune."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from omnitune.checkpoint import publish_directory, staging_directory
from omnitune.errors import CheckpointError

LORA_MARK = "lora_"
BASE_LAYER = ".base_layer"


def plain_state_dict(lm: PreTrainedModel) -> dict[str, torch.Tensor]:
    """``lm``'s weights under the names of the unadapted model. Every adapter must already be
    merged into its base weight (``omnitune.lora.merge_lora``)."""
    from peft.tuners.lora import LoraLayer

    unmerged = [name for name, m in lm.named_modules() if isinstance(m, LoraLayer) and not m.merged]
    if unmerged:
        raise CheckpointError(f"LoRA adapters are not merged yet (first: {unmerged[0]}); "
                              "load the artifact with merge_lora=True")
    return {name.replace(BASE_LAYER, ""): tensor for name, tensor in lm.state_dict().items()
            if LORA_MARK not in name}


def save_pretrained(lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path) -> Path:
    """Write ``directory`` (atomically): safetensors weights, config, generation config and
    tokenizer with its chat template, as ``AutoModelForCausalLM.from_pretrained`` reads them."""
    plain = AutoModelForCausalLM.from_config(lm.config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(plain_state_dict(lm), strict=False)
    missing = [name for name in missing if name not in _tied_names(plain)]
    if missing or unexpected:
        raise CheckpointError(f"the fine-tuned weights do not fit {type(plain).__name__}: "
                              f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    plain.generation_config = lm.generation_config
    staging = staging_directory(directory.parent, directory.name)
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    publish_directory(staging, directory)
    return directory


def _tied_names(model: PreTrainedModel) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or {}
    return set(keys) if not isinstance(keys, dict) else set(keys)
