"""The causal-LM task: supervised fine-tuning on answers (or continued pretraining on text),
held-out loss and perplexity, and generation for prediction."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnitune.errors import ConfigError
from omnitune.metrics import Metric
from omnitune.task import StepOutput, Task
from omnitune_text.chat_encoding import IGNORE, ChatEncoder
from omnitune_text.generation import exact_match, generate, stream, token_f1
from omnitune_text.hf_export import save_pretrained
from omnitune_text.lm_backbone import CausalLMBackbone
from omnitune_text.lm_batches import batch_rows
from omnitune_text.lm_datasets import ChatExample
from omnitune_text.lm_options import CausalLMConfig, GenerationOptions
from omnitune_text.truncation import TruncationReport


class LanguageModel(nn.Module):
    """A causal LM backbone; the LM head is its own, so ``head`` holds nothing."""

    def __init__(self, backbone: CausalLMBackbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Identity()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(input_ids, attention_mask, position_ids, keep)


class CausalLM(Task):
    """Next-token prediction; the loss averages over answer tokens (every token with
    ``train_on_prompt``, or for plain text), so ``num_items`` counts those tokens."""

    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, config: CausalLMConfig, *, backbone: CausalLMBackbone,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        if not isinstance(backbone, CausalLMBackbone):
            raise ConfigError("causal-lm needs a causal LM backbone (causal-lm, smollm2-135m), "
                              f"got {type(backbone).__name__}")
        self.config = config
        self.tokenizer = backbone.tokenizer
        self.encoder = ChatEncoder(self.tokenizer, config.max_length, config.train_on_prompt,
                                   config.system_prompt)
        self.model = LanguageModel(backbone)
        self.metrics = ("perplexity", "truncated_fraction") + (
            ("exact_match", "token_f1") if config.eval_generation else ())
        self.truncation = TruncationReport("causal-lm", f"were longer than task.max_length="
                                           f"{config.max_length} tokens and were cut on the right")

    def collate(self, examples: list[ChatExample]) -> dict[str, Any]:
        encoded = [self.encoder.encode(example) for example in examples]
        self.truncation.add(sum(e.truncated for e in encoded), len(encoded))
        pack_to = self.config.max_length if self.config.packing else None
        batch: dict[str, Any] = batch_rows(encoded, self.tokenizer.pad_token_id, pack_to)
        batch["truncated"] = torch.tensor([e.truncated for e in encoded])
        if self.config.eval_generation:
            batch["prompts"] = [self.encoder.prompt_ids(e.messages[:-1]) for e in examples]
            batch["references"] = [e.reference for e in examples]
        return batch

    def num_items(self, batch: dict[str, Any]) -> int:
        return int((batch["labels"] != IGNORE).sum())

    def num_examples(self, batch: dict[str, Any]) -> int:
        return int(batch["example"].max()) + 1  # packed rows hold several examples

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> StepOutput:
        """Logits only where a label follows (the vocabulary projection of prompt and padding
        positions is never computed), the loss summed per example."""
        targets = batch["labels"][:, 1:] != IGNORE
        logits = model(batch["input_ids"], batch.get("attention_mask"), batch.get("position_ids"),
                       F.pad(targets, (0, 1)))
        losses, counts = example_losses(logits, batch["labels"][:, 1:][targets],
                                        batch["example"][:, 1:][targets], len(batch["truncated"]))
        return StepOutput(losses.sum() / counts.sum().clamp(min=1), {"loss_sum": losses, "tokens": counts})

    def evaluation_step(self, model: nn.Module, batch: dict[str, Any]) -> StepOutput:
        out = self.training_step(model, batch)
        outputs = {k: v.detach() for k, v in out.outputs.items()} | {"truncated": batch["truncated"]}
        if self.config.eval_generation:
            answers = self.generate_ids(_unwrap(model), batch["prompts"])
            pairs = list(zip(answers, batch["references"], strict=True))
            outputs["exact_match"] = torch.tensor([exact_match(a, r) for a, r in pairs])
            outputs["token_f1"] = torch.tensor([token_f1(a, r) for a, r in pairs])
        return StepOutput(out.loss, outputs)

    def encode_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        """Prompts: a string (one user turn) or an OpenAI-style list of messages."""
        return {"prompts": [self.encoder.prompt_ids(_turns(item)) for item in inputs]}

    def predict_step(self, model: nn.Module, batch: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"generated_text": text} for text in self.generate_ids(_unwrap(model), batch["prompts"])]

    def generate_ids(self, model: LanguageModel, prompts: list[list[int]],
                     options: GenerationOptions | None = None) -> list[str]:
        """Generated continuations of prompt ids (the task's generation settings by default)."""
        return generate(model.backbone.lm, self.tokenizer, prompts, options or self.config)

    def stream_chat(self, history: list[dict[str, str]],
                    options: GenerationOptions | None = None) -> Iterator[str]:
        """The assistant's next answer to ``history`` (OpenAI-style messages), piece by piece."""
        prompt = self.encoder.prompt_ids(_turns(history))
        return stream(self.model.backbone.lm, self.tokenizer, prompt, options or self.config)

    def save_pretrained(self, directory: Path) -> Path:
        """A Hugging Face folder (weights, config, generation config, tokenizer) that plain
        transformers loads; LoRA adapters must be merged first (``Predictor.load(merge_lora=True)``)."""
        return save_pretrained(self.model.backbone.lm, self.tokenizer, directory)

    def preprocessing(self) -> dict[str, Any]:
        return {"max_length": self.config.max_length, "tokenizer": type(self.tokenizer).__name__,
                "chat_template": self.tokenizer.chat_template, "train_on_prompt": self.config.train_on_prompt}



def example_losses(logits: torch.Tensor, targets: torch.Tensor, owners: torch.Tensor,
                   examples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy and counted target tokens per example, from the logits
    (kept, vocabulary) of the kept positions, their target ids and the examples they belong to."""
    nll = F.cross_entropy(logits.float(), targets, reduction="none")
    sums = torch.zeros(examples, dtype=nll.dtype, device=nll.device).index_add(0, owners, nll)
    return sums, torch.bincount(owners, minlength=examples)


def perplexity(outputs: dict[str, torch.Tensor]) -> float:
    """exp of the mean loss per label token over the whole split."""
    return math.exp(float(outputs["loss_sum"].sum() / outputs["tokens"].sum().clamp(min=1)))


def mean_of(key: str) -> Metric:
    """A metric: the mean of a per-example output over the split."""
    return lambda outputs: float(outputs[key].float().mean())


def perplexity_metric(_options: Any) -> Metric:
    """Factory of the ``perplexity`` metric."""
    return perplexity


def truncated_metric(_options: Any) -> Metric:
    """Factory of ``truncated_fraction``: the share of examples cut at ``max_length``."""
    return mean_of("truncated")


def exact_match_metric(_options: Any) -> Metric:
    """Factory of ``exact_match`` over greedy generations (``task.eval_generation``)."""
    return mean_of("exact_match")


def token_f1_metric(_options: Any) -> Metric:
    """Factory of ``token_f1`` over greedy generations (``task.eval_generation``)."""
    return mean_of("token_f1")


def _unwrap(model: nn.Module) -> LanguageModel:
    return getattr(model, "module", model)


def _turns(item: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(item, str):
        return (("user", item),)
    if isinstance(item, list) and all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in item):
        return tuple((m["role"], m["content"]) for m in item)
    raise ConfigError(f"a causal-lm prompt is a string or a list of {{role, content}} messages, got {item!r}")
