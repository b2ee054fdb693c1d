"""Property tests (hypothesis) over hostile inputs: configs, --set overrides, CSV/JSONL bytes and
predict inputs. No input in these strategies may give a raw traceback (an exception escaping the
CLI or the API other than omnitune's named errors) or an exit code that docs/reliability.md does not
document (issue 16)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hardening_fixtures import tiny_artifact  # noqa: F401  (a fixture)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import omnitune
from omnitune import cli
from omnitune.api import compose_config
from omnitune.build import build_dataset
from omnitune.config import validate_components
from omnitune.errors import DataError, OmnituneError
from omnitune.predict import Predictor

# the exit codes docs/reliability.md documents, less 1 ("a bug")
DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8, 130}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLUGINS = omnitune.load_plugins()

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                    st.sampled_from([".inf", "-.inf", ".nan", "1e400", str(2**70), "cuda:99", "~"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
train_fields = st.sampled_from(sorted(omnitune.config.TrainConfig.model_fields) + ["bogus"])
yaml_alphabet = st.sampled_from(list("abc:-[]{}&*!|>'\"#%@,?. \n\t0123456789") + ["<<", "task", "train"])


def run_cli(argv: list[str]) -> int:
    """``omnitune`` in this process; an exception escaping it is the raw traceback a user would see."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return cli.main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            return exit_.code if isinstance(exit_.code, int) else 2


@pytest.fixture(scope="module")
def text_predictor(tiny_artifact: Path) -> Predictor:  # noqa: F811
    return Predictor.load(tiny_artifact, plugins=PLUGINS)


@pytest.fixture(scope="module", autouse=True)
def loaded_once(text_predictor: Predictor) -> Iterator[None]:
    """The CLI gets the plugins loaded once, and predict the one tiny predictor, so each example
    costs milliseconds."""
    patch = pytest.MonkeyPatch()
    patch.setattr("omnitune.plugins.load_plugins", lambda *args, **kwargs: PLUGINS)
    patch.setattr(Predictor, "load", classmethod(lambda cls, *args, **kwargs: text_predictor))
    yield
    patch.undo()


@FAST
@given(train=st.dictionaries(train_fields, values, max_size=4),
       top=st.dictionaries(st.sampled_from(["task", "backbone", "head", "dataset", "output_dir",
                                            "overwrite", "extra"]), values, max_size=3))
def test_any_config_values_give_a_documented_exit(tmp_path_factory: pytest.TempPathFactory,
                                                  train: dict, top: dict) -> None:
    config = {"task": "text-classification", "backbone": "minilm-l6", "dataset": "rotten-tomatoes",
              "train": train, **top}
    path = tmp_path_factory.mktemp("config") / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run_cli(["train", str(path), "--dry-run"]) in DOCUMENTED


@FAST
@given(text=st.lists(yaml_alphabet, max_size=80).map("".join))
def test_any_yaml_text_gives_a_documented_exit(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("config") / "run.yaml"
    path.write_text(text)
    assert run_cli(["train", str(path), "--dry-run"]) in DOCUMENTED


@FAST
@given(raw=st.binary(max_size=200))
def test_any_config_bytes_give_a_documented_exit(tmp_path_factory: pytest.TempPathFactory,
                                                 raw: bytes) -> None:
    path = tmp_path_factory.mktemp("config") / "run.yaml"
    path.write_bytes(raw)
    assert run_cli(["train", str(path), "--dry-run"]) in DOCUMENTED


@FAST
@given(overrides=st.lists(st.text(max_size=40), max_size=3))
def test_any_set_override_gives_a_documented_exit(overrides: list[str]) -> None:
    argv = ["train", "--dry-run"] + [arg for item in overrides for arg in ("--set", item)]
    assert run_cli(argv) in DOCUMENTED


header = st.sampled_from(["text,label\n", "\ufefftext,label\n", "label,text\n", "text\n", "", "text;label\n"])
cell = st.one_of(st.text(max_size=20), st.sampled_from(['"', '""', "\x00", "pos", " POS ", "neg", "\r"]))
csv_rows = st.lists(st.tuples(cell, cell).map(lambda row: ",".join(row) + "\n"), max_size=30).map("".join)


@FAST
@given(head=header, body=csv_rows, tail=st.binary(max_size=20))
def test_any_csv_bytes_load_or_give_a_data_error(tmp_path_factory: pytest.TempPathFactory, head: str,
                                                 body: str, tail: bytes) -> None:
    path = tmp_path_factory.mktemp("data") / "rows.csv"
    path.write_bytes(head.encode("utf-8", "surrogatepass") + body.encode("utf-8", "surrogatepass") + tail)
    load_text_file(path)


json_rows = st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["text", "label", "other"]), values, max_size=3).map(
        lambda row: yaml.safe_dump(row, default_flow_style=True).replace("\n", " ")),
    st.builds(lambda t, label: f'{{"text": {t!r}, "label": {label!r}}}'.replace("'", '"'), cell, cell),
    st.text(max_size=30)), max_size=20).map("\n".join)


@FAST
@given(body=json_rows, tail=st.binary(max_size=10))
def test_any_jsonl_bytes_load_or_give_a_data_error(tmp_path_factory: pytest.TempPathFactory, body: str,
                                                   tail: bytes) -> None:
    path = tmp_path_factory.mktemp("data") / "rows.jsonl"
    path.write_bytes(body.encode("utf-8", "surrogatepass") + tail)
    load_text_file(path)


def load_text_file(path: Path) -> None:
    run = compose_config({"task": "text-classification", "backbone": "minilm-l6",
                          "dataset": {"name": "text-file", "train": str(path)}})
    with contextlib.suppress(DataError):
        build_dataset(run, validate_components(run, PLUGINS.registry), PLUGINS.registry)


inputs = st.one_of(st.text(max_size=60), st.none(), st.integers(), st.floats(), st.binary(max_size=10),
                   st.sampled_from(["", " ", "\udcff", "a/b.txt", "x" * 5000]),
                   st.lists(st.text(), max_size=2))


@SOME
@given(items=st.lists(inputs, min_size=1, max_size=4))
def test_any_python_predict_input_predicts_or_gives_a_data_error(text_predictor: Predictor,
                                                                 items: list) -> None:
    try:
        results = text_predictor.predict(items)
    except DataError:
        return
    assert len(results) == len(items) and all(r["label"] in ("pos", "neg") for r in results)


@SOME
@given(args=st.lists(st.text(max_size=30), min_size=1, max_size=3), device=st.text(max_size=8))
def test_any_predict_command_line_gives_a_documented_exit(text_predictor: Predictor,
                                                          args: list[str], device: str) -> None:
    with mock.patch("sys.stdin", io.StringIO("a fine film\n")):  # args == ['-'] reads stdin
        assert run_cli(["predict", "artifact", *args]) in DOCUMENTED
    assert run_cli(["predict", "artifact", "a fine film", "--device", device]) in DOCUMENTED


def test_errors_raised_here_are_all_named() -> None:
    assert issubclass(DataError, OmnituneError)  # what the tests above let through is named
