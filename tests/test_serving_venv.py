"""The bundle runs without torch: a fresh venv holding only the serving packages (hash-checked
from requirements.lock) predicts what the PyTorch Predictor predicts, for every built-in task."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from test_export import TASKS, _inputs

import omnitune
from omnitune.export_checks import decision

ROOT = Path(__file__).resolve().parent.parent
PREDICT = """
import json, sys
from omnitune.serving import Bundle
jobs = json.loads(sys.argv[1])
print(json.dumps({kind: Bundle(folder).predict(inputs) for kind, (folder, inputs) in jobs.items()}))
"""


@pytest.fixture(scope="module")
def serving_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the serving requirements only, and omnitune's source on its path (no torch)."""
    folder = tmp_path_factory.mktemp("serving-venv") / "venv"
    requirements = folder.parent / "serving.txt"
    script = ROOT / "scripts" / "serving_requirements.py"
    requirements.write_text(subprocess.run([sys.executable, str(script)], check=True, capture_output=True,
                                           text=True).stdout)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--require-hashes", "--no-deps", "-r", str(requirements)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    site = next((folder / "lib").glob("python3*/site-packages"))
    (site / "omnitune_source.pth").write_text(f"{ROOT / 'sdk'}\n{ROOT / 'plugins'}\n")
    return python


@pytest.mark.slow
def test_bundles_predict_without_torch_like_the_pytorch_predictor(
        serving_python: Path, bundle_of: Callable[[str], Path], request: pytest.FixtureRequest) -> None:
    for module in ("torch", "transformers", "timm", "torchaudio"):
        missing = subprocess.run([str(serving_python), "-c", f"import {module}"], capture_output=True,
                                 text=True)
        assert missing.returncode != 0 and "No module named" in missing.stderr
    jobs = {kind: (str(bundle_of(kind)), _inputs(kind, request)) for kind in TASKS}
    done = subprocess.run([str(serving_python), "-c", PREDICT, json.dumps(jobs)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    for kind, (_, inputs) in jobs.items():
        expected = omnitune.Predictor.load(request.getfixturevalue(f"{kind}_artifact")).predict(inputs)
        assert [decision(p) for p in got[kind]] == [decision(p) for p in expected], kind
        if "probabilities" in expected[0]:
            for a, b in zip(got[kind], expected, strict=True):
                assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-4)
    size = sum(p.stat().st_size for p in serving_python.parent.parent.rglob("*") if p.is_file())
    print(f"serving venv: {size / 2**20:.0f} MiB installed")
