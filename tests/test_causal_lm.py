"""The causal-LM task on a tiny random Llama: answer-only labels, token-weighted accumulation,
fit -> artifact -> generation, LoRA merged into a plain transformers folder, bad rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lm_fixtures import CAPITALS, lm_run, save_tiny_llama, write_capitals

import omnitune
from omnitune.errors import DataError


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def tokenizer(tiny_llama: Path):  # noqa: ANN201
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def chat(*turns: tuple[str, str]):  # noqa: ANN201
    from omnitune_text.lm_datasets import ChatExample

    return ChatExample(tuple(turns))


def encoder(tokenizer, **options):  # noqa: ANN001, ANN201
    from omnitune_text.chat_encoding import ChatEncoder

    settings = {"max_length": 128, "train_on_prompt": False, "system_prompt": None} | options
    return ChatEncoder(tokenizer, **settings)


def labelled_text(tokenizer, encoded) -> str:  # noqa: ANN001
    from omnitune_text.chat_encoding import IGNORE

    pairs = zip(encoded.ids, encoded.labels, strict=True)
    return tokenizer.decode([token for token, label in pairs if label != IGNORE])


def test_loss_only_on_answers_unless_train_on_prompt(tokenizer) -> None:  # noqa: ANN001
    example = chat(("user", "capital of peru?"), ("assistant", "lima"))
    encoded = encoder(tokenizer).encode(example)
    whole = tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in example.messages],
                                          tokenize=False)
    assert encoded.ids == tokenizer(whole, add_special_tokens=False)["input_ids"]
    assert labelled_text(tokenizer, encoded) == "lima<|im_end|>\n"
    assert encoder(tokenizer, train_on_prompt=True).encode(example).labels == encoded.ids

    two_turns = chat(("user", "hi"), ("assistant", "hello"), ("user", "bye"), ("assistant", "ciao"))
    answers = labelled_text(tokenizer, encoder(tokenizer).encode(two_turns))
    assert answers == "hello<|im_end|>\nciao<|im_end|>\n"
    with_system = encoder(tokenizer, system_prompt="be brief").encode(example)
    assert tokenizer.decode(with_system.ids).startswith("<|im_start|>system\nbe brief<|im_end|>")
    assert labelled_text(tokenizer, with_system) == "lima<|im_end|>\n"


def test_truncation_is_flagged(tokenizer) -> None:  # noqa: ANN001
    cut = encoder(tokenizer, max_length=12).encode(chat(("user", "capital of peru?"), ("assistant", "lima")))
    assert (len(cut.ids), cut.truncated) == (12, True)
    plain = encoder(tokenizer, max_length=40).encode(chat(("user", "x"), ("assistant", "y")))
    assert not plain.truncated


def build_task(model: Path, **task_options: object):  # noqa: ANN201
    from omnitune_text.causal_lm import CausalLM
    from omnitune_text.lm_backbone import causal_lm_backbone
    from omnitune_text.lm_options import CausalLMBackboneConfig, CausalLMConfig

    backbone = causal_lm_backbone(CausalLMBackboneConfig(model=str(model)))
    return CausalLM(CausalLMConfig(**task_options), backbone=backbone, head=None, data_info={})


def test_batch_loss_is_the_mean_over_answer_tokens(tiny_llama: Path) -> None:
    task = build_task(tiny_llama)
    examples = [chat(("user", "capital of peru?"), ("assistant", "lima")),
                chat(("user", "a long question about nothing at all"), ("assistant", "a much longer answer"))]
    batch = task.collate(examples)
    answer_tokens = [len(task.encoder.encode(e).ids) - len(task.encoder.prompt_ids(e.messages[:-1]))
                     for e in examples]
    assert task.num_items(batch) == sum(answer_tokens)
    logits = task.model(batch["input_ids"], batch["attention_mask"])
    by_hand = []
    for row, example in enumerate(examples):
        start = len(task.encoder.prompt_ids(example.messages[:-1]))
        for position in range(start, start + answer_tokens[row]):
            by_hand.append(F.cross_entropy(logits[row, position - 1], batch["input_ids"][row, position]))
    expected = torch.stack(by_hand).mean()
    assert torch.allclose(task.training_step(task.model, batch).loss, expected, atol=1e-6)


@pytest.mark.parametrize("train_on_prompt", [False, True])
def test_packed_batch_loss_equals_the_unpacked_examples_loss(tiny_llama: Path, train_on_prompt: bool) -> None:
    examples = [chat(("user", f"capital of {country}?"), ("assistant", city * (1 + i % 3)))
                for i, (country, city) in enumerate(CAPITALS.items())]
    packed_task = build_task(tiny_llama, packing=True, max_length=128, train_on_prompt=train_on_prompt)
    plain_task = build_task(tiny_llama, max_length=128, train_on_prompt=train_on_prompt)
    packed, plain = packed_task.collate(examples), plain_task.collate(examples)
    assert len(packed["input_ids"]) < len(examples) and packed["input_ids"].shape[1] <= 128
    assert packed_task.num_items(packed) == plain_task.num_items(plain)
    assert packed_task.num_examples(packed) == plain_task.num_examples(plain) == len(examples)
    with torch.no_grad():
        packed_out = packed_task.training_step(packed_task.model, packed)
        plain_out = plain_task.training_step(packed_task.model, plain)
        crossing = packed | {"attention_mask": (packed["example"] >= 0).long()}
        crossing_out = packed_task.training_step(packed_task.model, crossing)
    assert torch.allclose(packed_out.loss, plain_out.loss, atol=1e-5)
    assert torch.allclose(packed_out.outputs["loss_sum"], plain_out.outputs["loss_sum"], atol=1e-4)
    assert torch.equal(packed_out.outputs["tokens"], plain_out.outputs["tokens"])
    # with one causal mask a row, a row's later examples see the earlier ones: their losses change
    assert not torch.allclose(crossing_out.outputs["loss_sum"], plain_out.outputs["loss_sum"], atol=1e-2)


def varied_answers(path: Path) -> Path:
    rows = [{"prompt": f"q{i}", "response": "z" * length, "pair": str(i)}
            for i, length in enumerate([1, 30, 2, 17, 25, 3, 9, 14])]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def weights_after(run: dict, plugins: omnitune.Plugins) -> dict[str, torch.Tensor]:
    result = omnitune.finetune(run, plugins=plugins)
    return {k: v.detach().clone() for k, v in result.task.model.state_dict().items()}


def test_accumulation_weights_micro_batches_by_answer_tokens(
    tiny_llama: Path, tmp_path: Path, plugins: omnitune.Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = varied_answers(tmp_path / "varied.jsonl")

    def run(name: str, batch_size: int, grad_accum: int) -> dict:
        config = lm_run(tiny_llama, data, tmp_path / name, max_steps=2, batch_size=batch_size,
                        grad_accum=grad_accum, lr=1e-2, schedule="constant")
        config["dataset"] |= {"validation_fraction": 0.0}
        return config

    result = omnitune.finetune(run("large", 4, 1), plugins=plugins)  # 2 steps of 4 examples
    assert result.metrics["train_samples_per_s"] * result.metrics["train_runtime_s"] == pytest.approx(8)
    large = {k: v.detach().clone() for k, v in result.task.model.state_dict().items()}
    accumulated = weights_after(run("accumulated", 1, 4), plugins)
    differences = {k: (large[k] - accumulated[k]).abs().max().item() for k in large}
    assert max(differences.values()) < 1e-5, differences

    from omnitune_text.causal_lm import CausalLM

    monkeypatch.setattr(CausalLM, "num_items", lambda self, batch: len(batch["labels"]))
    by_samples = weights_after(run("by-samples", 1, 4), plugins)
    assert max((large[k] - by_samples[k]).abs().max().item() for k in large) > 1e-4


def test_window_without_answer_tokens_is_skipped_not_divided_by_zero(
    tiny_llama: Path, tmp_path: Path, plugins: omnitune.Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [{"prompt": "q", "response": "abc", "pair": "a"},  # 9 answer tokens (with <|im_end|>\n)
            {"prompt": "x" * 80, "response": "cut", "pair": "b"}]  # answer beyond max_length=64
    data = tmp_path / "cut.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    def run(name: str, source: Path) -> dict:
        config = lm_run(tiny_llama, source, tmp_path / name, max_steps=2, batch_size=1, lr=1e-2,
                        schedule="constant")
        config["dataset"] |= {"validation_fraction": 0.0}
        return config

    mixed = omnitune.finetune(run("mixed", data), plugins=plugins)
    assert mixed.metrics["steps"] == 2 and "hold no items the loss counts" in caplog.text
    only_answered = tmp_path / "answered.jsonl"
    only_answered.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    alone = weights_after(run("alone", only_answered), plugins)
    trained = mixed.task.model.state_dict()
    assert all(torch.equal(trained[k], alone[k]) for k in alone)  # the empty window changed nothing

    only_cut = tmp_path / "only-cut.jsonl"
    only_cut.write_text(json.dumps(rows[1]) + "\n", encoding="utf-8")
    with pytest.raises(omnitune.errors.TrainingError, match="epoch 0 applied no optimizer step"):
        omnitune.finetune(run("never", only_cut), plugins=plugins)


def test_fit_artifact_generate(tiny_llama: Path, tmp_path: Path, plugins: omnitune.Plugins) -> None:
    data = write_capitals(tmp_path / "capitals.jsonl")
    run = lm_run(tiny_llama, data, tmp_path / "run", max_steps=150, lr=1e-2, eval_every=150)
    run["dataset"] |= {"validation": str(data), "validation_fraction": 0.0}
    run["task"] |= {"eval_generation": True}
    result = omnitune.finetune(run, plugins=plugins)

    assert result.metrics["eval_exact_match"] >= 0.75, result.metrics
    assert result.metrics["eval_perplexity"] == pytest.approx(2.718281828 ** result.metrics["eval_loss"])
    assert result.metrics["eval_truncated_fraction"] == 0.0
    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    prompts = [f"capital of {country}?" for country in CAPITALS]
    answers = [p["generated_text"] for p in predictor.predict(prompts)]
    assert sum(a == city for a, city in zip(answers, CAPITALS.values(), strict=True)) >= 6, answers
    as_messages = predictor.predict([[{"role": "user", "content": prompts[0]}]])
    assert as_messages[0]["generated_text"] == answers[0]

    stopped = omnitune.Predictor.load(result.artifact, plugins=plugins, overrides=['task.stop=["r"]'])
    assert stopped.predict("capital of france?")[0]["generated_text"] == answers[0].split("r")[0]
    streamed = "".join(predictor.task.stream_chat([{"role": "user", "content": prompts[1]}]))
    assert streamed == answers[1]


def test_lora_merged_export_loads_in_plain_transformers(
    tiny_llama: Path, tmp_path: Path, plugins: omnitune.Plugins
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = lm_run(tiny_llama, write_capitals(tmp_path / "capitals.jsonl"), tmp_path / "run", max_steps=3,
                 lr=1e-2, strategy="lora", lora={"rank": 4, "alpha": 8})
    artifact = omnitune.finetune(run, plugins=plugins).artifact
    merged = omnitune.Predictor.load(artifact, merge_lora=True, plugins=plugins)
    folder = merged.task.save_pretrained(tmp_path / "hf")

    plain = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = AutoTokenizer.from_pretrained(folder)("capital of peru?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        exported = plain(ids).logits
        ours = merged.task.model.backbone.lm(ids).logits
        adapters = omnitune.Predictor.load(artifact, plugins=plugins).task.model.backbone.lm(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_llama)(ids).logits
    assert torch.equal(exported, ours)
    assert torch.allclose(exported, adapters, atol=1e-5)
    assert not torch.allclose(exported, base, atol=1e-3)  # the adapters did change the model
    assert AutoTokenizer.from_pretrained(folder).chat_template
    assert not any("lora" in name for name in plain.state_dict())


def test_cli_predict_chat_and_export(tiny_llama: Path, tmp_path: Path, plugins: omnitune.Plugins) -> None:
    run = lm_run(tiny_llama, write_capitals(tmp_path / "capitals.jsonl"), tmp_path / "run", max_steps=2)
    artifact = omnitune.finetune(run, plugins=plugins).artifact
    expected = omnitune.Predictor.load(artifact, plugins=plugins).predict(["capital of peru?"])
    short = omnitune.Predictor.load(artifact, plugins=plugins, overrides=["task.max_new_tokens=5"])
    cli = [sys.executable, "-m", "omnitune.cli"]
    predicted = subprocess.run([*cli, "predict", str(artifact), "capital of peru?", "--json"],
                               capture_output=True, text=True, check=True)
    assert json.loads(predicted.stdout.splitlines()[-1])["generated_text"] == expected[0]["generated_text"]
    talked = subprocess.run([*cli, "chat", str(artifact), "--set", "task.max_new_tokens=5"],
                            input="capital of peru?\nhello\n", capture_output=True, text=True, check=True)
    assert talked.stdout.startswith(short.predict("capital of peru?")[0]["generated_text"] + "\n")
    exported = subprocess.run([*cli, "export-hf", str(artifact), str(tmp_path / "hf")],
                              capture_output=True, text=True, check=True)
    assert (tmp_path / "hf" / "model.safetensors").is_file(), exported.stdout


def test_bad_rows_name_file_row_and_field(tmp_path: Path) -> None:
    from omnitune_text.lm_datasets import chat_file
    from omnitune_text.lm_options import ChatFileConfig

    data = tmp_path / "chats.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    bad = {"messages": [{"role": "user", "content": "hi"}]}
    data.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"chats.jsonl, row 2: field 'messages': the last message must be"):
        chat_file(ChatFileConfig(train=str(data), format="messages"))
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"odd.jsonl, row 1: field 'messages', message 0: expected"):
        chat_file(ChatFileConfig(train=str(odd), format="messages"))


def test_parquet_and_plain_text(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from omnitune_text.lm_datasets import chat_file
    from omnitune_text.lm_options import ChatFileConfig

    pq.write_table(pa.table({"prompt": ["a?", "b?"], "response": ["1", "2"]}), tmp_path / "pairs.parquet")
    splits = chat_file(ChatFileConfig(train=str(tmp_path / "pairs.parquet"), validation_fraction=0,
                                      test_fraction=0))
    assert sorted(e.reference for e in splits.train) == ["1", "2"]
    (tmp_path / "docs.jsonl").write_text('{"text": "once upon a time"}\n', encoding="utf-8")
    text = chat_file(ChatFileConfig(train=str(tmp_path / "docs.jsonl"), format="text", validation_fraction=0,
                                    test_fraction=0))
    assert text.train[0].text == "once upon a time" and not text.train[0].messages


def test_qlora_without_cuda_is_refused_naming_the_setting(
    tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omnitune_text.lm_backbone import causal_lm_backbone
    from omnitune_text.lm_options import CausalLMBackboneConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(omnitune.ConfigError, match=r"backbone.quantize=4bit \(QLoRA\) needs a CUDA GPU"):
        causal_lm_backbone(CausalLMBackboneConfig(model=str(tiny_llama), quantize="4bit"))


@pytest.mark.gpu
def test_qlora_trains_adapters_over_a_4bit_base_on_cuda(
    tiny_llama: Path, tmp_path: Path, plugins: omnitune.Plugins
) -> None:
    pytest.importorskip("bitsandbytes")
    from bitsandbytes.nn import Linear4bit

    run = lm_run(tiny_llama, write_capitals(tmp_path / "capitals.jsonl"), tmp_path / "run", max_steps=40,
                 lr=1e-2, eval_every=40, strategy="lora", lora={"rank": 8, "alpha": 16}, device="cuda",
                 precision="bf16")
    run["backbone"] |= {"quantize": "4bit"}
    run["dataset"] |= {"validation_fraction": 0.0, "validation": str(tmp_path / "capitals.jsonl")}
    result = omnitune.finetune(run, plugins=plugins)
    lm = result.task.model.backbone.lm
    assert any(isinstance(module, Linear4bit) for module in lm.modules())
    trained = {name for name, p in lm.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in name for name in trained)
    assert result.metrics["eval_loss"] < 2.0, result.metrics  # the random model starts near ln(259) = 5.6
