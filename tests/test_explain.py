"""Integrated Gradients through Captum: the attributions add up to the change of the explained
logit (completeness), and the one word that decides the label gets the largest attribution."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from omnitune.cli import main
from omnitune.errors import ConfigError
from omnitune.explain import explain, terminal_text
from omnitune.predict import Predictor

from conftest import FILLER, NEGATIVE, POSITIVE


@pytest.fixture(scope="module")
def predictor(trained_text_run: Path) -> Predictor:
    return Predictor.load(trained_text_run / "artifact")


def sentences(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """(text, sentiment word): four filler words and one sentiment word, shuffled."""
    rng = random.Random(seed)
    found = []
    for index in range(count):
        word = rng.choice(POSITIVE if index % 2 else NEGATIVE)
        words = [*rng.sample(FILLER, 4), word]
        rng.shuffle(words)
        found.append((" ".join(words), word))
    return found


def test_attributions_are_complete(predictor: Predictor) -> None:
    model, tokenizer = predictor.task.model, predictor.task.tokenizer
    for text, _ in sentences(4):
        (e,) = explain(predictor, [text], steps=128)
        ids = tokenizer([text], return_tensors="pt")
        baseline = ids["input_ids"].clone()
        baseline[0, 1:-1] = tokenizer.pad_token_id  # [CLS] pad ... pad [SEP]
        index = predictor.task.labels.index(e.label)
        with torch.no_grad():
            score = model(ids["input_ids"], ids["attention_mask"])[0, index].item()
            base = model(baseline, ids["attention_mask"])[0, index].item()
        assert (e.score, e.baseline_score) == (pytest.approx(score, abs=1e-5), pytest.approx(base, abs=1e-5))
        assert e.attributions.sum().item() == pytest.approx(score - base, abs=1e-3 + 0.01 * abs(score - base))
        assert abs(e.delta) < 1e-3


def test_the_deciding_word_gets_the_largest_attribution(predictor: Predictor) -> None:
    """The baseline (padding) already scores "pos": this model reads a review as positive unless a
    negative word turns it, so in a negative review that one word decides the label."""
    cases = [(text, word) for text, word in sentences(12) if word in NEGATIVE]
    explanations = explain(predictor, [text for text, _ in cases])
    for (text, word), e in zip(cases, explanations, strict=True):
        assert e.label == "neg" and e.baseline_score < 0 < e.score, text  # the word flips it
        top = e.tokens[int(e.attributions.argmax())]
        assert top == word, (text, list(zip(e.tokens, e.attributions.tolist(), strict=True)))
        others = [v for t, v in zip(e.tokens, e.attributions.tolist(), strict=True) if t != word]
        assert e.attributions.max().item() > 2 * max(abs(v) for v in others)


def test_explaining_another_label_flips_the_sign(predictor: Predictor) -> None:
    (towards,) = explain(predictor, ["the film was superb"], target="pos")
    (away,) = explain(predictor, ["the film was superb"], target="neg")
    position = towards.tokens.index("superb")
    assert towards.attributions[position] > 0 > away.attributions[position]
    assert "\x1b[48;5;" in terminal_text(towards)
    with pytest.raises(ConfigError, match="'meh' is not a label of this model"):
        explain(predictor, ["x"], target="meh")


def test_explain_command_prints_json_and_writes_html(trained_text_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explain", str(trained_text_run / "artifact"), "plot was dreadful", "--json",
                 "--output-dir", str(tmp_path)])
    assert code == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["label"] == "neg" and record["tokens"][1:-1] == ["plot", "was", "dreadful"]
    assert len(record["attributions"]) == len(record["tokens"])
    page = (tmp_path / "explanation.html").read_text()
    assert page.count("<span title=") == 5 and "dreadful</span>" in page
