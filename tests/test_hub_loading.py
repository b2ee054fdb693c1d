"""Loading a backbone by Hugging Face hub id (``network``: skipped when the hub is unreachable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import omnitune

from conftest import tiny_run

TINY_HUB_BERT = "hf-internal-testing/tiny-random-BertModel"


@pytest.mark.network
def test_transformers_backbone_from_a_hub_id_gives_a_self_contained_artifact(
    tiny_bert: Path, sentiment_csv: Path, tmp_path: Path, plugins: omnitune.Plugins
) -> None:
    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", max_steps=2)
    run["backbone"]["model"] = TINY_HUB_BERT
    artifact = omnitune.finetune(run, plugins=plugins).artifact
    (expected,) = omnitune.Predictor.load(artifact, plugins=plugins).predict(["quite superb"])

    # With the hub switched off the artifact still predicts, the same: nothing is fetched again.
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(artifact), "quite superb",
                           "--json"], capture_output=True, text=True, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    offline = json.loads(done.stdout)
    assert offline["label"] == expected["label"]
    assert offline["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)
