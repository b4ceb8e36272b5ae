"""What a task template produces, and how it becomes a stub, a reference program and tests.

A template is a function ``(rng) -> Spec``: it draws the constants that make
one task differ from its siblings (a shift amount, a separator, a threshold),
and writes the reference function body with those constants inlined. The
expected outputs are never written by hand: :func:`render` runs the reference
on the drawn inputs and records what it returns, so a reference solution is
correct by construction and the tests only have to agree with it.
"""

from __future__ import annotations

import copy
import random
import string
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Case", "Degenerate", "Rendered", "Spec", "Template", "render"]


@dataclass(frozen=True)
class Spec:
    r"""One drawn task, before rendering.

    Attributes:
        template: ``"<family>.<template>"``, e.g. ``"strings.caesar"``.
        key: The drawn constants; two specs of one template with equal keys
            are the same task.
        difficulty: 1 (one idea, a few lines) to 3 (a loop with state or an
            algorithm a beginner gets wrong).
        name: The function name (the entry point).
        params: The parameter list, e.g. ``"text: str, k: int"``.
        returns: The return annotation, e.g. ``"list[int]"``.
        doc: What the function must do, in prose (examples are added by
            :func:`render`).
        body: The reference body, indented by four spaces.
        inputs: Argument tuples to test with; the first ones with distinct
            outputs become the docstring examples.
        imports: Lines placed above the function (``"import math\\n"``).
    """

    template: str
    key: tuple[Any, ...]
    difficulty: int
    name: str
    params: str
    returns: str
    doc: str
    body: str
    inputs: list[tuple[Any, ...]]
    imports: str = ""

    @property
    def family(self) -> str:
        """The family, the part of :attr:`template` before the dot."""
        return self.template.split(".", 1)[0]


Template = Callable[[random.Random], Spec]


@dataclass(frozen=True)
class Case:
    """One test case: the argument values and the value the reference returned."""

    values: tuple[Any, ...]
    expected: Any

    @property
    def args(self) -> str:
        """The arguments as source text, e.g. ``"'abc', 3"``."""
        return ", ".join(repr(value) for value in self.values)


@dataclass(frozen=True)
class Rendered:
    """A spec turned into source text, plus the compiled reference for comparisons."""

    stub: str
    reference_program: str
    canonical_solution: str
    test: str
    cases: list[Case]
    function: Callable[..., Any]


class Degenerate(ValueError):
    """The drawn inputs do not tell a right answer from a constant one; draw again."""


_ALLOWED = (bool, int, str, type(None))
N_EXAMPLES = 2
MAX_EXAMPLE = 72  # characters of arguments plus result, so examples fit on a line


def render(spec: Spec) -> Rendered:
    """Run the reference on the inputs and write the stub, program and ``check`` source.

    Raises:
        Degenerate: Fewer than two distinct outputs, so a function returning a
            constant could pass.
        TypeError: The reference returned a value whose ``repr`` does not
            round-trip exactly (a float, a set): a bug in the template.
    """
    function = _compile(spec.imports + _header(spec) + spec.body, spec.name)
    inputs = list({repr(args): args for args in reversed(spec.inputs)}.values())[::-1]
    cases = [Case(args, _checked(function(*copy.deepcopy(args)), spec)) for args in inputs]
    if len({repr(case.expected) for case in cases}) < 2:
        raise Degenerate(f"{spec.template} {spec.key}: all outputs equal")
    stub = spec.imports + _header(spec) + _docstring(spec, _examples(cases))
    reference_program = stub + spec.body
    final = _compile(reference_program, spec.name)
    for case in cases:  # the docstring must not have changed behaviour
        if final(*copy.deepcopy(case.values)) != case.expected:
            raise AssertionError(f"{spec.template}: reference disagrees with itself on {case.args}")
    test = "def check(candidate):\n" + "".join(
        f"    assert candidate({case.args}) == {case.expected!r}\n" for case in cases
    )
    return Rendered(stub, reference_program, spec.body, test, cases, final)


def _header(spec: Spec) -> str:
    return f"def {spec.name}({spec.params}) -> {spec.returns}:\n"


def _docstring(spec: Spec, examples: list[Case]) -> str:
    paragraphs = [textwrap.fill(p, width=76) for p in spec.doc.strip().split("\n\n")]
    lines = "\n\n".join(paragraphs).splitlines()
    for case in examples:
        lines += [f">>> {spec.name}({case.args})", repr(case.expected)]
    text = "\n".join(lines)
    return textwrap.indent(f'"""{text}\n"""\n', "    ")


def _examples(cases: list[Case]) -> list[Case]:
    """Pick the first informative cases: distinct, short, and not an echo of an input."""

    def informative(case: Case) -> bool:
        value = case.expected
        if not isinstance(value, bool) and value in ("", [], {}, 0, None):
            return False
        return all(value != arg for arg in case.values)

    useful = [case for case in cases if informative(case)]
    short = [case for case in useful if len(case.args) + len(repr(case.expected)) <= MAX_EXAMPLE]
    chosen: list[Case] = []
    for case in short or useful or cases:
        if all(repr(case.expected) != repr(c.expected) for c in chosen):
            chosen.append(case)
        if len(chosen) == N_EXAMPLES:
            break
    return chosen


def _checked(value: Any, spec: Spec) -> Any:
    """Reject values whose ``repr`` would not read back equal (floats, sets)."""
    if isinstance(value, list | tuple):
        for item in value:
            _checked(item, spec)
    elif isinstance(value, dict):
        for item in (*value.keys(), *value.values()):
            _checked(item, spec)
    elif not isinstance(value, _ALLOWED):
        raise TypeError(f"{spec.template}: output {value!r} of type {type(value).__name__}")
    return value


def _compile(source: str, name: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 - our own template
    function: Callable[..., Any] = namespace[name]
    return function


# ---------------------------------------------------------------- input helpers


def word(
    rng: random.Random, lo: int = 2, hi: int = 8, alphabet: str = string.ascii_lowercase
) -> str:
    """A random word of ``lo..hi`` letters."""
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def sentence(rng: random.Random, lo: int = 0, hi: int = 7, max_len: int = 9) -> str:
    """Random words joined by single spaces (``lo..hi`` words)."""
    return " ".join(word(rng, 1, max_len) for _ in range(rng.randint(lo, hi)))


def ints(rng: random.Random, lo_len: int, hi_len: int, lo: int = -9, hi: int = 20) -> list[int]:
    """A random list of ``lo_len..hi_len`` integers in ``[lo, hi]``."""
    return [rng.randint(lo, hi) for _ in range(rng.randint(lo_len, hi_len))]


def pick_name(rng: random.Random, *names: str) -> str:
    """Choose one of several names a human would give the function."""
    return rng.choice(names)
