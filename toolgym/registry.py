"""Names a config may use and what each one names: one registry for every kind of them.

Sandbox backends (``sandbox.backend``), trainers (``algorithm``) and the outcome
and turn-level estimators are each a :class:`Registry`, so all four refuse a
name that is taken, answer an unknown name with close matches and the valid
names, and, where an entry is a ``"module:attr"`` string, import it only when
it is used (:func:`load`): naming one backend or algorithm loads only its
module.

Example:
    >>> colours = Registry("colour")
    >>> colours.add("red", "colorsys:rgb_to_hsv")
    >>> load(colours.lookup("red")).__name__
    'rgb_to_hsv'
    >>> colours.lookup("rad")
    Traceback (most recent call last):
    ...
    toolgym.errors.ConfigError: Unknown colour 'rad'. Did you mean 'red'? Valid names: red.
"""

from __future__ import annotations

import copy
import difflib
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from toolgym.errors import ConfigError

__all__ = ["Registry", "load"]

T = TypeVar("T")


class Registry(dict[str, T]):
    """Entries by config name, in the order they were added.

    Args:
        kind: What its entries are called in messages (``"sandbox backend"``).
        note: Appended to the message for an unknown name (where else to look).
        identity: What must match for a second :meth:`add` of a name to be the
            same entry again (default: the entry itself), not a clash.
    """

    def __init__(self, kind: str, *, note: str = "",
                 identity: Callable[[T], object] = lambda entry: entry) -> None:
        super().__init__()
        self.kind = kind
        self.note = note
        self._identity = identity

    def add(self, name: str, entry: T) -> None:
        """Register ``entry`` as ``name`` (again with the same entry: it is replaced).

        Raises:
            ConfigError: ``name`` is taken by another entry.
        """
        name = str(name)  # a StrEnum member's value, so messages show the plain name
        old = self.get(name)
        if old is not None and self._identity(old) != self._identity(entry):
            raise ConfigError(f"{self.kind} {name!r} is already registered "
                              f"({self._identity(old)!r})")
        self[name] = entry

    def lookup(self, name: str) -> T:
        """The entry of ``name``.

        Raises:
            ConfigError: ``name`` is not registered; the message has close matches
                and every valid name.
        """
        entry = self.get(str(name))
        if entry is None:
            close = difflib.get_close_matches(str(name), list(self), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            note = f" {self.note}" if self.note else ""
            raise ConfigError(f"Unknown {self.kind} {name!r}.{hint} Valid names: "
                              f"{', '.join(self)}.{note}")
        return entry

    def copy(self) -> Registry[T]:
        """A registry of this kind with the same entries (``dict.copy`` gives a plain dict)."""
        return copy.copy(self)


def load(entry: str | Any) -> Any:
    """What a ``"module:attr"`` entry names (its module imported now), or the entry itself."""
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)
