"""Describe options models for people: each field's type, default, constraints and description.

Used by ``omnitune tasks NAME --options`` (and the other listings) and to generate
docs/config.md, so the documentation of every option comes from the model that validates it.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

CONSTRAINTS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "min length",
               "max_length": "max length", "pattern": "matches"}


def describe_options(model: type[BaseModel], prefix: str = "",
                     defaults: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per field (nested models expanded as ``section.field``): name, type, default,
    constraints and description. ``defaults`` overrides the fields' own (a nested default)."""
    rows: list[dict[str, Any]] = []
    for name, field in model.model_fields.items():
        default = (defaults or {}).get(name, _default(field))
        nested = _nested_model(field.annotation)
        if nested is not None:
            inner = default if isinstance(default, dict) else None
            rows += describe_options(nested, prefix=f"{prefix}{name}.", defaults=inner)
            continue
        rows.append({"name": prefix + name, "type": type_name(field.annotation), "default": default,
                     "constraints": constraints_of(field), "description": field.description or ""})
    return rows


def type_name(annotation: Any) -> str:
    """A short readable type: ``int``, ``float | None``, ``'constant' | 'linear'``, ``list[str]``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(value) for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:  # a constrained union member; constraints_of shows the bounds
        return type_name(typing.get_args(annotation)[0])
    if origin is not None:
        arguments = ", ".join(type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{arguments}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def constraints_of(field: FieldInfo) -> list[str]:
    """``['>= 1', '< 1']`` from the field's annotated constraints, a union member's included
    (``Annotated[int, Field(ge=1)] | Literal['auto']``)."""
    found, members = [], typing.get_args(field.annotation)
    member_items = [inner for member in members for item in getattr(member, "__metadata__", ())
                    for inner in getattr(item, "metadata", [item])]
    for item in [*field.metadata, *member_items]:
        for attribute, symbol in CONSTRAINTS.items():
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(f"{symbol} {value}")
    return found


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| option | type | default | constraints | description |", "|---|---|---|---|---|"]
    for row in rows:
        cells = [f"`{row['name']}`", _code(row["type"]), _code(_shown(row["default"])),
                 ", ".join(row["constraints"]), row["description"]]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def text_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned plain text, one option per line."""
    if not rows:
        return "  (no options)"
    width = max(len(row["name"]) for row in rows)
    lines = []
    for row in rows:
        extra = f" ({', '.join(row['constraints'])})" if row["constraints"] else ""
        lines.append(f"  {row['name']:<{width}}  {row['type']} = {_shown(row['default'])}{extra}"
                     f"  {row['description']}".rstrip())
    return "\n".join(lines)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return "required" if field.default is PydanticUndefined else field.default


def _shown(value: Any) -> str:
    if value == "required":
        return "required"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def _code(text: str) -> str:
    return f"`{text}`" if text else ""
