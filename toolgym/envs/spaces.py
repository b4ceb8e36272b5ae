"""Text spaces for tool environments.

Gymnasium's :class:`~gymnasium.spaces.Text` only admits characters of a fixed
charset (alphanumerics by default). Model output and tool results are any
Unicode text, so :class:`AnyText` admits every string up to a length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.spaces import Text

PRINTABLE = "".join(chr(c) for c in range(32, 127)) + "\n\t"


class AnyText(Text):
    r"""Any ``str`` of at most ``max_length`` characters; samples printable ASCII.

    Example:
        >>> AnyText(100).contains("héllo <tool_call>{}</tool_call>\n")
        True
    """

    def __init__(
        self, max_length: int = 1_000_000, *, seed: int | np.random.Generator | None = None
    ) -> None:
        super().__init__(max_length=max_length, min_length=0, charset=PRINTABLE, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"AnyText({self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, AnyText) and other.max_length == self.max_length
