"""``POST /generate`` on a real ``omnitune serve`` process on 127.0.0.1 with a tiny Llama artifact:
the whole answer, the same answer streamed as server-sent events, options, and 422s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from lm_fixtures import lm_run, save_tiny_llama, write_capitals
from test_serve import _free_port

import omnitune
from omnitune.serving.app import ServeSettings, create_app


@pytest.fixture(scope="module")
def lm_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generate")
    run = lm_run(save_tiny_llama(root / "tiny"), write_capitals(root / "capitals.jsonl"), root / "run",
                 max_steps=2)
    return omnitune.finetune(run).artifact


@pytest.fixture(scope="module")
def server(lm_artifact: Path):  # noqa: ANN201
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "omnitune.cli", "serve", str(lm_artifact),
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 600) -> None:
    """Until ``GET /health`` answers (importing torch and transformers takes minutes on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    raise AssertionError(f"server did not become healthy in {seconds} s")


def sse_pieces(url: str, body: dict) -> list[str]:
    """The text pieces of a streamed answer, checking the event framing on the way."""
    pieces, done = [], False
    with httpx.stream("POST", f"{url}/generate", json=body | {"stream": True}, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                continue
            assert line.startswith("data: ") and not done
            if line == "data: [DONE]":
                done = True
            else:
                pieces.append(json.loads(line.removeprefix("data: "))["text"])
    assert done
    return pieces


def test_generate_whole_and_streamed_on_a_real_server(server: str, lm_artifact: Path) -> None:
    expected = omnitune.Predictor.load(lm_artifact).predict(["capital of peru?"])[0]["generated_text"]
    assert expected  # twelve greedy tokens of a random model: some text
    whole = httpx.post(f"{server}/generate", json={"prompt": "capital of peru?"}, timeout=60)
    assert whole.status_code == 200 and whole.json() == {"generated_text": expected}
    pieces = sse_pieces(server, {"prompt": [{"role": "user", "content": "capital of peru?"}]})
    assert "".join(pieces) == expected  # pieces as transformers' TextIteratorStreamer cuts them (words)

    short = httpx.post(f"{server}/generate", json={"prompt": "capital of peru?", "max_new_tokens": 3},
                       timeout=60).json()["generated_text"]
    assert short and expected.startswith(short) and len(short) < len(expected)
    stop = expected[len(expected) // 2]
    stopped = httpx.post(f"{server}/generate", json={"prompt": "capital of peru?", "stop": [stop]},
                         timeout=60).json()["generated_text"]
    assert stopped == expected.split(stop)[0]

    bad = httpx.post(f"{server}/generate", json={"prompt": "x", "temperature": -1}, timeout=10)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "temperature"]
    odd = httpx.post(f"{server}/generate", json={"prompt": [{"role": "robot", "content": "x"}]}, timeout=10)
    assert odd.status_code == 422 and any("role" in error["loc"] for error in odd.json()["detail"])


def test_generate_on_a_model_that_does_not_generate_is_422() -> None:
    class Classifier:
        file_inputs = False

        def predict(self, inputs: list) -> list[dict]:
            return [{"label": "x"} for _ in inputs]

        def metadata(self) -> dict:
            return {"task": "text-classification"}

    app = create_app(Classifier(), ServeSettings(path="unused"))
    with TestClient(app) as client:
        answer = client.post("/generate", json={"prompt": "hello"})
    assert answer.status_code == 422 and "does not generate text" in answer.json()["detail"]
