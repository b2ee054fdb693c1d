"""Artifacts and checkpoints that were tampered with, cut short, or written under a umask:
omnitune refuses or recovers with a named error and a documented exit code (issue 16, cases 1, 6, 7)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hardening_fixtures import tiny_artifact  # noqa: F401  (a fixture)

from omnitune.errors import CheckpointError, PluginError
from omnitune.predict import Predictor

PAYLOAD = '''
from pathlib import Path
Path(MARKER).write_text("the artifact ran code")
from transformers import BertConfig

class EvilConfig(BertConfig):
    model_type = "evil-bert"
'''


def tamper(artifact: Path, into: Path) -> Path:
    """A copy of ``artifact`` whose config asks for remote code and whose backbone/config.json
    maps AutoConfig to a module placed in its own backbone/ folder."""
    copy = Path(shutil.copytree(artifact, into))
    config = json.loads((copy / "config.json").read_text())
    config["backbone"]["trust_remote_code"] = True
    (copy / "config.json").write_text(json.dumps(config))
    backbone_config = json.loads((copy / "backbone" / "config.json").read_text())
    backbone_config["auto_map"] = {"AutoConfig": "evil.EvilConfig"}
    (copy / "backbone" / "config.json").write_text(json.dumps(backbone_config))
    (copy / "backbone" / "evil.py").write_text(PAYLOAD.replace("MARKER", repr(str(into.parent / "PWNED"))))
    return copy


def test_tampered_artifact_cannot_turn_on_remote_code(tiny_artifact: Path, tmp_path: Path) -> None:  # noqa: F811
    evil = tamper(tiny_artifact, tmp_path / "evil")
    with pytest.raises(CheckpointError, match="--trust-remote-code"):
        Predictor.load(evil)
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(evil), "a fine film"],
                          capture_output=True, text=True)
    assert done.returncode == CheckpointError.exit_code, done.stderr
    assert "backbone.trust_remote_code" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "PWNED").exists(), "the artifact's module ran"


def test_remote_code_runs_only_when_the_loader_allows_it(tiny_artifact: Path, tmp_path: Path) -> None:  # noqa: F811
    evil = tamper(tiny_artifact, tmp_path / "evil")
    with pytest.raises(PluginError):  # the module is not a model omnitune can use, but it ran:
        Predictor.load(evil, trust_remote_code=True)
    assert (tmp_path / "PWNED").exists()  # the explicit opt-in is obeyed


def test_untampered_artifact_still_loads(tiny_artifact: Path) -> None:  # noqa: F811
    assert Predictor.load(tiny_artifact).predict("a fine film")[0]["label"] in ("pos", "neg")
