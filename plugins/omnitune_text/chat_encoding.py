"""Conversations and documents -> token ids and labels: the loss on the answers only (or on all)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from omnitune.errors import DataError
from omnitune_text.lm_datasets import ChatExample

log = logging.getLogger("omnitune")
IGNORE = -100  # label of a token the loss skips
# ChatML: used for tokenizers that come without a chat template (base models)
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\\n' }}{% endif %}")


@dataclass(frozen=True)
class Encoded:
    """Token ids, their labels (``IGNORE`` where no loss), and whether ``max_length`` cut it."""

    ids: list[int]
    labels: list[int]
    truncated: bool


class ChatEncoder:
    """Renders conversations with the tokenizer's chat template and tokenizes them, turn by turn,
    so the answers' tokens are known exactly; plain texts are tokenized whole."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int, train_on_prompt: bool,
                 system_prompt: str | None) -> None:
        if not tokenizer.chat_template:
            log.info("the tokenizer has no chat template; using ChatML")
            tokenizer.chat_template = CHATML
        self.tokenizer, self.max_length = tokenizer, max_length
        self.train_on_prompt, self.system_prompt = train_on_prompt, system_prompt

    def encode(self, example: ChatExample) -> Encoded:
        """Ids and labels of one example, cut to ``max_length`` on the right."""
        if example.messages:
            segments = self.segments(self.with_system(example.messages))
        else:
            segments = [(example.text, True)]
        ids, labels = [], []
        for text, trained in segments:
            piece = self._tokens(text, special=not example.messages)
            ids += piece
            labels += piece if trained or self.train_on_prompt else [IGNORE] * len(piece)
        if not example.messages and self.tokenizer.eos_token_id is not None:
            ids, labels = ids + [self.tokenizer.eos_token_id], labels + [self.tokenizer.eos_token_id]
        cut = len(ids) > self.max_length
        return Encoded(ids[:self.max_length], labels[:self.max_length], cut)

    def prompt_ids(self, turns: Sequence[tuple[str, str]]) -> list[int]:
        """Ids of a conversation rendered up to the assistant's next answer (for generation)."""
        text = self._render(self.with_system(tuple(turns)), add_generation_prompt=True)
        return self._tokens(text)

    def with_system(self, turns: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """``turns``, after the configured system prompt unless they start with their own."""
        if self.system_prompt and (not turns or turns[0][0] != "system"):
            return (("system", self.system_prompt), *turns)
        return turns

    def segments(self, turns: tuple[tuple[str, str], ...]) -> list[tuple[str, bool]]:
        """The rendered conversation cut into ``(text, is_answer)`` pieces, in order."""
        pieces: list[tuple[str, bool]] = []
        done = ""
        for index, (role, _) in enumerate(turns):
            if role != "assistant":
                continue
            asked = self._render(turns[:index], add_generation_prompt=True)
            answered = self._render(turns[:index + 1], add_generation_prompt=False)
            if not asked.startswith(done) or not answered.startswith(asked):
                raise DataError("the chat template does not render a conversation as a prefix of its "
                                "continuation, so the answer tokens cannot be located; use a "
                                "tokenizer whose template does (ChatML, Llama, Mistral, SmolLM2 do)")
            pieces += [(asked[len(done):], False), (answered[len(asked):], True)]
            done = answered
        rest = self._render(turns, add_generation_prompt=False)[len(done):]
        return [(text, trained) for text, trained in [*pieces, (rest, False)] if text]

    def _render(self, turns: Sequence[tuple[str, str]], add_generation_prompt: bool) -> str:
        if not turns:
            return ""
        messages = [{"role": role, "content": content} for role, content in turns]
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def _tokens(self, text: str, special: bool = False) -> list[int]:
        """Ids of ``text``; a rendered conversation already holds its special tokens."""
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]
