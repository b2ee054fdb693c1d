"""Every built-in task exports to ONNX, proves parity with PyTorch on its held-out split, and the
torch-free bundle predicts what the PyTorch Predictor predicts; int8 is reported; a failed parity
check fails the export."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import omnitune
from omnitune.export import ParityError, Tolerances, export
from omnitune.export_checks import decision
from omnitune.serving import Bundle

TASKS = ["text", "image", "audio", "ctc", "recsys"]


@pytest.mark.parametrize("kind", TASKS)
def test_export_passes_parity_and_bundle_predicts_like_pytorch(
        kind: str, bundle_of: Callable[[str], Path], request: pytest.FixtureRequest) -> None:
    folder = bundle_of(kind)
    manifest = json.loads((folder / "manifest.json").read_text())
    parity = manifest["parity"]
    assert "test split" in parity["inputs"]
    assert parity["max_abs_diff"] <= 1e-4 and parity["identical_predictions"] == 1.0, parity
    assert parity["failures"] == []
    assert manifest["models"]["int8"]["bytes"] > 0 and "identical_to_fp32" in manifest["quantization"]
    assert {"model.onnx", "model.int8.onnx", "manifest.json"} <= {p.name for p in folder.iterdir()}

    artifact = request.getfixturevalue(f"{kind}_artifact")
    predictor = omnitune.Predictor.load(artifact)
    inputs = _inputs(kind, request)
    expected, got = predictor.predict(inputs), Bundle(folder).predict(inputs)
    assert [decision(p) for p in got] == [decision(p) for p in expected]
    assert got[0].keys() == expected[0].keys()


def _inputs(kind: str, request: pytest.FixtureRequest) -> list:
    if kind == "text":
        return ["great fun", "a dull and tedious plot", "the acting was superb really"]
    if kind == "image":
        return sorted(str(p) for p in request.getfixturevalue("image_folder").rglob("*.*"))[::9]
    if kind in ("audio", "ctc"):
        artifact = request.getfixturevalue(f"{kind}_artifact")
        root = artifact.parent.parent
        return sorted(str(p) for p in root.rglob("*") if p.suffix in (".wav", ".flac"))[::5]
    return ["user0", "user7", "someone-new"]


def test_image_int8_is_static_and_text_int8_dynamic(bundle_of: Callable[[str], Path]) -> None:
    image = json.loads((bundle_of("image") / "manifest.json").read_text())
    text = json.loads((bundle_of("text") / "manifest.json").read_text())
    assert image["quantization"]["method"] == "static" and text["quantization"]["method"] == "dynamic"
    assert "accuracy" in image["quantization"] and "change" in image["quantization"]["accuracy"]
    assert text["models"]["int8"]["bytes"] < text["models"]["fp32"]["bytes"]
    assert text["models"]["int8"]["per_channel"] and image["models"]["int8"]["per_channel"]


def test_parity_beyond_tolerance_fails_and_keeps_no_bundle(text_artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(ParityError, match="above the tolerance"):
        export(text_artifact, tmp_path / "bundle", exporter="torchscript",
               tolerances=Tolerances(max_abs_diff=0.0))
    assert not (tmp_path / "bundle").exists()
    rejected = json.loads((tmp_path / "bundle.rejected" / "manifest.json").read_text())
    assert rejected["parity"]["failures"]


def test_export_with_given_inputs_when_the_dataset_is_gone(text_artifact: Path, tmp_path: Path) -> None:
    config = json.loads((text_artifact / "config.json").read_text())
    copy = tmp_path / "artifact"
    shutil.copytree(text_artifact, copy)
    config["dataset"]["train"] = str(tmp_path / "moved-away.csv")
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(omnitune.ConfigError, match="--inputs"):
        export(copy, tmp_path / "b1", exporter="torchscript")
    manifest = export(copy, tmp_path / "b2", exporter="torchscript", inputs=["great", "dull", "fun film"])
    assert manifest["parity"]["inputs"] == "3 inputs given"
    assert manifest["parity"]["identical_predictions"] == 1


def test_a_third_party_task_exports_through_the_hook(example_plugins: object, tmp_path: Path) -> None:
    from conftest import tabular_rows, tabular_run, write_csv

    data = write_csv(tmp_path / "table.csv", tabular_rows(300))
    artifact = omnitune.finetune(tabular_run(data, tmp_path / "run", epochs=3)).artifact
    manifest = export(artifact, tmp_path / "bundle", quantize="int8", exporter="dynamo")
    assert manifest["processor"] == "acme_tabular.serving:TabularProcessor"
    assert manifest["parity"]["failures"] == [] and manifest["parity"]["identical_predictions"] == 1.0
    rows = [{"income": 90000, "age": 70, "noise": 0.1}, "20000,20,0", [50000, 49, 1]]
    expected = omnitune.Predictor.load(artifact).predict(rows)
    assert [p["label"] for p in Bundle(tmp_path / "bundle").predict(rows)] == [p["label"] for p in expected]
