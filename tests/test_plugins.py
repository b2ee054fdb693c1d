"""Discovery through real entry points, isolation of broken plugins, and the plugin report."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import omnitune
from omnitune.errors import PluginError

THIRD_PARTY = {
    "good_plugin": '''
        from pydantic import BaseModel, ConfigDict
        import omnitune

        class Options(BaseModel):
            model_config = ConfigDict(extra="forbid", frozen=True)
            scale: float = 1.0

        @omnitune.hookimpl
        def register_metrics(register):
            register("always-one", lambda config: (lambda outputs: 1.0), config=Options)
    ''',
    "broken_import": "raise RuntimeError('this plugin cannot be imported')\n",
    "broken_hook": '''
        import omnitune

        @omnitune.hookimpl
        def register_heads(register):
            register("half-registered", lambda c, i, o: None)
            raise ValueError("boom inside the hook")
    ''',
    "duplicate_name": '''
        import omnitune

        @omnitune.hookimpl
        def register_tasks(register):
            register("text-classification", "somewhere:else")

        @omnitune.hookimpl
        def register_metrics(register):
            register("still-registered", lambda config: (lambda outputs: 0.0))
    ''',
    "invalid_contribution": '''
        import omnitune

        @omnitune.hookimpl
        def register_datasets(register):
            register("Bad Name!", lambda config: None)
    ''',
    "future_api": '''
        import omnitune
        OMNITUNE_API_VERSION = 99

        @omnitune.hookimpl
        def register_heads(register):
            register("from-the-future", lambda c, i, o: None)
    ''',
    "lost_factory": '''
        import omnitune

        @omnitune.hookimpl
        def register_datasets(register):
            register("lost-data", "acme_nowhere.data:load")
    ''',
    "unknown_hook": '''
        import omnitune

        @omnitune.hookimpl
        def register_everything(register):
            pass
    ''',
}


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installs plugin modules and one distribution whose entry points name them, on sys.path."""
    for module, source in THIRD_PARTY.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    dist_info = tmp_path / "acme_plugins-2.3.4.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugins\nVersion: 2.3.4\n")
    entries = "\n".join(f"{name} = {name}" for name in THIRD_PARTY)
    (dist_info / "entry_points.txt").write_text(f"[omnitune]\n{entries}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtin_text_plugin_is_found_through_its_entry_point(plugins: omnitune.Plugins) -> None:
    text = next(p for p in plugins.loaded if p.name == "text")
    assert text.source == "entry point omnitune_text.plugin"
    assert "register_tasks" in text.hooks
    assert plugins.registry.get("task", "text-classification").plugin == "text"
    assert plugins.registry.get("backbone", "minilm-l6").plugin == "text"


def test_broken_plugins_are_reported_and_skipped(third_party: Path) -> None:
    plugins = omnitune.load_plugins()
    failures = {f.plugin: f for f in plugins.failures}

    assert failures["broken_import"].hook == "import"
    assert "cannot be imported" in failures["broken_import"].error
    assert failures["broken_import"].version == "2.3.4"
    assert failures["broken_hook"].hook == "register_heads"
    assert "boom inside the hook" in failures["broken_hook"].error
    assert "Traceback" in failures["broken_hook"].traceback
    assert "'text'" in failures["duplicate_name"].error
    assert "'duplicate_name'" in failures["duplicate_name"].error
    assert "Bad Name!" in failures["invalid_contribution"].error
    assert "version 99" in failures["future_api"].error
    assert "register_everything" in failures["unknown_hook"].error

    registry = plugins.registry
    assert registry.get("metric", "always-one").plugin == "good_plugin"
    assert registry.get("metric", "still-registered").plugin == "duplicate_name"
    assert registry.get("task", "text-classification").plugin == "text"
    for name in ("half-registered", "from-the-future"):
        with pytest.raises(PluginError):
            registry.get("head", name)


def test_allow_list_and_off_switch(third_party: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNITUNE_PLUGINS", "good_plugin")
    allowed = omnitune.load_plugins()
    assert [p.name for p in allowed.loaded] == ["omnitune", "good_plugin"]
    assert allowed.failures == []

    monkeypatch.delenv("OMNITUNE_PLUGINS")
    monkeypatch.setenv("OMNITUNE_DISABLE_PLUGIN_AUTOLOAD", "1")
    core_only = omnitune.load_plugins()
    assert [p.name for p in core_only.loaded] == ["omnitune"]
    assert core_only.registry.get("head", "linear").plugin == "omnitune"


def test_plugins_command_reports_failures(third_party: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    from omnitune.cli import main

    assert main(["plugins", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = {p["name"] for p in report["plugins"]}
    assert {"omnitune", "text", "good_plugin"} <= names
    failed = {f["plugin"]: f for f in report["failures"]}
    assert failed["broken_hook"]["version"] == "2.3.4"
    assert failed["broken_hook"]["hook"] == "register_heads"


def test_listing_commands_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from omnitune.cli import main; main(['tasks']); main(['plugins']); "
            "main(['plugins', 'doctor']); "
            "assert 'torch' not in sys.modules, 'torch was imported'; "
            "assert 'transformers' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "text-classification" in done.stdout


def test_incompatible_api_version_message(third_party: Path) -> None:
    plugins = omnitune.load_plugins()
    failure = next(f for f in plugins.failures if f.plugin == "future_api")
    assert str(failure) == (
        "plugin 'future_api' (2.3.4) failed at register: targets omnitune hook API version 99, "
        f"but this omnitune provides version {omnitune.API_VERSION}; upgrade the plugin or omnitune")
    assert "future_api" not in {p.name for p in plugins.loaded}
    text = next(p for p in plugins.loaded if p.name == "text")
    assert text.api_version == omnitune.API_VERSION


def test_doctor_reports_every_failure_and_exits_non_zero(
    third_party: Path, capsys: pytest.CaptureFixture
) -> None:
    from omnitune.cli import main

    assert main(["plugins", "doctor"]) == PluginError.exit_code
    out = capsys.readouterr().out
    assert "good_plugin 2.3.4  (entry point good_plugin)" in out
    assert "  hooks: register_metrics" in out
    assert "  registered: metric:always-one" in out
    for plugin, hook in [("broken_import", "import"), ("broken_hook", "register_heads"),
                         ("future_api", "register"), ("unknown_hook", "register"),
                         ("lost_factory", "register_datasets")]:
        assert f"FAILED plugin {plugin!r} (2.3.4) at {hook}:" in out
    assert "dataset 'lost-data': factory 'acme_nowhere.data:load' cannot be imported" in out
    assert "Traceback" not in out

    assert main(["plugins", "doctor", "--verbose"]) == PluginError.exit_code
    assert "ValueError: boom inside the hook" in capsys.readouterr().out

    assert main(["plugins", "doctor", "--json"]) == PluginError.exit_code
    import json

    report = json.loads(capsys.readouterr().out)
    broken = next(f for f in report["failures"] if f["plugin"] == "broken_hook")
    assert "Traceback" in broken["traceback"]
    good = next(p for p in report["plugins"] if p["name"] == "good_plugin")
    assert good["hooks"] == ["register_metrics"]
    assert main(["plugins"]) == 0  # the listing itself never fails


def test_doctor_exits_zero_when_all_plugins_load(capsys: pytest.CaptureFixture) -> None:
    from omnitune.cli import main

    assert main(["plugins", "doctor"]) == 0
    assert "FAILED" not in capsys.readouterr().out


def test_a_factory_that_raises_at_build_time_names_plugin_and_contribution(
    tiny_bert: Path, sentiment_csv: Path, tmp_path: Path
) -> None:
    from conftest import tiny_run

    class Exploding:
        @omnitune.hookimpl
        def register_backbones(self, register):
            register("exploding", self.build)

        @staticmethod
        def build(options, export_dir=None):
            raise RuntimeError("out of cheese")

    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run")
    run["backbone"] = {"name": "exploding"}
    with pytest.raises(PluginError) as raised:
        omnitune.finetune(run, plugins=omnitune.load_plugins([Exploding()]))
    message = str(raised.value)
    assert "plugin 'Exploding-0': backbone 'exploding' failed to build" in message
    assert "RuntimeError: out of cheese" in message
    assert isinstance(raised.value.__cause__, RuntimeError)
