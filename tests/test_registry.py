"""Registry errors: duplicates name both plugins, unknown names suggest close matches."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from omnitune.errors import DuplicateNameError, PluginError, UnknownNameError
from omnitune.registry import Contribution, Registry


def contribution(name: str, plugin: str, kind: str = "task") -> Contribution:
    return Contribution(kind=kind, name=name, factory="pkg.module:build", plugin=plugin)


def test_duplicate_name_names_both_plugins() -> None:
    registry = Registry()
    registry.add(contribution("image-classification", "vision"))
    with pytest.raises(DuplicateNameError, match="'vision' and plugin 'acme'"):
        registry.add(contribution("image-classification", "acme"))


def test_same_name_in_different_kinds_is_allowed() -> None:
    registry = Registry()
    registry.add(contribution("bert", "text", kind="backbone"))
    registry.add(contribution("bert", "text", kind="dataset"))
    assert registry.get("dataset", "bert").kind == "dataset"


def test_unknown_name_lists_close_matches() -> None:
    registry = Registry()
    for name in ("text-classification", "image-classification", "speech-recognition"):
        registry.add(contribution(name, "x"))
    with pytest.raises(UnknownNameError) as raised:
        registry.get("task", "text-clasification")
    message = str(raised.value)
    assert "Did you mean: text-classification" in message
    assert "speech-recognition" in message  # the full list follows


def test_list_filters_with_shell_patterns() -> None:
    registry = Registry()
    for name in ("text-classification", "text-regression", "image-classification"):
        registry.add(contribution(name, "x"))
    assert [c.name for c in registry.list("task", "text-*")] == ["text-classification", "text-regression"]
    assert len(registry.list("task")) == 3


def test_contributions_are_validated() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        contribution_factory = Contribution(kind="task", name="ok", factory="no-colon", plugin="p")
        del contribution_factory

    class Loose(BaseModel):
        scale: float = 1.0

    with pytest.raises(ValueError, match="extra='forbid'"):
        Contribution(kind="task", name="ok", factory="a:b", plugin="p", config=Loose)


def test_lazy_factory_that_cannot_import_names_the_plugin() -> None:
    broken = Contribution(kind="head", name="ghost", factory="no_such_module:build", plugin="acme")
    with pytest.raises(PluginError, match="plugin 'acme': head 'ghost'"):
        broken.load()
