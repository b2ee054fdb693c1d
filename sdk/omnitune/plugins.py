"""Plugin manager: entry-point discovery, per-plugin isolation, and a report of what loaded."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from omnitune import hookspecs
from omnitune.errors import DuplicateNameError, PluginError
from omnitune.registry import KINDS, Contribution, Kind, Registry

ENTRY_POINT_GROUP = "omnitune"
API_VERSION = 1
DISABLE_AUTOLOAD_ENV = "OMNITUNE_DISABLE_PLUGIN_AUTOLOAD"
ALLOW_LIST_ENV = "OMNITUNE_PLUGINS"
CORE_PLUGIN = "omnitune"
log = logging.getLogger("omnitune")

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
            try:
                module = entry_point.load()
            except Exception as error:
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
    try:
        manager.register(plugin, name=name)
    except Exception as error:
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
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except Exception as error:
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

    A plugin that raises is reported once and gets no further events; training goes on.
    """
    silenced: set[str] = set()

    def emit(event: str, **kwargs: Any) -> None:
        for impl in getattr(plugins.manager.hook, event).get_hookimpls():
            if impl.plugin_name in silenced:
                continue
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception as error:
                silenced.add(impl.plugin_name)
                version = next((p.version for p in plugins.loaded if p.name == impl.plugin_name), "unknown")
                failure = _failure(impl.plugin_name, version, event, error)
                plugins.failures.append(failure)
                log.warning("%s; its loop events are switched off for this run", failure)

    return emit
