"""The HTTP server: FastAPI app driven with its test client (bundle and PyTorch artifact alike),
the dynamic batcher, and a real uvicorn process on 127.0.0.1 with graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import omnitune
from omnitune.errors import DataError
from omnitune.serving.app import ServeSettings, create_app
from omnitune.serving.batcher import Batcher
from omnitune.serving.models import load_model

TEXTS = ["great fun", "a dull and tedious plot", "the acting was superb really"]


def client(path: Path, **settings: object) -> TestClient:
    options = ServeSettings(path=str(path), **settings)
    return TestClient(create_app(load_model(path, options.variant), options))


@pytest.mark.parametrize("source", ["bundle", "artifact"])
def test_predict_health_metadata_for_bundle_and_artifact(
        source: str, text_artifact: Path, bundle_of: Callable[[str], Path]) -> None:
    path = bundle_of("text") if source == "bundle" else text_artifact
    expected = omnitune.Predictor.load(text_artifact).predict(TEXTS)
    with client(path) as http:
        assert http.get("/health").json() == {"status": "ok", "in_flight": 0}
        metadata = http.get("/metadata").json()
        assert metadata["task"] == "text-classification" and metadata["labels"] == ["neg", "pos"]
        assert metadata["format"] == ("onnx" if source == "bundle" else "pytorch")
        got = http.post("/predict", json={"inputs": TEXTS}).json()["predictions"]
        assert [p["label"] for p in got] == [p["label"] for p in expected]
        assert got[0]["probabilities"] == pytest.approx(expected[0]["probabilities"], abs=1e-5)
        assert "/predict" in http.get("/openapi.json").json()["paths"]


def test_bad_requests_get_4xx_naming_the_field(bundle_of: Callable[[str], Path]) -> None:
    with client(bundle_of("text"), max_inputs=4, max_body_bytes=2048) as http:
        missing = http.post("/predict", json={"texts": ["a"]})
        assert missing.status_code == 422 and "inputs" in json.dumps(missing.json())
        empty = http.post("/predict", json={"inputs": []})
        assert empty.status_code == 422 and "inputs" in json.dumps(empty.json())
        wrong_type = http.post("/predict", json={"inputs": ["fine", 3]})
        assert wrong_type.status_code == 422 and "inputs[1]" in wrong_type.json()["detail"]
        too_many = http.post("/predict", json={"inputs": ["a"] * 5})
        assert too_many.status_code == 413 and "limit of 4" in too_many.json()["detail"]
        too_big = http.post("/predict", json={"inputs": ["x" * 3000]})
        assert too_big.status_code == 413
        assert http.post("/predict", content=b"{not json", headers={"content-type": "application/json"}
                         ).status_code == 422


def test_images_come_as_base64_and_paths_are_refused(bundle_of: Callable[[str], Path], image_folder: Path,
                                                     image_artifact: Path) -> None:
    picture = sorted(image_folder.rglob("*.png"))[0]
    expected = omnitune.Predictor.load(image_artifact).predict([str(picture)])[0]["label"]
    with client(bundle_of("image")) as http:
        body = {"inputs": [{"base64": base64.b64encode(picture.read_bytes()).decode()}]}
        assert http.post("/predict", json=body).json()["predictions"][0]["label"] == expected
        path = http.post("/predict", json={"inputs": [str(picture)]})
        assert path.status_code == 422 and "base64" in path.json()["detail"]
        junk = base64.b64encode(b"not an image").decode()
        broken = http.post("/predict", json={"inputs": [{"base64": junk}]})
        assert broken.status_code == 422 and "inputs[0]" in broken.json()["detail"]
        assert http.post("/predict", json={"inputs": [{"base64": "%%%"}]}).status_code == 422


def test_audio_comes_as_multipart_uploads_and_text_models_refuse_files(
        bundle_of: Callable[[str], Path], tone_folder: Path, audio_artifact: Path) -> None:
    clips = sorted(tone_folder.rglob("*.wav"))[:3]
    expected = [p["label"] for p in omnitune.Predictor.load(audio_artifact).predict([str(c) for c in clips])]
    with client(bundle_of("audio")) as http:
        files = [("inputs", (clip.name, clip.read_bytes(), "audio/wav")) for clip in clips]
        answer = http.post("/predict", files=files)
        assert [p["label"] for p in answer.json()["predictions"]] == expected
        text_value = http.post("/predict", data={"inputs": "a path"}, files=files[:1])
        assert text_value.status_code == 422 and "inputs[0]: expected a file upload" in text_value.text
        other_field = http.post("/predict", files=[("audio", ("a.wav", b"RIFF", "audio/wav"))])
        assert other_field.status_code == 422 and "audio" in other_field.json()["detail"]
    with client(bundle_of("text"), max_inputs=2) as http:
        upload = http.post("/predict", files=[("inputs", ("a.txt", b"great fun", "text/plain"))])
        assert upload.status_code == 422 and "inputs[0]: this model takes text values" in upload.text
        texts = http.post("/predict", data={"inputs": TEXTS[:2]}, files=[])
        assert [p["label"] for p in texts.json()["predictions"]] == [
            p["label"] for p in http.post("/predict", json={"inputs": TEXTS[:2]}).json()["predictions"]]
        too_many = http.post("/predict", data={"inputs": TEXTS}, files=[])
        assert too_many.status_code == 413 and "limit of 2" in too_many.json()["detail"]


def test_batcher_gathers_concurrent_requests_and_isolates_a_bad_one() -> None:
    calls: list[list[str]] = []

    def predict(inputs: list[str]) -> list[dict]:
        calls.append(list(inputs))
        if "bad" in inputs:
            raise DataError("inputs[0]: bad")
        return [{"echo": item} for item in inputs]

    async def scenario() -> list:
        batcher = Batcher(predict, max_batch_size=8, max_wait_s=0.2)
        worker = asyncio.create_task(batcher.run())
        requests = [batcher.submit([f"r{i}"]) for i in range(5)] + [batcher.submit(["bad"])]
        results = await asyncio.gather(*requests, return_exceptions=True)
        worker.cancel()
        return results

    results = asyncio.run(scenario())
    assert [r[0]["echo"] for r in results[:5]] == [f"r{i}" for i in range(5)]
    assert isinstance(results[5], DataError)
    assert len(calls[0]) == 6  # one gathered batch, then each request alone
    assert all(len(call) == 1 for call in calls[1:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_real_server_batches_and_finishes_in_flight_requests_on_sigterm(
        bundle_of: Callable[[str], Path]) -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "omnitune.cli", "serve", str(bundle_of("text")),
                               "--port", str(port), "--max-wait-ms", "15000"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        answers: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda i=i: answers.append(
            httpx.post(f"{url}/predict", json={"inputs": [TEXTS[i % 3]]}, timeout=30))) for i in range(6)]
        for thread in threads:
            thread.start()
        _wait_for(lambda: httpx.get(f"{url}/health", timeout=5).json()["in_flight"] == 6)
        server.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join()
        assert [r.status_code for r in answers] == [200] * 6
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
    finally:
        if server.poll() is None:
            server.kill()


def test_real_server_takes_multipart_image_uploads(bundle_of: Callable[[str], Path], image_folder: Path,
                                                   image_artifact: Path) -> None:
    pictures = sorted(image_folder.rglob("*.png"))[::15]
    predictor = omnitune.Predictor.load(image_artifact)
    expected = [p["label"] for p in predictor.predict([str(p) for p in pictures])]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "omnitune.cli", "serve", str(bundle_of("image")),
                               "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        files = [("inputs", (p.name, p.read_bytes(), "image/png")) for p in pictures]
        answer = httpx.post(f"{url}/predict", files=files, timeout=60)
        assert [p["label"] for p in answer.json()["predictions"]] == expected
        junk = ("inputs", ("x.png", b"not a png", "image/png"))
        broken = httpx.post(f"{url}/predict", files=[files[0], junk], timeout=60)
        assert broken.status_code == 422 and "inputs[1]" in broken.json()["detail"]
        none = httpx.post(f"{url}/predict", data={"other": "x"}, files=[("other", ("a", b"", "image/png"))])
        assert none.status_code == 422 and "other" in none.json()["detail"]
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Poll until ``condition()`` holds (the six requests wait in the batcher, max wait 15 s)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _wait_healthy(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited: {server.stdout.read() if server.stdout else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError("server did not become healthy")

