"""A tiny random Llama with a byte-level tokenizer and a ChatML template, and chat data for it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\\n' }}{% endif %}")
CAPITALS = {"france": "paris", "italy": "rome", "spain": "madrid", "peru": "lima", "japan": "tokyo",
            "egypt": "cairo", "kenya": "nairobi", "chile": "santiago"}


def save_tiny_llama(folder: Path, *, tie: bool = False) -> Path:
    """A 2-layer Llama (hidden 48) over bytes, saved with its tokenizer like a hub model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate(SPECIALS + alphabet)}
    words = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    words.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    words.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", additional_special_tokens=SPECIALS[1:])
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=None, eos_token_id=vocab["<|im_end|>"],
                         pad_token_id=vocab["<|endoftext|>"], tie_word_embeddings=tie)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def write_capitals(path: Path, repeats: int = 4) -> Path:
    """Instruction rows: 'capital of X?' -> 'Y', each pair ``repeats`` times (one group per pair)."""
    rows = [{"prompt": f"capital of {country}?", "response": city, "pair": country}
            for _ in range(repeats) for country, city in CAPITALS.items()]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def lm_run(model: Path, data: Path, output_dir: Path, **train: object) -> dict:
    """A small causal-lm run config on the tiny Llama."""
    return {
        "task": {"name": "causal-lm", "max_length": 64, "max_new_tokens": 12},
        "backbone": {"name": "transformers-causal-lm", "model": str(model)},
        "dataset": {"name": "chat-file", "train": str(data), "group_column": "pair",
                    "validation_fraction": 0.25, "test_fraction": 0.0},
        "train": {"batch_size": 8, "lr": 3e-3, "warmup_ratio": 0.0, "device": "cpu", "precision": "fp32",
                  "progress": False, **train},
        "output_dir": str(output_dir),
    }
