"""JSON schemas for tool parameters: built from Python types, checked against calls.

A model sees a tool as an OpenAI-style JSON schema. This module turns a typed
function signature plus its Google-style docstring into that schema, and checks
the arguments of a call against it. Checking is deliberately strict, because a
silently coerced argument (``"3"`` becoming ``3``) teaches the policy that a
wrong call works: the only conversion is an integer given for a ``number``
parameter, which becomes a float. Every problem is named in the message, with
the expected signature, so the agent can fix its call.

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``list[T]``,
``dict`` / ``dict[str, T]``, ``Literal[...]`` and ``T | None`` (``Optional``).
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from toolgym.errors import BadArguments

JSONSchema = dict[str, Any]

_SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_PY_NAMES = {
    "string": "str", "integer": "int", "number": "float", "boolean": "bool",
    "array": "list", "object": "dict", "null": "None",
}
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Yields|Raises|Examples?|Notes?|"
                      r"Attributes|See Also|Warnings?|Todo)\s*:\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def type_to_schema(annotation: Any) -> JSONSchema:
    """Return the JSON schema of a Python type annotation.

    Raises:
        TypeError: the annotation has no JSON counterpart (say which, so the
            tool author can change it).

    Example:
        >>> type_to_schema(list[int])
        {'type': 'array', 'items': {'type': 'integer'}}
        >>> type_to_schema(Literal["a", "b"])
        {'type': 'string', 'enum': ['a', 'b']}
    """
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is list or origin is list:
        return {"type": "array", "items": type_to_schema(args[0])} if args else {"type": "array"}
    if annotation is dict or origin is dict:
        if args and args[0] is not str:
            raise TypeError(f"JSON object keys are strings; use dict[str, ...], not {annotation}")
        if len(args) == 2:
            return {"type": "object", "additionalProperties": type_to_schema(args[1])}
        return {"type": "object"}
    if origin is Literal:
        kinds = {_SCALARS.get(type(v)) for v in args}
        if None in kinds:
            raise TypeError(f"Literal values must be str, int, float or bool: {annotation}")
        schema: JSONSchema = {"enum": list(args)}
        return {"type": kinds.pop(), **schema} if len(kinds) == 1 else schema
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) != 1 or len(args) != 2:
            raise TypeError(f"only `T | None` unions are supported, not {annotation}")
        inner = type_to_schema(members[0])
        if "type" in inner:
            inner["type"] = [inner["type"], "null"]
        if "enum" in inner:
            inner["enum"] = [*inner["enum"], None]
        return inner
    raise TypeError(
        f"no JSON schema for the annotation {annotation!r}; use str, int, float, bool, "
        "list[T], dict[str, T], Literal[...] or T | None"
    )


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and ``Args:`` entries.

    The description is everything before the first section header, with its
    paragraphs kept. Each ``Args:`` entry may continue on more-indented lines.

    Example:
        >>> parse_docstring('''Add numbers.
        ...
        ...     Args:
        ...         a: The first one.
        ...         b (int): The second
        ...             one.
        ...     ''')
        ('Add numbers.', {'a': 'The first one.', 'b': 'The second one.'})
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    indent = 0
    for line in lines:
        header = _SECTION.match(line.strip()) if not line.startswith(" ") else None
        if header:
            section, current = header.group(1), None
            continue
        if section is None:
            description.append(line)
        elif section in ("Args", "Arguments", "Parameters") and line.strip():
            this_indent = len(line) - len(line.lstrip())
            match = _ARG_LINE.match(line.strip())
            if match and (current is None or this_indent <= indent):
                current, indent = match.group(1).lstrip("*"), this_indent
                args[current] = match.group(2).strip()
            elif current is not None:
                args[current] = f"{args[current]} {line.strip()}".strip()
    return "\n".join(description).strip(), args


def function_parameters(fn: Callable[..., Any], *, skip: int = 0) -> JSONSchema:
    """Build the ``parameters`` object schema of ``fn`` from its signature and docstring.

    Args:
        fn: A function with type annotations on every parameter it exposes.
        skip: Leading parameters that are not the model's to give (the sandbox).

    Raises:
        TypeError: a parameter lacks an annotation, is ``*args``/``**kwargs``,
            or the docstring documents a parameter that does not exist.
    """
    params = list(inspect.signature(fn).parameters.values())[skip:]
    hints = typing.get_type_hints(fn)
    _, docs = parse_docstring(fn.__doc__)
    properties: dict[str, JSONSchema] = {}
    required: list[str] = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{fn.__name__}: *args/**kwargs cannot be described to a model")
        if p.name not in hints:
            raise TypeError(f"{fn.__name__}: parameter {p.name!r} needs a type annotation")
        prop = type_to_schema(hints[p.name])
        if p.name in docs:
            prop["description"] = docs[p.name]
        if p.default is p.empty:
            required.append(p.name)
        else:
            prop["default"] = p.default
        properties[p.name] = prop
    stale = sorted(set(docs) - set(properties))
    if stale:
        raise TypeError(f"{fn.__name__}: the docstring documents unknown parameters {stale}")
    schema: JSONSchema = {"type": "object", "properties": properties, "required": required}
    return schema


def type_name(schema: Mapping[str, Any]) -> str:
    """Python-style name of a schema's type, used in messages to the agent.

    Example:
        >>> type_name({"type": "array", "items": {"type": "string"}})
        'list[str]'
    """
    if "enum" in schema:
        return "one of " + ", ".join(_json_repr(v) for v in schema["enum"])
    kinds = schema.get("type")
    if kinds is None:
        return "any"
    if isinstance(kinds, list):
        return " | ".join(type_name({**schema, "type": k}) for k in kinds)
    name = _PY_NAMES.get(kinds, kinds)
    if kinds == "array" and "items" in schema:
        return f"list[{type_name(schema['items'])}]"
    return name


def signature(name: str, parameters: Mapping[str, Any]) -> str:
    """The call signature a model should use, e.g. ``bash(command: str, timeout: int = 10)``."""
    props: Mapping[str, Any] = parameters.get("properties", {})
    required = set(parameters.get("required", []))
    parts = []
    for pname, prop in props.items():
        part = f"{pname}: {type_name(prop)}"
        if pname not in required:
            part += f" = {_json_repr(prop.get('default'))}"
        parts.append(part)
    return f"{name}({', '.join(parts)})"


def validate_arguments(
    tool_name: str, parameters: Mapping[str, Any], arguments: Any
) -> dict[str, Any]:
    """Check ``arguments`` against a tool's parameter schema and return them.

    Integers given for ``number`` parameters become floats; nothing else is
    converted. Defaults are not filled in (the tool applies its own).

    Raises:
        BadArguments: listing every problem found and the expected signature.

    Example:
        >>> schema = {"type": "object", "properties": {"x": {"type": "number"}},
        ...           "required": ["x"]}
        >>> validate_arguments("f", schema, {"x": 2})
        {'x': 2.0}
    """
    sig = signature(tool_name, parameters)
    if not isinstance(arguments, dict):
        raise BadArguments(
            f"The arguments of `{tool_name}` must be a JSON object of named arguments, "
            f"not {_kind(arguments)}. Expected: {sig}"
        )
    props: Mapping[str, Any] = parameters.get("properties", {})
    problems: list[str] = []
    for missing in [r for r in parameters.get("required", []) if r not in arguments]:
        problems.append(f"missing required argument `{missing}` ({type_name(props[missing])})")
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if key not in props:
            close = difflib.get_close_matches(key, list(props), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            problems.append(f"unexpected argument `{key}`{hint}")
            continue
        try:
            out[key] = check_value(props[key], value, key)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise BadArguments(
            f"Bad arguments for `{tool_name}`: {'; '.join(problems)}. Expected: {sig}"
        )
    return out


def check_value(schema: Mapping[str, Any], value: Any, where: str) -> Any:
    """Check one value against a (sub)schema; return it, ints for floats converted.

    Raises:
        ValueError: a message naming ``where`` and what was expected.
    """
    if "enum" in schema:
        # bool is an int in Python; keep `True` from matching an enum value of 1
        if not any(value == v and type(value) is type(v) for v in schema["enum"]):
            raise ValueError(f"`{where}` must be {type_name(schema)}, got {_json_repr(value)}")
        return value
    kinds = schema.get("type")
    if kinds is None:
        return value
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if _is_kind(value, kind):
            return _check_inside(schema, kind, value, where)
    raise ValueError(f"`{where}` must be {type_name(schema)}, got {_kind(value)}")


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    return checks.get(kind, lambda v: True)(value)


def _check_inside(schema: Mapping[str, Any], kind: str, value: Any, where: str) -> Any:
    if kind == "number":
        return float(value)
    if kind == "array" and "items" in schema:
        return [check_value(schema["items"], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for req in schema.get("required", []):
            if req not in value:
                raise ValueError(f"`{where}` is missing the key {req!r}")
        out = {}
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is None and extra is False:
                raise ValueError(f"`{where}` has an unexpected key {k!r}")
            out[k] = check_value(sub, v, f"{where}[{k!r}]") if sub is not None else v
        return out
    return value


def _kind(value: Any) -> str:
    """How a JSON value of the wrong type is described to the agent: type and value."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    desc = names.get(type(value), type(value).__name__)
    if isinstance(value, list | dict):
        return desc
    return f"{desc} ({_json_repr(value)})"


def _json_repr(value: Any) -> str:
    """A short JSON rendering of a value for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
