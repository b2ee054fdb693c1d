"""What a user hands `predict` (issue 16, case 9): a device that is not there, bytes that are not
UTF-8, blank text, non-strings, file paths given to a text model, and inputs too big for argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hardening_fixtures import tiny_artifact  # noqa: F401  (a fixture)

from omnitune.errors import ConfigError, DataError
from omnitune.predict import Predictor


def predict_cli(artifact: Path, *args: str | bytes,
                stdin: bytes | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "omnitune.cli", "predict", os.fsencode(artifact),
               *(os.fsencode(a) if isinstance(a, str) else a for a in args)]
    return subprocess.run(command, input=stdin, capture_output=True)


@pytest.fixture(scope="module")
def predictor(tiny_artifact: Path) -> Predictor:  # noqa: F811
    return Predictor.load(tiny_artifact)


@pytest.mark.parametrize(("device", "message"), [
    ("foo", "--device: expected auto, cpu, mps, cuda or cuda:N, got 'foo'"),
    pytest.param("cuda", "--device: 'cuda' was asked for, but CUDA is not available here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
])
def test_the_device_is_checked_first_and_named(tiny_artifact: Path, device: str, message: str) -> None:  # noqa: F811
    done = predict_cli(Path("/nonexistent/artifact"), "a fine film", "--device", device)
    assert done.returncode == ConfigError.exit_code  # refused before the (missing) artifact is read
    assert message in done.stderr.decode() and b"Traceback" not in done.stderr


def test_a_non_utf8_argument_is_refused(tiny_artifact: Path) -> None:  # noqa: F811
    done = predict_cli(tiny_artifact, b"caf\xe9 film")
    assert done.returncode == DataError.exit_code, done.stderr
    assert b"input 1: is not valid UTF-8 text" in done.stderr and b"Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_blank_text_is_refused(predictor: Predictor, value: str) -> None:
    with pytest.raises(DataError, match="input 2: is empty or blank"):
        predictor.predict(["a fine film", value])


@pytest.mark.parametrize("value", [None, 3, b"a fine film", ["a", "list"]])
def test_non_strings_are_refused_by_a_text_model(predictor: Predictor, value: object) -> None:
    with pytest.raises(DataError, match=f"input 1: expected a string of text, got {type(value).__name__}"):
        predictor.predict([value])


@pytest.mark.parametrize("value", ["reviews/film.txt", "film.txt", "__file__"])
def test_a_path_given_to_a_text_model_is_warned_about(predictor: Predictor, value: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "__file__").write_text("an existing file without a suffix")
    with caplog.at_level("WARNING", logger="omnitune"):
        assert predictor.predict([value])[0]["label"] in ("pos", "neg")  # still predicted: a warning
    assert "input 1 looks like a file path" in caplog.text


def test_ordinary_text_gives_no_path_warning(predictor: Predictor, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="omnitune"):
        predictor.predict(["a fine film, really. 10/10"])
    assert "looks like a file path" not in caplog.text


def test_inputs_from_stdin_including_one_of_a_megabyte(tiny_artifact: Path) -> None:  # noqa: F811
    huge = " ".join(["great"] * 200_000)  # 1.2 MB: beyond what one argument may hold
    done = predict_cli(tiny_artifact, "-", "--json", stdin=f"a fine film\n\n{huge}\n".encode())
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [len(line["input"]) for line in lines] == [len("a fine film"), len(huge)]
    assert all(line["label"] in ("pos", "neg") for line in lines)


def test_non_utf8_stdin_names_its_line(tiny_artifact: Path) -> None:  # noqa: F811
    done = predict_cli(tiny_artifact, "-", stdin=b"a fine film\ncaf\xe9\n")
    assert done.returncode == DataError.exit_code
    assert b"standard input, line 2: not UTF-8 text" in done.stderr
