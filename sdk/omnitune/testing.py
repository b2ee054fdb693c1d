"""The conformance kit: checks any plugin author runs in their own test suite.

Describe a small run of your task (a config, and raw inputs to predict on) as a
``ConformanceCase``, then run every check in ``CHECKS`` on it::

    import pytest
    from omnitune.testing import CHECKS, ConformanceCase

    CASE = ConformanceCase("my-task", config=my_run_config, inputs=["raw input"])

    @pytest.mark.parametrize("check", CHECKS)
    def test_conformance(check, tmp_path):
        CHECKS[check](CASE, tmp_path)

Each check trains on the CPU for a few steps (fp32, no progress bar) and raises
``ConformanceError`` (an ``AssertionError``) saying which check failed and why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnitune.config import COMPONENTS, load_config
from omnitune.errors import ConfigError
from omnitune.hookspecs import hookimpl
from omnitune.plugins import load_plugins

UNKNOWN_OPTION = "conformance_unknown_option"
CPU_SETTINGS = {"device": "cpu", "precision": "fp32", "progress": False, "num_workers": 0}


class ConformanceError(AssertionError):
    """A plugin does not keep the contract a conformance check tests."""


@dataclass(frozen=True)
class ConformanceCase:
    """A small run of one task, and what to feed its Predictor.

    ``config`` is a run config (dict) or a function ``config(workdir) -> dict`` that writes
    whatever data it needs under ``workdir``; the kit sets ``output_dir`` and the training
    steps itself. ``invalid`` holds ``--set`` style overrides (``"dataset.max_rows=-1"``) that
    must be rejected with a ConfigError naming their field.
    """

    name: str
    config: Mapping[str, Any] | Callable[[Path], Mapping[str, Any]]
    inputs: Sequence[Any] | Callable[[Path], Sequence[Any]]
    invalid: Sequence[str] = ()

    def raw_inputs(self, workdir: Path) -> list[Any]:
        """The inputs to predict on (after ``run_config`` has written the case's data)."""
        return list(self.inputs(workdir) if callable(self.inputs) else self.inputs)

    def run_config(self, workdir: Path, run_name: str, **train: Any) -> dict[str, Any]:
        """The case's config, complete with defaults, trained on the CPU under
        ``workdir/run_name`` with ``train`` settings."""
        workdir.mkdir(parents=True, exist_ok=True)
        source = self.config(workdir) if callable(self.config) else self.config
        config = {**source, "train": {**source.get("train", {}), **CPU_SETTINGS, **train}}
        config["output_dir"] = str(workdir / run_name)
        return load_config(config).model_dump(mode="json")  # defaults filled in, e.g. the head


def check_contributions(case: ConformanceCase, workdir: Path) -> None:
    """The plugins behind the case loaded cleanly; each of their contributions has an options
    model that forbids unknown fields and a factory that imports; the case's config validates."""
    from omnitune.config import validate_components

    plugins = load_plugins()
    config = load_config(case.run_config(workdir, "contributions"))
    owners = {plugins.registry.get(kind, getattr(config, kind).name).plugin for kind in COMPONENTS}
    failures = [str(f) for f in plugins.failures if f.plugin in owners]
    _expect(case, "contributions", not failures, f"plugin failures: {failures}")
    for info in plugins.loaded:
        if info.name not in owners:
            continue
        for contribution in info.contributions:
            what = f"{contribution.kind} {contribution.name!r} of plugin {info.name!r}"
            extra = contribution.config.model_config.get("extra")
            _expect(case, "contributions", extra == "forbid",
                    f"{what}: options model {contribution.config.__name__} must forbid extra fields")
            _expect(case, "contributions", callable(contribution.load()),
                    f"{what}: factory {contribution.factory_path} is not callable")
    validate_components(config, plugins.registry)


def check_fit(case: ConformanceCase, workdir: Path) -> None:
    """Two optimizer steps on the CPU produce finite metrics and an artifact folder."""
    import omnitune

    result = omnitune.finetune(case.run_config(workdir, "fit", max_steps=2), plugins=load_plugins())
    _expect(case, "fit", result.metrics.get("steps") == 2, f"expected 2 steps, got {result.metrics}")
    losses = {k: v for k, v in result.metrics.items() if k.endswith("_loss")}
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    _expect(case, "fit", not bad, f"non-finite losses: {bad}")
    _expect(case, "fit", (result.artifact / "model.safetensors").is_file(), "no weights in the artifact")


def check_artifact(case: ConformanceCase, workdir: Path) -> None:
    """The saved artifact reloads through the registry and predicts exactly what the trained
    model predicted before saving, one JSON-able dict per raw input."""
    import omnitune
    from omnitune.runtime import Runtime

    plugins = load_plugins()
    result = omnitune.finetune(case.run_config(workdir, "artifact", max_steps=2), plugins=plugins)
    trained = omnitune.Predictor(result.task, result.config, Runtime.create("cpu", "fp32"), plugins)
    inputs = case.raw_inputs(workdir)
    before = trained.predict(inputs)
    after = omnitune.Predictor.load(result.artifact, device="cpu", plugins=load_plugins()).predict(inputs)
    _expect(case, "artifact", len(after) == len(inputs),
            f"{len(inputs)} inputs gave {len(after)} predictions")
    _expect(case, "artifact", all(isinstance(p, dict) for p in after), "each prediction must be a dict")
    try:
        json.dumps(after)
    except TypeError as error:
        raise ConformanceError(f"{case.name}: artifact: predictions are not JSON-able: {error}") from error
    _expect(case, "artifact", before == after,
            f"predictions changed after save and reload:\n  before {before}\n  after  {after}")


class _StopAfterCheckpoint:
    """A loop-event plugin that ends training cleanly right after the checkpoint at ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    @hookimpl
    def on_checkpoint_saved(self, state: Any) -> None:
        if state.step == self.step:
            state.should_stop = True


def check_resume(case: ConformanceCase, workdir: Path) -> None:
    """Two steps with a checkpoint, stopped, then resumed to four, give the same weights as four
    steps straight through."""
    import torch

    import omnitune

    settings = {"max_steps": 4, "eval_every": 2, "checkpoint_every": 2}
    straight = case.run_config(workdir, "straight", **settings)
    stopped = case.run_config(workdir, "resumed", **settings)
    omnitune.finetune(straight, plugins=load_plugins())
    first = omnitune.finetune(stopped, plugins=load_plugins([_StopAfterCheckpoint(2)]))
    _expect(case, "resume", first.metrics.get("steps") == 2,
            f"the run should stop after step 2, got {first.metrics.get('steps')}")
    second = omnitune.finetune(stopped, resume=True, plugins=load_plugins())
    _expect(case, "resume", second.metrics.get("steps") == 4,
            f"the resumed run should end at step 4, got {second.metrics.get('steps')}")
    expected = _final_weights(Path(straight["output_dir"]))
    actual = _final_weights(Path(stopped["output_dir"]))
    _expect(case, "resume", expected.keys() == actual.keys(), "the weights have different names")
    differ = [name for name in expected if not torch.equal(expected[name], actual[name])]
    _expect(case, "resume", not differ, f"resumed weights differ from a straight run in {differ[:5]}")


def check_rejects_bad_config(case: ConformanceCase, workdir: Path) -> None:
    """An unknown option on any component, and each of ``case.invalid``, is refused with a
    ConfigError naming the field, before any output is written."""
    import omnitune

    plugins = load_plugins()
    bad: list[tuple[str, list[str]]] = [(f"{kind}.{UNKNOWN_OPTION}=1", [f"{kind}.{UNKNOWN_OPTION}"])
                                        for kind in COMPONENTS]
    bad += [(override, [override.partition("=")[0]]) for override in case.invalid]
    for override, fields in bad:
        config = case.run_config(workdir, "rejected")
        try:
            omnitune.finetune(config, overrides=[override], plugins=plugins)
        except ConfigError as error:
            _expect(case, "bad-config", all(field in str(error) for field in fields),
                    f"--set {override}: the ConfigError should name {fields}, but says: {error}")
        else:
            raise ConformanceError(f"{case.name}: bad-config: --set {override} was accepted")
        _expect(case, "bad-config", not Path(config["output_dir"]).exists(),
                f"--set {override}: output was written before the config was rejected")


CHECKS: dict[str, Callable[[ConformanceCase, Path], None]] = {
    "contributions": check_contributions,
    "fit": check_fit,
    "artifact": check_artifact,
    "resume": check_resume,
    "bad-config": check_rejects_bad_config,
}


def run_all(case: ConformanceCase, workdir: Path) -> None:
    """Every check in ``CHECKS``, each in its own folder under ``workdir``."""
    for name, check in CHECKS.items():
        check(case, workdir / name)


def _final_weights(output_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    from omnitune.checkpoint import WEIGHTS, latest_checkpoint

    latest = latest_checkpoint(output_dir / "checkpoints")
    if latest is None:
        raise ConformanceError(f"no checkpoint under {output_dir}")
    return load_file(latest / WEIGHTS)


def _expect(case: ConformanceCase, check: str, condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(f"{case.name}: {check}: {message}")


