"""Plugin manager: entry-point discovery, per-plugin isolation, and a report of what loaded."""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from omnitune import hookspecs
from omnitune.errors import DuplicateNameError, PluginError
from omnitune.registry import KINDS, Contribution, Kind, Registry

ENTRY_POINT_GROUP = "omnitune"
API_VERSION = 1
DISABLE_AUTOLOAD_ENV = "OMNITUNE_DISABLE_PLUGIN_AUTOLOAD"
ALLOW_LIST_ENV = "OMNITUNE_PLUGINS"
SLOW_IMPORT_ENV = "OMNITUNE_SLOW_PLUGIN_SECONDS"
SLOW_IMPORT_SECONDS = 5.0
CORE_PLUGIN = "omnitune"
log = logging.getLogger("omnitune")
T = TypeVar("T")

REGISTRATION_HOOKS: dict[Kind, str] = {
    "task": "register_tasks",
    "backbone": "register_backbones",
    "head": "register_heads",
    "dataset": "register_datasets",
    "metric": "register_metrics",
}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped: which one, at which hook, and why."""

    plugin: str
    version: str
    hook: str
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} ({self.version}) failed at {self.hook}: {self.error}"


@dataclass
class PluginInfo:
    """A plugin that loaded, with its hooks and what it registered."""

    name: str
    version: str
    source: str
    hooks: list[str] = field(default_factory=list)
    api_version: int | None = None  # what the plugin declares; None: undeclared, taken as current
    contributions: list[Contribution] = field(default_factory=list)


@dataclass
class Plugins:
    """A plugin manager and the registry it filled. Build one with ``load_plugins``."""

    manager: pluggy.PluginManager
    registry: Registry
    loaded: list[PluginInfo]
    failures: list[PluginFailure]


def load_plugins(
    extra: Iterable[object] = (),
    *,
    autoload: bool | None = None,
    allow: Iterable[str] | None = None,
) -> Plugins:
    """Build a fresh plugin manager and registry.

    ``autoload=False`` (or ``OMNITUNE_DISABLE_PLUGIN_AUTOLOAD=1``) loads no entry points;
    ``allow`` (or ``OMNITUNE_PLUGINS=text,vision``) loads only the named ones. Objects in
    ``extra`` are registered after the entry points, as if they were plugins.
    """
    from omnitune import builtins

    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    candidates: list[tuple[str, str, str, object]] = [
        (CORE_PLUGIN, _version_of("omnitune"), "omnitune core", builtins)
    ]
    failures: list[PluginFailure] = []
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    if autoload:
        allowed = _allow_list(allow)
        for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                                  key=_builtins_first):
            if allowed is not None and entry_point.name not in allowed:
                continue
            version = entry_point.dist.version if entry_point.dist else "unknown"
            with _warn_if_slow(entry_point.name):
                module, error = guarded(entry_point.load)
            if error is not None:
                failures.append(_failure(entry_point.name, version, "import", error))
                continue
            candidates.append((entry_point.name, version, f"entry point {entry_point.value}", module))
    for index, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{index}"
        candidates.append((name, "direct", "registered directly", plugin))

    loaded: list[PluginInfo] = []
    for name, version, source, plugin in candidates:
        info = _register(manager, name, version, source, plugin, failures)
        if info is not None:
            loaded.append(info)
    registry = Registry()
    loaded = [info for info in loaded if _fill_registry(manager, registry, info, failures)]
    return Plugins(manager, registry, loaded, failures)


def _register(
    manager: pluggy.PluginManager,
    name: str,
    version: str,
    source: str,
    plugin: object,
    failures: list[PluginFailure],
) -> PluginInfo | None:
    wanted = getattr(plugin, "OMNITUNE_API_VERSION", API_VERSION)
    if wanted != API_VERSION:
        failures.append(PluginFailure(
            name, version, "register",
            f"targets omnitune hook API version {wanted!r}, but this omnitune provides "
            f"version {API_VERSION}; upgrade the plugin or omnitune",
        ))
        return None
    _, error = guarded(lambda: manager.register(plugin, name=name))
    if error is not None:
        failures.append(_failure(name, version, "register", error))
        return None
    callers = manager.get_hookcallers(plugin) or []
    unknown = [caller.name for caller in callers if not caller.has_spec()]
    if unknown:
        manager.unregister(plugin)
        failures.append(PluginFailure(
            name, version, "register",
            f"implements unknown hook(s) {', '.join(sorted(unknown))}; "
            "see omnitune.hookspecs for the hooks that exist",
        ))
        return None
    return PluginInfo(name, version, source, sorted(caller.name for caller in callers),
                      getattr(plugin, "OMNITUNE_API_VERSION", None))


def _fill_registry(
    manager: pluggy.PluginManager,
    registry: Registry,
    info: PluginInfo,
    failures: list[PluginFailure],
) -> bool:
    """Run one plugin's registration hooks; all of them succeed or none of its names stay."""
    plugin = manager.get_plugin(info.name)
    staged: list[Contribution] = []
    for kind in KINDS:
        hook_name = REGISTRATION_HOOKS[kind]
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is not plugin:
                continue
            register = registry.callback(info.name, kind, staged)
            _, error = guarded(lambda: impl.function(**{arg: register for arg in impl.argnames}))  # noqa: B023
            if error is not None:
                manager.unregister(plugin)
                failures.append(_failure(info.name, info.version, hook_name, error))
                return False
    for contribution in staged:
        try:
            registry.add(contribution)
        except DuplicateNameError as error:
            failures.append(_failure(info.name, info.version, REGISTRATION_HOOKS[contribution.kind], error))
            continue
        info.contributions.append(contribution)
    return True


