"""Text generation with a causal LM (greedy by default), streaming, and answer scores."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterator
from threading import Thread

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TextIteratorStreamer

from omnitune_text.lm_options import GenerationOptions


def left_padded(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt ids padded on the left (generation continues at the right end) and their mask."""
    width = max(len(ids) for ids in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            ids[row, width - len(sequence):] = torch.tensor(sequence)
            mask[row, width - len(sequence):] = 1
    return ids, mask


def generate_kwargs(tokenizer: PreTrainedTokenizerBase, options: GenerationOptions) -> dict:
    """``lm.generate`` settings: greedy at temperature 0, else nucleus sampling."""
    sampling = options.temperature > 0
    kwargs: dict = {"max_new_tokens": options.max_new_tokens, "do_sample": sampling,
                    "pad_token_id": tokenizer.pad_token_id}
    if sampling:
        kwargs |= {"temperature": options.temperature, "top_p": options.top_p}
    else:  # not the model's sampling defaults: greedy means greedy
        kwargs |= {"temperature": None, "top_p": None, "top_k": None}
    if options.stop:
        kwargs |= {"stop_strings": list(options.stop), "tokenizer": tokenizer}
    return kwargs


@torch.no_grad()
def generate(lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[list[int]],
             options: GenerationOptions) -> list[str]:
    """The text each prompt (token ids) continues with, cut before any stop string."""
    ids, mask = left_padded(prompts, tokenizer.pad_token_id)
    device = next(lm.parameters()).device
    out = lm.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                      **generate_kwargs(tokenizer, options))
    texts = tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
    return [cut_at_stop(text, options.stop) for text in texts]


def stream(lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: list[int],
           options: GenerationOptions) -> Iterator[str]:
    """The continuation of one prompt, piece by piece as it is generated."""
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    ids = torch.tensor([prompt], device=next(lm.parameters()).device)
    kwargs = generate_kwargs(tokenizer, options) | {"streamer": streamer}
    worker = Thread(target=_generate_no_grad, args=(lm, ids, kwargs), daemon=True)
    worker.start()
    emitted = ""
    for piece in streamer:
        text = cut_at_stop(emitted + piece, options.stop)
        if text[len(emitted):]:
            yield text[len(emitted):]
        emitted = text
        if len(text) < len(emitted + piece):
            break
    worker.join()


def _generate_no_grad(lm: PreTrainedModel, ids: torch.Tensor, kwargs: dict) -> None:
    with torch.no_grad():
        lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)


def cut_at_stop(text: str, stop: list[str]) -> str:
    """``text`` up to the first of the ``stop`` strings."""
    ends = [text.find(s) for s in stop if s and s in text]
    return text[:min(ends)] if ends else text


def normalize(text: str) -> list[str]:
    """SQuAD-style answer words: lower case, no punctuation or articles."""
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised answers are equal."""
    return float(normalize(prediction) == normalize(reference))


def token_f1(prediction: str, reference: str) -> float:
    """F1 of the words the normalised answers share (SQuAD's token F1)."""
    predicted, expected = normalize(prediction), normalize(reference)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not predicted or not expected:
        return float(predicted == expected)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)
