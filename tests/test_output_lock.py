"""One run per output folder (issue 16, case 2): a second run is refused naming the holder,
a lock left by a killed run is taken over, and a finished run leaves the folder free."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import omnitune
from omnitune.errors import OutputLockedError
from omnitune.lock import LOCK_FILE, lock_output_dir, release_output_dir

from conftest import tiny_run

HOLD = ("import sys, time; from pathlib import Path; from omnitune.lock import lock_output_dir; "
        "lock_output_dir(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)")


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that takes the folder's lock and keeps it."""
    folder.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_second_run_into_a_locked_output_dir_is_refused_naming_the_holder(
        tiny_bert: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    output_dir = tmp_path / "run"
    holder = hold_lock(output_dir)
    try:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(tiny_run(tiny_bert, sentiment_csv, output_dir, max_steps=2)))
        done = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", str(config)],
                              capture_output=True, text=True)
        assert done.returncode == OutputLockedError.exit_code, done.stderr
        assert f"pid {holder.pid} on host {socket.gethostname()}" in done.stderr
        assert "Traceback" not in done.stderr
        assert not (output_dir / "checkpoints").exists() and not (output_dir / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_a_stale_lock_that_the_next_run_takes_over(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = hold_lock(tmp_path)
    with pytest.raises(OutputLockedError, match=f"pid {holder.pid}"):
        lock_output_dir(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid  # left behind
    with caplog.at_level("INFO", logger="omnitune"):
        lock_output_dir(tmp_path)
    try:
        assert f"stale lock left by pid {holder.pid}" in caplog.text
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        release_output_dir(tmp_path)


def test_a_finished_run_releases_its_lock(tiny_bert: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    omnitune.finetune(tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", max_steps=1))
    assert (tmp_path / "run" / LOCK_FILE).read_text() == ""
    holder = hold_lock(tmp_path / "run")  # another process can take it
    holder.kill()
    holder.wait()
