"""A small, safe arithmetic evaluator: exact rational arithmetic over a whitelisted syntax tree.

This file is used twice. The ``calc`` tool sends its *source* to the sandbox
and runs it there with ``python3 -I -S -c SOURCE EXPRESSION`` (so the image
needs only python3, not toolgym); and the verifier imports it on the host to
compute the exact value of a task's expression, without trusting anything the
sandbox printed.

Every call of the tool starts a Python process, so the sandbox path imports
only modules compiled into the interpreter (``sys``, ``math``, ``_ast``): the
tree comes from ``compile(..., PyCF_ONLY_AST)`` (what :func:`ast.parse` does,
without importing :mod:`ast`) and values are exact ``(numerator,
denominator)`` pairs instead of :class:`fractions.Fraction`, whose imports
(``decimal``, ``re``, ``numbers``…) cost several times the interpreter's
start-up. Only :func:`evaluate`, used on the host, builds a ``Fraction``.

What is allowed: numbers (integers and decimals, no ``True``/``False``, no
complex numbers), unary ``+``/``-``, the binary operators
``+ - * / // % **`` and parentheses. Everything else (names, calls,
attributes, subscripts, strings, ``^``…) is refused with a message, so
``__import__('os').system(...)`` is an error text, never code that runs.
Arithmetic is exact: ``/`` gives a fraction, not a float. Sizes are bounded
before work is done: an expression longer than :data:`MAX_LENGTH`
characters, an exponent over :data:`MAX_EXPONENT`, a power whose result would
be too big and any value with more than :data:`MAX_DIGITS` digits are refused
at once, so ``9**9**9**9`` answers in microseconds instead of eating the
sandbox's memory.

Example:
    >>> evaluate("347 * 29")
    Fraction(10063, 1)
    >>> calculate("(1 + 2) / 4")
    '0.75'
    >>> calculate("__import__('os').system('id')")
    'Error: only numbers, + - * / // % ** and parentheses are allowed (found a function call)'
"""

import _ast
import math
import sys

MAX_LENGTH = 200
"""Longest expression accepted, in characters."""
MAX_DIGITS = 100
"""Largest number (numerator or denominator) a value may have, in decimal digits."""
MAX_EXPONENT = 1000
"""Largest exponent ``**`` accepts (a further size check bounds the result)."""
DECIMALS = 10
"""Digits after the point shown for a value that is not an integer."""

Rational = tuple[int, int]
"""``(numerator, denominator)`` in lowest terms, denominator > 0."""

_LIMIT = 10**MAX_DIGITS
_FOUND = {
    _ast.Name: "a name",
    _ast.Call: "a function call",
    _ast.Attribute: "an attribute",
    _ast.Subscript: "a subscript",
    _ast.BitXor: "^ (write ** for a power)",
    _ast.Compare: "a comparison",
    _ast.Lambda: "a lambda",
}


class CalcError(ValueError):
    """The expression is not allowed or cannot be computed; the message says why."""


def evaluate_rational(expression: str) -> Rational:
    """Return the exact value of an arithmetic expression as ``(numerator, denominator)``.

    Args:
        expression: e.g. ``"347 * 29 + 1"``.

    Raises:
        CalcError: the expression is too long, malformed, uses anything but
            numbers and arithmetic, divides by zero, or its value is too big.
    """
    if len(expression) > MAX_LENGTH:
        raise CalcError(f"expression too long ({len(expression)} characters; at most {MAX_LENGTH})")
    try:
        tree = compile(expression.strip(), "<calc>", "eval", _ast.PyCF_ONLY_AST)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise CalcError("invalid expression") from None
    assert isinstance(tree, _ast.Expression)  # mode "eval"
    try:
        return _eval(tree.body)
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except RecursionError:
        raise CalcError("expression nested too deeply") from None


def _eval(node: _ast.AST) -> Rational:
    if isinstance(node, _ast.Constant):
        return _constant(node.value)
    if isinstance(node, _ast.UnaryOp) and isinstance(node.op, _ast.USub | _ast.UAdd):
        n, d = _eval(node.operand)
        return (-n, d) if isinstance(node.op, _ast.USub) else (n, d)
    if isinstance(node, _ast.BinOp):
        op = type(node.op)
        if op in _BINARY:
            return _bounded(_BINARY[op](_eval(node.left), _eval(node.right)))
    kind = type(getattr(node, "op", node))
    found = _FOUND.get(kind, f"'{kind.__name__}'")
    raise CalcError(f"only numbers, + - * / // % ** and parentheses are allowed (found {found})")


