"""Plugins that try to end the host, change the loop state, print into --json output, hang on
import or register thousands of names (issue 16, case 3): each is isolated, reported by name,
and the run goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import omnitune
from omnitune.errors import UnknownNameError

from conftest import tiny_run

HOSTILE = {
    "exits_on_register": '''
        import omnitune

        @omnitune.hookimpl
        def register_metrics(register):
            raise SystemExit(0)
    ''',
    "base_exception_on_import": "class Odd(BaseException):\n    pass\nraise Odd('from import')\n",
    "interrupts_on_import": "raise KeyboardInterrupt\n",
    "prints_on_import": '''
        import omnitune
        print("hello from a chatty plugin")

        @omnitune.hookimpl
        def register_metrics(register):
            print("registering, loudly")
            register("chatty-metric", lambda config: (lambda outputs: 0.0))
    ''',
}


class ExitsOnStep:
    @omnitune.hookimpl
    def on_step_end(self, state, logs):  # noqa: ANN001, ANN201
        raise SystemExit(0)


class InterruptsOnStep:
    @omnitune.hookimpl
    def on_step_end(self, state, logs):  # noqa: ANN001, ANN201
        raise KeyboardInterrupt


class MovesTheStep:
    @omnitune.hookimpl
    def on_step_end(self, state, logs):  # noqa: ANN001, ANN201
        state.step += 100


class StopsAtStepTwo:
    @omnitune.hookimpl
    def on_step_end(self, state, logs):  # noqa: ANN001, ANN201
        state.best_metrics["injected"] = 1.0  # a copy: changes nothing
        if state.step == 2:
            state.should_stop = True


def install(folder: Path, modules: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write plugin modules and a distribution whose entry points name them, on sys.path."""
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
    dist_info = folder / "hostile_plugins-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-plugins\nVersion: 0.1\n")
    entries = "\n".join(f"{name} = {name}" for name in modules)
    (dist_info / "entry_points.txt").write_text(f"[omnitune]\n{entries}\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    return folder


def test_plugins_that_exit_or_raise_base_exceptions_are_skipped_and_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, HOSTILE, monkeypatch)
    plugins = omnitune.load_plugins()
    failed = {f.plugin: f for f in plugins.failures}
    assert failed["exits_on_register"].hook == "register_metrics"
    assert "SystemExit" in failed["exits_on_register"].error
    assert "Odd: from import" in failed["base_exception_on_import"].error
    assert "KeyboardInterrupt" in failed["interrupts_on_import"].error
    assert "chatty-metric" in [c.name for c in plugins.registry.list("metric")]
    assert "text-classification" in [c.name for c in plugins.registry.list("task")]


def test_plugin_output_never_reaches_json_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, HOSTILE, monkeypatch)
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "plugins", "doctor", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 4, done.stderr  # some plugins failed; the host did not exit 0 early
    report = json.loads(done.stdout)
    assert "hello from a chatty plugin" in done.stderr and "registering, loudly" in done.stderr
    assert {"exits_on_register", "base_exception_on_import"} <= {f["plugin"] for f in report["failures"]}


def test_a_real_ctrl_c_during_plugin_import_still_interrupts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, {"real_sigint": "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\n"
                                      "time.sleep(5)\n"}, monkeypatch)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's, as in `omnitune`
    try:
        with pytest.raises(KeyboardInterrupt):
            omnitune.load_plugins()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_slow_plugin_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    install(tmp_path, {"slow_plugin": "import time\ntime.sleep(1.0)\n"}, monkeypatch)
    monkeypatch.setenv("OMNITUNE_SLOW_PLUGIN_SECONDS", "0.2")
    with caplog.at_level("WARNING", logger="omnitune"):
        omnitune.load_plugins()
    assert "plugin 'slow_plugin' is still importing after 0.2 s" in caplog.text


def test_loop_events_cannot_end_the_run_or_change_its_state(
        tiny_bert: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    hostile = [ExitsOnStep(), InterruptsOnStep(), MovesTheStep(), StopsAtStepTwo()]
    plugins = omnitune.load_plugins(extra=hostile)
    result = omnitune.finetune(tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", max_steps=5),
                               plugins=plugins)
    assert result.metrics["steps"] == 2  # should_stop, the one writable field, was obeyed
    assert (result.artifact / "model.safetensors").is_file()
    failed = {f.plugin.split("-")[0]: f for f in plugins.failures}
    assert "SystemExit" in failed["ExitsOnStep"].error
    assert "KeyboardInterrupt" in failed["InterruptsOnStep"].error
    assert "state.step is read-only" in failed["MovesTheStep"].error
    assert "StopsAtStepTwo" not in failed
    assert "injected" not in result.metrics


def test_unknown_name_among_thousands_lists_a_few_close_matches() -> None:
    class ManyMetrics:
        @omnitune.hookimpl
        def register_metrics(self, register):  # noqa: ANN001, ANN201
            for index in range(10_000):
                register(f"metric-{index:05d}", lambda config: (lambda outputs: 0.0))

    registry = omnitune.load_plugins(extra=[ManyMetrics()], autoload=False).registry
    with pytest.raises(UnknownNameError) as raised:
        registry.get("metric", "metric-0042")
    message = str(raised.value)
    assert len(message) < 500 and message.count("metric-0") == 4  # the name and three close matches
    assert "metrics are registered; list them with `omnitune metrics`" in message
