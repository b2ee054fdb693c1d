"""``omnitune plugins [doctor]``: what every plugin is, what it registered, and what failed.

Nothing here imports a plugin's factories: a factory's module is only located on disk, so the
report stays fast and free of torch and the modality libraries.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from omnitune.plugins import REGISTRATION_HOOKS, PluginFailure, Plugins


def unfindable_factories(plugins: Plugins) -> list[PluginFailure]:
    """Contributions whose ``module:attribute`` factory names a module that does not exist."""
    problems = []
    for info in plugins.loaded:
        for contribution in info.contributions:
            if not isinstance(contribution.factory, str):
                continue
            module = contribution.factory.partition(":")[0]
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError) as error:
                found, reason = False, f"{type(error).__name__}: {error}"
            else:
                reason = "no such module"
            if not found:
                problems.append(PluginFailure(
                    info.name, info.version, REGISTRATION_HOOKS[contribution.kind],
                    f"{contribution.kind} {contribution.name!r}: factory {contribution.factory!r} "
                    f"cannot be imported ({reason})",
                ))
    return problems


def report(plugins: Plugins, failures: list[PluginFailure]) -> dict[str, Any]:
    """The plugins and failures as JSON-able data."""
    return {
        "plugins": [{"name": p.name, "version": p.version, "source": p.source,
                     "api_version": p.api_version, "hooks": p.hooks,
                     "registered": [f"{c.kind}:{c.name}" for c in p.contributions]}
                    for p in plugins.loaded],
        "failures": [{"plugin": f.plugin, "version": f.version, "hook": f.hook, "error": f.error,
                      "traceback": f.traceback} for f in failures],
    }


def format_report(data: dict[str, Any], *, hooks: bool, tracebacks: bool) -> str:
    """Human-readable lines: each plugin, optionally its hooks, what it registered, each failure."""
    lines = []
    for p in data["plugins"]:
        api = "" if p["api_version"] is None else f"  hook API {p['api_version']}"
        lines.append(f"{p['name']} {p['version']}  ({p['source']}){api}")
        if hooks:
            lines.append(f"  hooks: {', '.join(p['hooks']) or 'none'}")
        lines.append(f"  registered: {', '.join(p['registered']) or 'nothing'}")
    for f in data["failures"]:
        lines.append(f"FAILED plugin {f['plugin']!r} ({f['version']}) at {f['hook']}: {f['error']}")
        if tracebacks and f["traceback"]:
            lines.extend("  " + line for line in f["traceback"].rstrip().splitlines())
    return "\n".join(lines)
