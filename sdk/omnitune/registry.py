"""The one registry of tasks, backbones, heads, datasets and metrics."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from omnitune.errors import (
    ConfigError,
    DuplicateNameError,
    OmnituneError,
    PluginError,
    UnknownNameError,
    shorten,
)
from omnitune.options import Options

Kind = Literal["task", "backbone", "head", "dataset", "metric"]
KINDS: tuple[Kind, ...] = ("task", "backbone", "head", "dataset", "metric")
MAX_NAMES_LISTED = 20


class NoOptions(Options):
    """Config model of a contribution that takes no options."""


class Contribution(BaseModel):
    """One named thing a plugin contributed: what it is, who gave it, how to build it."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: Kind
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Lower case: letters, digits, _ . -")
    factory: Callable[..., Any] | str = Field(
        description="The builder, or 'module:attribute' to import it only when needed."
    )
    config: type[BaseModel] = Field(default=NoOptions, description="Options model.")
    plugin: str = Field(description="Name of the plugin that registered it.")
    description: str = ""

    @field_validator("factory")
    @classmethod
    def _import_path_has_colon(cls, value: Callable[..., Any] | str) -> Callable[..., Any] | str:
        if isinstance(value, str) and value.count(":") != 1:
            raise ValueError(f"expected 'module:attribute', got {value!r}")
        return value

    @field_validator("config")
    @classmethod
    def _config_forbids_extra(cls, value: type[BaseModel]) -> type[BaseModel]:
        if value.model_config.get("extra") != "forbid":
            raise ValueError(f"{value.__name__} must set model_config extra='forbid'")
        return value

    def load(self) -> Callable[..., Any]:
        """Return the factory, importing it if it was given as a string."""
        if callable(self.factory):
            return self.factory
        module_name, attribute = self.factory.split(":")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise PluginError(
                f"plugin {self.plugin!r}: {self.kind} {self.name!r} points at {self.factory!r}, "
                f"which could not be imported: {error}"
            ) from error

    def build(self, *args: Any, context: Any = None, **kwargs: Any) -> Any:
        """Call the factory; an unexpected exception becomes a PluginError naming this
        plugin and contribution, with the original traceback kept as its cause. A factory
        with a ``context`` parameter receives ``context`` (``omnitune.build.BuildContext``)."""
        factory = self.load()
        if context is not None and "context" in inspect.signature(factory).parameters:
            kwargs["context"] = context
        try:
            return factory(*args, **kwargs)
        except OmnituneError:
            raise
        except Exception as error:
            raise PluginError(
                f"plugin {self.plugin!r}: {self.kind} {self.name!r} failed to build "
                f"({self.factory_path}): {type(error).__name__}: {error}"
            ) from error

    @property
    def factory_path(self) -> str:
        """Where the factory lives, as ``module:attribute``."""
        if isinstance(self.factory, str):
            return self.factory
        return f"{getattr(self.factory, '__module__', '?')}:{getattr(self.factory, '__qualname__', '?')}"

    def validate_options(self, options: dict[str, Any], where: str) -> BaseModel:
        """Validate ``options`` against this contribution's config model."""
        try:
            return self.config.model_validate(options)
        except ValidationError as error:
            raise ConfigError(format_validation_error(error, prefix=where)) from error


class RegisterCallback(Protocol):
    """The ``register`` argument each registration hook receives."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        config: type[BaseModel] = ...,
        description: str = ...,
    ) -> None: ...


class Registry:
    """Holds every contribution by kind and name; filled through ``register`` callbacks."""

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, Contribution]] = {kind: {} for kind in KINDS}

    def add(self, contribution: Contribution) -> None:
        """Add one contribution; a name already taken is an error naming both plugins."""
        entries = self._entries[contribution.kind]
        existing = entries.get(contribution.name)
        if existing is not None:
            raise DuplicateNameError(
                f"{contribution.kind} {contribution.name!r} is registered by both plugin "
                f"{existing.plugin!r} and plugin {contribution.plugin!r}; rename one of them "
                "or disable a plugin with OMNITUNE_PLUGINS"
            )
        entries[contribution.name] = contribution

    def get(self, kind: Kind, name: str) -> Contribution:
        """Return the contribution called ``name``; an unknown name lists close matches."""
        entries = self._entries[kind]
        if name in entries:
            return entries[name]
        close = difflib.get_close_matches(name, entries, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        if len(entries) <= MAX_NAMES_LISTED:
            known = f" Registered {kind}s: {', '.join(sorted(entries)) or 'none'}."
        else:
            known = f" {len(entries)} {kind}s are registered; list them with `omnitune {kind}s`."
        raise UnknownNameError(f"unknown {kind} {shorten(name)}.{hint}{known}")

    def list(self, kind: Kind, pattern: str = "*") -> list[Contribution]:
        """Contributions of ``kind`` whose names match the shell-style ``pattern``."""
        return [c for name, c in sorted(self._entries[kind].items()) if fnmatch.fnmatch(name, pattern)]

    def callback(self, plugin: str, kind: Kind, staged: list[Contribution]) -> RegisterCallback:
        """A ``register`` callback for one plugin's hook; contributions are staged, not added."""

        def register(
            name: str,
            factory: Callable[..., Any] | str,
            *,
            config: type[BaseModel] = NoOptions,
            description: str = "",
        ) -> None:
            try:
                contribution = Contribution(
                    kind=kind, name=name, factory=factory, config=config,
                    plugin=plugin, description=description,
                )
            except ValidationError as error:
                raise PluginError(
                    f"invalid {kind} {name!r}: {format_validation_error(error)}"
                ) from error
            staged.append(contribution)

        return register


UNION_MEMBER_TAG = re.compile(r"(literal|function-\w+|dict|list|tuple|set)\[.*\]|constrained-\w+")
"""How pydantic names a union's member in an error's location (``literal['auto']``)."""


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per field: ``field.path: message (got value)``; a union's members' messages on one
    line (``train.batch_size: Input should be a valid integer; or: Input should be 'auto' (got
    'big')``)."""
    messages: dict[str, dict[str, None]] = {}
    shown: dict[str, str] = {}
    for problem in error.errors():
        parts = [str(part) for part in (prefix, *problem["loc"])]
        location = ".".join(p for p in parts if p and not UNION_MEMBER_TAG.fullmatch(p)) or "<root>"
        messages.setdefault(location, {})[problem["msg"]] = None
        got = problem.get("input")
        if problem["type"] != "missing" and not isinstance(got, dict):
            shown[location] = f" (got {shorten(got)})"
    return "\n".join(f"{location}: {'; or: '.join(found)}{shown.get(location, '')}"
                     for location, found in messages.items())