def _failure(plugin: str, version: str, hook: str, error: BaseException) -> PluginFailure:
    detail = str(error) if isinstance(error, PluginError) else f"{type(error).__name__}: {error}"
    return PluginFailure(plugin, version, hook, detail, "".join(traceback.format_exception(error)))


def _builtins_first(entry_point: importlib.metadata.EntryPoint) -> tuple[bool, str]:
    """omnitune's own plugins load first, so a third-party name clash is the one reported."""
    distribution = entry_point.dist.name if entry_point.dist else ""
    return distribution != "omnitune", entry_point.name


def _allow_list(allow: Iterable[str] | None) -> set[str] | None:
    if allow is not None:
        return set(allow)
    raw = os.environ.get(ALLOW_LIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def emitter(plugins: Plugins) -> Callable[..., None]:
    """A function that sends a loop event to every plugin, one at a time.

    Plugins see the loop state through a ``LoopStateView`` (only ``should_stop`` can be set) and
    copies of the other arguments. A plugin that raises anything, ``SystemExit`` and
    ``KeyboardInterrupt`` included, is reported once and gets no further events; training goes on.
    """
    silenced: set[str] = set()

    def emit(event: str, **kwargs: Any) -> None:
        for impl in getattr(plugins.manager.hook, event).get_hookimpls():
            if impl.plugin_name in silenced:
                continue
            arguments = {name: _shielded(kwargs[name]) for name in impl.argnames}
            _, error = guarded(lambda: impl.function(**arguments))  # noqa: B023
            if error is not None:
                silenced.add(impl.plugin_name)
                version = next((p.version for p in plugins.loaded if p.name == impl.plugin_name), "unknown")
                failure = _failure(impl.plugin_name, version, event, error)
                plugins.failures.append(failure)
                log.warning("%s; its loop events are switched off for this run", failure)

    return emit


class LoopStateView:
    """The loop state as loop events see it: every field can be read (as a copy), and
    ``should_stop`` is the one field that can be set."""

    __slots__ = ("_state",)

    def __init__(self, state: Any) -> None:
        object.__setattr__(self, "_state", state)

    def __getattr__(self, name: str) -> Any:
        return copy.deepcopy(getattr(object.__getattribute__(self, "_state"), name))

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "should_stop":
            raise AttributeError(f"state.{name} is read-only for loop events; "
                                 "the one field a plugin may set is state.should_stop")
        object.__getattribute__(self, "_state").should_stop = bool(value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"state.{name} is read-only for loop events")

    def __repr__(self) -> str:
        return f"LoopStateView({object.__getattribute__(self, '_state')!r})"


def _shielded(value: Any) -> Any:
    """What a plugin receives for a loop-event argument: a view of the state, copies of the rest."""
    if hasattr(value, "should_stop"):
        return LoopStateView(value)
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def guarded(call: Callable[[], T]) -> tuple[T | None, BaseException | None]:
    """Run plugin code: its stdout goes to stderr, and whatever it raises (``SystemExit`` and
    ``KeyboardInterrupt`` included) is returned, not raised. A real Ctrl-C while it runs still
    interrupts: only a ``KeyboardInterrupt`` the plugin raised itself is caught."""
    with contextlib.redirect_stdout(sys.stderr), _noting_sigint() as interrupted:
        try:
            return call(), None
        except BaseException as error:  # noqa: BLE001 - isolation of plugin code is the point
            if isinstance(error, KeyboardInterrupt) and interrupted:
                raise
            return None, error


@contextlib.contextmanager
def _noting_sigint() -> Iterator[list[bool]]:
    """Yield a list that becomes ``[True]`` when a real SIGINT arrives (Python's default handler
    is kept: it still raises ``KeyboardInterrupt``). A custom handler, such as the loop's, is left as is."""
    received: list[bool] = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield received
        return

    def note(signum: int, frame: Any) -> None:
        received.append(True)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, note)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _warn_if_slow(plugin: str) -> Iterator[None]:
    """Name a plugin that is still importing after ``OMNITUNE_SLOW_PLUGIN_SECONDS`` (default 5)."""
    try:
        seconds = float(os.environ.get(SLOW_IMPORT_ENV) or SLOW_IMPORT_SECONDS)
    except ValueError:
        seconds = SLOW_IMPORT_SECONDS
    timer = threading.Timer(seconds, log.warning, args=(
        "plugin %r is still importing after %g s; disable it with OMNITUNE_PLUGINS=<the others> "
        "if it hangs", plugin, seconds))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
