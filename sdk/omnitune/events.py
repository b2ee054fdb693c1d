"""What the loop sees of the plugins during one run: loop events and extra loss terms.

Per-run plugin objects (``finetune(..., callbacks=[obj])``: a logger, a pruning callback, a
distillation term) are registered on the run's plugin manager for the run's duration and
unregistered afterwards, so the manager can serve the next run unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pluggy
import torch
from torch import nn

from omnitune import hookspecs
from omnitune.errors import PluginError
from omnitune.plugins import ENTRY_POINT_GROUP, PluginInfo, Plugins, emitter
from omnitune.registry import Registry
from omnitune.task import StepOutput


class RunEvents:
    """Sends loop events (rank 0 only, each plugin isolated: one that raises is reported and
    switched off) and collects extra loss terms (every process; an error stops training)."""

    def __init__(self, plugins: Plugins, *, emit_events: bool) -> None:
        self._emit = emitter(plugins) if emit_events else None
        self._loss_terms = plugins.manager.hook.loss_terms

    def emit(self, event: str, **kwargs: Any) -> None:
        """Call ``event`` (a loop-event hook name) on every plugin that implements it."""
        if self._emit is not None:
            self._emit(event, **kwargs)

    def loss_terms(self, model: nn.Module, batch: dict[str, Any], output: StepOutput) -> list[torch.Tensor]:
        """Every extra loss term the run's plugins add for this micro-batch."""
        if not self._loss_terms.get_hookimpls():
            return []
        results = self._loss_terms(model=model, batch=batch, output=output)
        return [term for terms in results for term in terms.values()]


@contextlib.contextmanager
def run_events(plugins: Plugins | None, callbacks: Sequence[object], *,
               emit_events: bool) -> Iterator[RunEvents]:
    """``RunEvents`` over ``plugins`` (none: an empty manager) with ``callbacks`` registered
    until the block ends."""
    plugins = plugins or _no_plugins()
    names: list[str] = []
    try:
        for index, callback in enumerate(callbacks):
            names.append(_register(plugins, callback, index))
        yield RunEvents(plugins, emit_events=emit_events)
    finally:
        for name in names:
            plugins.manager.unregister(name=name)
        plugins.loaded[:] = [info for info in plugins.loaded if info.name not in names]


def _register(plugins: Plugins, callback: object, index: int) -> str:
    name = f"callback-{index}-{type(callback).__name__}-{id(callback):x}"
    plugins.manager.register(callback, name=name)
    callers = plugins.manager.get_hookcallers(callback) or []
    unknown = sorted(caller.name for caller in callers if not caller.has_spec())
    if unknown:
        plugins.manager.unregister(callback)
        raise PluginError(f"callback {type(callback).__name__} implements unknown hook(s) "
                          f"{', '.join(unknown)}; see omnitune.hookspecs for the hooks that exist")
    plugins.loaded.append(PluginInfo(name, "run callback", "passed to fit",
                                     sorted(caller.name for caller in callers)))
    return name


def _no_plugins() -> Plugins:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    return Plugins(manager, Registry(), [], [])
