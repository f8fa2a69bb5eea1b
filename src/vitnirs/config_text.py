"""A pydantic schema in words: one line per validation error, and a Markdown reference.

Used by :mod:`vitnirs.config` for its error messages (the dotted key, the bad value and what
is allowed) and for ``docs/configuration.md``; both read the same annotations, bounds and
choices, so the docs and the errors cannot disagree.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def reference_markdown(title: str, intro: list[str], sections: list[tuple[str, type[BaseModel]]]) -> str:
    """A Markdown reference: per section a table of key, type, default, allowed values, meaning."""
    lines = [f"# {title}", "", *intro]
    for name, model in sections:
        lines += ["", f"## `{name}`", "", (model.__doc__ or "").strip(), ""]
        lines += ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for key, field in model.model_fields.items():
            info = _field_info(field)
            kind = f"list of {info['item']['kind']}" if info["item"] is not None else info["kind"]
            kind += " or null" if info["nullable"] else ""
            default = (
                "required"
                if field.is_required()
                else _yaml_scalar(field.get_default(call_default_factory=True))
            )
            cells = [f"`{key}`", kind, f"`{default}`", _allowed(info), field.description or ""]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def _inspect(annotation: Any) -> dict[str, Any]:
    """Kind, bounds, choices and nullability of a field's annotation."""
    info: dict[str, Any] = {"nullable": False, "bounds": [], "choices": None, "item": None}
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType) and type(None) in get_args(annotation):
        inner = next(a for a in get_args(annotation) if a is not type(None))
        return {**_inspect(inner), "nullable": True}
    if origin is Annotated:
        base, *extras = get_args(annotation)
        info = _inspect(base)
        for extra in extras:
            info["bounds"] += _bounds(extra.metadata if isinstance(extra, FieldInfo) else [extra])
        return info
    if origin is Literal:
        return {**info, "kind": "str", "choices": list(get_args(annotation))}
    if origin is list:
        return {**info, "kind": "list", "item": _inspect(get_args(annotation)[0])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {**info, "kind": "{" + ", ".join(annotation.model_fields) + "}"}
    return {**info, "kind": getattr(annotation, "__name__", str(annotation))}


def _bounds(metadata: Sequence[Any]) -> list[str]:
    ops = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return [f"{sym} {getattr(m, op):g}" for m in metadata for op, sym in ops.items() if hasattr(m, op)]


def _field_info(field: FieldInfo) -> dict[str, Any]:
    info = _inspect(field.annotation)
    info["bounds"] = _bounds(field.metadata) + info["bounds"]
    info["min"] = next((m.min_length for m in field.metadata if hasattr(m, "min_length")), 0)
    return info


def _allowed(info: dict[str, Any]) -> str:
    """What a value may be, for docs: '> 0 and < 1', 'one of: a, b', ''."""
    if info["item"] is not None:
        text = _allowed(info["item"])
        parts = [f"each {text}" if text else "", f"at least {n} item" if (n := info.get("min")) else ""]
        text = "; ".join(p for p in parts if p)
    elif info["choices"]:
        text = "one of: " + ", ".join(str(c) for c in info["choices"])
    else:
        text = " and ".join(info["bounds"])
    return f"{text} or null" if text and info["nullable"] else text


def _requirement(info: dict[str, Any]) -> str:
    """What a value must be, for error messages."""
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
    if info["item"] is not None:
        kind = "a list" + (f" ({_allowed(info)})" if _allowed(info) else "")
    elif info["choices"]:
        kind = _allowed({**info, "nullable": False})
    else:
        kind = " ".join(p for p in (names.get(info["kind"], info["kind"]), " and ".join(info["bounds"])) if p)
    return f"must be {kind}" + (", or null" if info["nullable"] else "")


def _dotted(loc: Sequence[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def explain_error(err: dict[str, Any], root: type[BaseModel]) -> str:
    """One line for one pydantic error of ``root``: dotted key, bad value, what is allowed."""
    loc, kind = tuple(err["loc"]), err["type"]
    key = _dotted(loc)
    model: Any = root
    field = None
    for part in loc:  # walk the schema along the error's location
        if isinstance(part, int) or model is None or part not in model.model_fields:
            continue
        field = model.model_fields[part]
        model = _model_in(field.annotation)
    if kind == "extra_forbidden":
        parent, name = _dotted(loc[:-1]), loc[-1]
        allowed = ", ".join(model.model_fields) if model is not None else ""
        if not parent:
            return f"unknown section '{name}'; allowed: {allowed}"
        return f"{key}: unknown key '{name}' in section '{parent}'; allowed: {allowed}"
    if kind == "missing":
        return f"{key}: required"
    if kind == "value_error":
        message = str(err["ctx"]["error"])
        return message if len(loc) == 1 else f"{key}: {message}"  # section-level checks name their keys
    if kind == "model_type":
        return f"{key}: got {err['input']!r}; must be a mapping of keys to values"
    if field is None:
        return f"{key}: {err['msg']}"
    info = _field_info(field)
    if isinstance(loc[-1], int) and info["item"] is not None:  # one bad item of a list
        info = info["item"]
    return f"{key}: got {err['input']!r}; {_requirement(info)}"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation (``DeclarationRule`` in ``list[DeclarationRule]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None
