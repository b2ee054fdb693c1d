"""`omnitune new-plugin` writes a package that installs, is discovered, and passes its own tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from omnitune.cli import main

from conftest import plugin_env


def test_generated_plugin_installs_and_passes_its_own_tests(tmp_path: Path) -> None:
    assert main(["new-plugin", "demo-shop", "--directory", str(tmp_path)]) == 0
    package = tmp_path / "omnitune-demo-shop"
    env = plugin_env(tmp_path / "venv", package)

    doctor = subprocess.run([str(env.python), "-m", "omnitune.cli", "plugins", "doctor"],
                            capture_output=True, text=True, check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "demo-shop 0.1.0  (entry point omnitune_demo_shop.hooks)  hook API 1" in doctor.stdout
    assert "task:demo-shop-regression" in doctor.stdout

    tests = subprocess.run([str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=package, capture_output=True, text=True, check=False)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "5 passed" in tests.stdout


@pytest.mark.parametrize(("name", "problem"), [("Demo", "must be lower case"),
                                               ("text", "already importable")])
def test_bad_plugin_names_are_refused(name: str, problem: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    assert main(["new-plugin", name, "--directory", str(tmp_path)]) == 2
    assert problem in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
