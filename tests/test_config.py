"""Config validation: every error names the field and what was expected, before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import omnitune
from omnitune.api import compose_config
from omnitune.config import load_config, validate_components
from omnitune.errors import ConfigError

BASE = {"task": "text-classification", "backbone": "minilm-l6", "dataset": "rotten-tomatoes"}


def test_default_config_validates_against_the_registry(plugins: omnitune.Plugins) -> None:
    config = load_config()
    options = validate_components(config, plugins.registry)
    assert config.backbone.name == "minilm-l6"
    assert options["task"].max_length == 64


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"train": {"lr": -1}}, "train.lr: Input should be greater than 0 (got -1)"),
        ({"train": {"epochs": "many"}}, "train.epochs: Input should be a valid integer"),
        ({"train": {"precision": "fp8"}},
         "train.precision: Input should be 'auto', 'fp32', 'bf16' or 'fp16'"),
        ({"train": {"learning_rate": 1e-3}}, "train.learning_rate: Extra inputs are not permitted"),
        ({"trainer": {}}, "trainer: Extra inputs are not permitted"),
        ({"train": {"device": "tpu"}}, "train.device: String should match pattern"),
    ],
)
def test_core_errors_name_the_field(change: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({**BASE, **change})
    assert expected in str(raised.value)


def test_missing_section_is_named() -> None:
    with pytest.raises(ConfigError, match="dataset: Field required"):
        load_config({"task": "text-classification", "backbone": "minilm-l6"})


def test_component_options_are_checked_by_the_plugin_model(plugins: omnitune.Plugins) -> None:
    config = load_config({**BASE, "backbone": {"name": "minilm-l6", "pooling": "max"}})
    with pytest.raises(ConfigError, match=r"backbone.pooling: Input should be 'cls' or 'mean' \(got 'max'\)"):
        validate_components(config, plugins.registry)
    config = load_config({**BASE, "task": {"name": "text-classification", "max_lenght": 32}})
    with pytest.raises(ConfigError, match="task.max_lenght: Extra inputs are not permitted"):
        validate_components(config, plugins.registry)


def test_unknown_component_suggests_a_name(plugins: omnitune.Plugins) -> None:
    config = load_config({**BASE, "backbone": "minilm-l7"})
    with pytest.raises(omnitune.PluginError, match="Did you mean: minilm-l6"):
        validate_components(config, plugins.registry)


def test_set_overrides_parse_values_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("task: text-classification\nbackbone: minilm-l6\ndataset: rotten-tomatoes\n")
    config = load_config(path, ["train.lr=3e-5", "task.max_length=32", "train.max_grad_norm=null"])
    assert config.train.lr == 3e-5
    assert config.task.options == {"max_length": 32}
    assert config.train.max_grad_norm is None
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, ["train.lr"])


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_invalid_config_fails_before_data_is_read(plugins: omnitune.Plugins, tmp_path: Path) -> None:
    run = {**BASE, "dataset": {"name": "text-file", "train": str(tmp_path / "never-read.csv")},
           "task": {"name": "text-classification", "max_length": 2}, "output_dir": str(tmp_path / "out")}
    with pytest.raises(ConfigError, match="task.max_length: Input should be greater than or equal to 8"):
        omnitune.finetune(run, plugins=plugins)
    assert not (tmp_path / "out").exists()


def test_python_api_keywords_override_the_train_section() -> None:
    config = compose_config(BASE, lr=1e-4, epochs=1, output_dir="elsewhere")
    assert (config.train.lr, config.train.epochs, config.output_dir) == (1e-4, 1, "elsewhere")


@given(
    field=st.sampled_from(["epochs", "batch_size", "grad_accum", "lr", "warmup_ratio", "keep_checkpoints"]),
    value=st.one_of(
        st.integers(max_value=-1),
        st.floats(max_value=-1e-9, allow_nan=False),
        st.floats(allow_nan=True).filter(lambda v: v != v),
        st.text(alphabet="abcxyz", min_size=1, max_size=5),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_invalid_train_values_are_rejected_with_the_field_name(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"train.{field}"):
        load_config({**BASE, "train": {field: value}})
