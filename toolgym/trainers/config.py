"""Frozen config dataclasses: YAML in, ``--set key=value`` overrides, printed at run start.

Every trainer has one frozen dataclass (``GRPOConfig``, ``SFTConfig``) whose
fields carry their help text in ``metadata={"help": ...}`` (made by
:func:`option`), so ``--help``, the docs and the header printed at the start of
a run come from one source. Sections are nested dataclasses (``model``,
``optim``, ``rollout``, ``sampling``); a section that comes from elsewhere in
toolgym (``RolloutConfig``, ``SamplingParams``) documents its fields with a
docstring under each field, which :func:`field_help` reads too.

Loading is strict: an unknown key, in the YAML or in ``--set``, is a
:class:`~toolgym.errors.ConfigError` that names the closest valid key; a value
of the wrong type is an error naming the key and the expected type. Nothing is
``setattr``-ed on the fly.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     lr: float = option(1e-3, "peak learning rate")
    >>> from_dict(Demo, {"lr": "3e-4"}).lr
    0.0003
    >>> from_dict(Demo, {"lrr": 1.0})
    Traceback (most recent call last):
    ...
    toolgym.errors.ConfigError: Unknown config key 'lrr'. Did you mean 'lr'? Valid keys: lr.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from toolgym.errors import ConfigError

__all__ = [
    "apply_overrides",
    "field_help",
    "format_config",
    "from_dict",
    "load_config",
    "option",
    "require_unit_interval",
    "to_dict",
    "dump_yaml",
]

C = TypeVar("C")
_MISSING: Any = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, factory: Any = _MISSING) -> Any:
    """A dataclass field with its help text (``metadata={"help": ...}``).

    Args:
        default: The default value (immutable values only).
        help: One or two sentences: what the field does and when to change it.
        factory: A zero-argument callable for mutable or nested defaults.
    """
    if factory is not _MISSING:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def require_unit_interval(config: Any, *names: str) -> None:
    """Raise :class:`ConfigError` unless every field ``names`` of ``config`` is in [0, 1].

    For discounts and GAE lambdas, which every trainer with a critic has.

    Example:
        >>> from types import SimpleNamespace
        >>> require_unit_interval(SimpleNamespace(gamma=1.0, lam=1.5), "gamma", "lam")
        Traceback (most recent call last):
        ...
        toolgym.errors.ConfigError: Need 0 <= gamma <= 1 and 0 <= lam <= 1; got 1.0, 1.5.
    """
    values = [getattr(config, n) for n in names]
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"Need {' and '.join(f'0 <= {n} <= 1' for n in names)}; got "
                          f"{', '.join(str(v) for v in values)}.")


# ------------------------------------------------------------------ help text
@functools.cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written under fields (``x: int = 1`` then ``\"\"\"doc\"\"\"``), by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def field_help(cls: type) -> dict[str, str]:
    """Help text of every field of dataclass ``cls``: ``metadata["help"]``, else its docstring."""
    docs = _attribute_docs(cls)
    return {f.name: f.metadata.get("help") or docs.get(f.name, "") for f in dataclasses.fields(cls)}


# ------------------------------------------------------------------- loading
def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unknown_key(key: str, valid: Sequence[str], prefix: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    hint = f" Did you mean {prefix + close[0]!r}?" if close else ""
    return ConfigError(
        f"Unknown config key {prefix + key!r}.{hint} Valid keys: "
        f"{', '.join(prefix + v for v in valid)}."
    )


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


def from_dict(cls: type[C], data: Mapping[str, Any], *, base: C | None = None,
              prefix: str = "") -> C:
    """Build dataclass ``cls`` from a (nested) mapping, checking keys and types.

    Args:
        cls: A dataclass type.
        data: Field values; nested sections are mappings.
        base: Values for the fields ``data`` leaves out; default: the field defaults.
        prefix: Dotted path of this section, for error messages.

    Raises:
        ConfigError: an unknown key (with a did-you-mean), a value of the wrong
            type, a missing required value, or a failed ``__post_init__`` check.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"Config section {prefix.rstrip('.') or '<root>'} must be a mapping, "
                          f"got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            raise _unknown_key(str(key), list(fields), prefix)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        current = getattr(base, name) if base is not None else _default(f)
        if name not in data:
            if current is _MISSING:
                raise ConfigError(f"Config key {prefix + name!r} is required.")
            kwargs[name] = current
            continue
        tp = hints[name]
        if _is_section(tp):
            kwargs[name] = from_dict(tp, data[name], base=None if current is _MISSING else current,
                                     prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(data[name], tp, prefix + name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid config {prefix.rstrip('.') or cls.__name__}: {exc}") from exc


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where YAML is loose (str -> float)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, args))}; got {value!r}.")
        return value
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list; got {value!r}.")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping; got {value!r}.")
        return dict(value)
    return _coerce_scalar(value, tp, key)


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "1e-3" as a string
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise ConfigError(f"{key} must be {tp.__name__}; got {value!r} ({type(value).__name__}).")


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (e.g. optim.lr=3e-4); got {item!r}.")
    key, raw = item.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(cls: type, data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Merge ``--set a.b=value`` items into ``data`` (values parsed as YAML).

    Raises:
        ConfigError: a malformed item or an unknown key (with a did-you-mean).
    """
    merged: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        path, value = _parse_override(item)
        section, node, prefix = cls, merged, ""
        for i, part in enumerate(path):
            if not _is_section(section):
                raise ConfigError(f"{prefix.rstrip('.')} is not a section; cannot set {item!r}.")
            names = [f.name for f in dataclasses.fields(section)]
            if part not in names:
                raise _unknown_key(part, names, prefix)
            if i == len(path) - 1:
                node[part] = value
                break
            section = typing.get_type_hints(section)[part]
            node = node.setdefault(part, {}) if _is_section(section) else node
            prefix += part + "."
    return merged


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def load_config(cls: type[C], path: str | Path | None = None,
                overrides: Sequence[str] = ()) -> C:
    """Read ``cls`` from a YAML file (or defaults when ``path`` is None), then apply ``--set``s.

    Raises:
        ConfigError: unreadable YAML, an unknown key or a bad value.
    """
    data: Any = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"Cannot read config {path}: {exc}") from exc
    return from_dict(cls, apply_overrides(cls, data, overrides))


# ------------------------------------------------------------------- writing
def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain YAML-ready values (tuples become lists)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(config)


def dump_yaml(config: Any, path: str | Path | None = None) -> str:
    """The config as YAML (that :func:`load_config` reads back); written to ``path`` if given."""
    text = yaml.safe_dump(to_dict(config), sort_keys=False)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def format_config(config: Any, *, indent: int = 0) -> str:
    """Every field with its value and help text: the header printed at the start of a run."""
    lines = []
    helps = field_help(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        pad = " " * indent
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:")
            lines.append(format_config(value, indent=indent + 2))
            continue
        shown = yaml.safe_dump(to_dict(value), default_flow_style=True, width=10_000).strip()
        shown = shown.removesuffix("\n...").removesuffix("...").strip()
        note = f"  # {helps[f.name]}" if helps.get(f.name) else ""
        lines.append(f"{pad}{f.name}: {shown}{note}")
    return "\n".join(lines)
