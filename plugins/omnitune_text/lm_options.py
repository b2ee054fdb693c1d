"""Option models of the causal-LM task, backbones and datasets (no heavy imports here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnitune.options import Options
from omnitune_text.plugin import SplitOptions


class QuantizedLoading(Options):
    quantize: Literal["none", "4bit"] = Field(
        "none", description="4bit: QLoRA, the base weights load as 4-bit NF4 through bitsandbytes "
        "(CUDA only; train with train.strategy: lora)."
    )


class CausalLMBackboneConfig(QuantizedLoading):
    model: str = Field(min_length=1, description="Hugging Face hub id or local model folder.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    trust_remote_code: bool = Field(False, description="Run the model repo's own code. Off by default.")


class SmolLM2Config(QuantizedLoading):
    pass


class GenerationOptions(Options):
    max_new_tokens: int = Field(64, ge=1, le=4096, description="Tokens generated at most per prompt.")
    temperature: float = Field(0.0, ge=0, le=10, description="0: greedy (reproducible); else sampling.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass (with temperature > 0).")
    stop: list[str] = Field(default_factory=list, description="Generation ends at any of these strings.")


class CausalLMConfig(GenerationOptions):
    max_length: int = Field(256, ge=8, le=32768, description="Tokens kept per example (cut on the right).")
    train_on_prompt: bool = Field(False, description="Loss on prompt tokens too, not only the responses.")
    packing: bool = Field(
        False, description="Pack consecutive short examples of a batch into rows of max_length tokens; "
        "position ids restart per example and attention stays inside each example."
    )
    system_prompt: str | None = Field(None, description="A system message put before every conversation.")
    eval_generation: bool = Field(
        False, description="At each evaluation also generate answers and score exact match and token F1."
    )


class ChatFileConfig(SplitOptions):
    train: str = Field(min_length=1, description="JSONL, CSV or Parquet file of training rows.")
    validation: str | None = Field(None, description="Validation file; else split from train.")
    test: str | None = Field(None, description="Test file; else split from train.")
    format: Literal["instruction", "messages", "text"] = Field(
        "instruction", description="prompt/response columns, an OpenAI-style messages list, or plain text."
    )
    prompt_column: str = Field("prompt", description="instruction: the user's turn.")
    response_column: str = Field("response", description="instruction: the assistant's answer.")
    messages_column: str = Field("messages", description="messages: a list of {role, content}.")
    text_column: str = Field("text", description="text: the document (continued pretraining).")
    group_column: str | None = Field(
        None, description="Rows sharing this column's value stay in one split (no leakage)."
    )
    bad_rows: Literal["error", "skip"] = Field("error", description="Stop at a bad row, or skip it.")


class MovieLensGenresConfig(SplitOptions):
    pass