def _constant(value: object) -> Rational:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalcError(f"only numbers are allowed, not {value!r:.20}")
    if isinstance(value, int):
        return _bounded((value, 1))
    if not math.isfinite(value):
        raise CalcError(f"value too large (more than {MAX_DIGITS} digits)")
    # The shortest repr is the decimal the user wrote for ordinary literals ("0.1").
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, frac = mantissa.partition(".")
    shift = int(exponent or 0) - len(frac)
    if abs(shift) > MAX_DIGITS + 20:
        raise CalcError(f"value too large (more than {MAX_DIGITS} digits)")
    digits = int(whole + frac)
    return _bounded(_make(digits * 10**shift, 1) if shift >= 0 else _make(digits, 10**-shift))


def _make(n: int, d: int) -> Rational:
    if d == 0:
        raise ZeroDivisionError
    g = math.gcd(n, d)
    return (n // g, d // g) if d > 0 else (-n // g, -d // g)


def _bounded(value: Rational) -> Rational:
    if abs(value[0]) >= _LIMIT or value[1] >= _LIMIT:
        raise CalcError(f"value too large (more than {MAX_DIGITS} digits)")
    return value


def _power(x: Rational, y: Rational) -> Rational:
    (n, d), (e, e_den) = x, y
    if e_den != 1:
        raise CalcError("the exponent of ** must be a whole number")
    if abs(e) > MAX_EXPONENT:
        raise CalcError(f"exponent too large (at most {MAX_EXPONENT})")
    size = max(abs(n), d)
    if size > 1 and (size.bit_length() - 1) * abs(e) > MAX_DIGITS * 3.33:
        raise CalcError(f"value too large (more than {MAX_DIGITS} digits)")
    return _make(n**e, d**e) if e >= 0 else _make(d**-e, n**-e)


_BINARY = {
    _ast.Add: lambda x, y: _make(x[0] * y[1] + y[0] * x[1], x[1] * y[1]),
    _ast.Sub: lambda x, y: _make(x[0] * y[1] - y[0] * x[1], x[1] * y[1]),
    _ast.Mult: lambda x, y: _make(x[0] * y[0], x[1] * y[1]),
    _ast.Div: lambda x, y: _make(x[0] * y[1], x[1] * y[0]),
    _ast.FloorDiv: lambda x, y: ((x[0] * y[1]) // (x[1] * y[0]), 1),
    _ast.Mod: lambda x, y: _make((x[0] * y[1]) % (y[0] * x[1]), x[1] * y[1]),
    _ast.Pow: _power,
}


def format_rational(value: Rational) -> str:
    """Write a value the way the tool shows it: an integer, or a decimal rounded to
    :data:`DECIMALS` places with trailing zeros dropped.

    Example:
        >>> format_rational((-10063, 1)), format_rational((2, 3)), format_rational((-1, 3))
        ('-10063', '0.6666666667', '-0.3333333333')
    """
    n, d = value
    if d == 1:
        return str(n)
    scaled = (2 * abs(n) * 10**DECIMALS + d) // (2 * d)  # round half up
    whole, frac = divmod(scaled, 10**DECIMALS)
    text = f"{whole}.{frac:0{DECIMALS}d}".rstrip("0").rstrip(".")
    return f"-{text}" if n < 0 and text != "0" else text


def calculate(expression: str) -> str:
    """What the ``calc`` tool prints for ``expression``: its value, or ``Error: …``."""
    try:
        return format_rational(evaluate_rational(expression))
    except CalcError as error:
        return f"Error: {error}"


def evaluate(expression: str):  # -> fractions.Fraction; imported here, on the host only
    """The exact value of ``expression`` as a :class:`fractions.Fraction` (host side).

    Raises:
        CalcError: as :func:`evaluate_rational`.
    """
    from fractions import Fraction

    return Fraction(*evaluate_rational(expression))


def format_value(value) -> str:  # value: fractions.Fraction
    """:func:`format_rational` of a ``Fraction``."""
    return format_rational((value.numerator, value.denominator))


def main(argv: list[str]) -> int:
    """Print what :func:`calculate` says of ``argv[1]``; exit status 1 for an error."""
    if len(argv) != 2:
        print("Error: give exactly one expression")
        return 1
    text = calculate(argv[1])
    print(text)
    return 1 if text.startswith("Error:") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
