"""Schemas from Python types and docstrings, and strict argument validation."""

from __future__ import annotations

from typing import Literal, Optional

import pytest

from toolgym.errors import BadArguments
from toolgym.tools.schema import (
    function_parameters,
    parse_docstring,
    signature,
    type_to_schema,
    validate_arguments,
)


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (list[list[int]],
         {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
        (list, {"type": "array"}),
        (dict, {"type": "object"}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (str | None, {"type": ["string", "null"]}),
        (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045 - the old spelling too
        (Literal["x"] | None, {"type": ["string", "null"], "enum": ["x", None]}),
        (list[str] | None, {"type": ["array", "null"], "items": {"type": "string"}}),
    ],
)
def test_type_to_schema(annotation, schema):
    assert type_to_schema(annotation) == schema


@pytest.mark.parametrize("annotation", [set[int], int | str, dict[int, str], bytes, object])
def test_type_to_schema_rejects_what_json_cannot_say(annotation):
    with pytest.raises(TypeError):
        type_to_schema(annotation)


def test_parse_docstring_google_style():
    doc = """Search the index.

    Returns the best hits first.

    Args:
        query (str): What to look for.
        k: How many hits
            to return.
        mode: One of the modes.

    Returns:
        The hits.

    Raises:
        ValueError: never.
    """
    description, args = parse_docstring(doc)
    assert description == "Search the index.\n\nReturns the best hits first."
    assert args == {
        "query": "What to look for.",
        "k": "How many hits to return.",
        "mode": "One of the modes.",
    }


def test_parse_docstring_without_sections_or_docstring():
    assert parse_docstring("Just text.") == ("Just text.", {})
    assert parse_docstring(None) == ("", {})


async def _search(context, query: str, k: int = 5, mode: Literal["bm25", "exact"] = "bm25",
                  tags: list[str] | None = None) -> str:
    """Search.

    Args:
        query: Words.
        k: Hits.
    """
    return ""


def test_function_parameters_required_defaults_and_descriptions():
    assert function_parameters(_search, skip=1) == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Words."},
            "k": {"type": "integer", "description": "Hits.", "default": 5},
            "mode": {"type": "string", "enum": ["bm25", "exact"], "default": "bm25"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}, "default": None},
        },
        "required": ["query"],
    }


def test_function_parameters_errors_name_the_problem():
    async def no_annotation(context, x) -> str: ...  # noqa: ANN001

    async def stale_doc(context, x: int) -> str:
        """Doc.

        Args:
            y: Renamed long ago.
        """

    async def star(context, *args: int) -> str: ...

    with pytest.raises(TypeError, match="'x' needs a type annotation"):
        function_parameters(no_annotation, skip=1)
    with pytest.raises(TypeError, match=r"unknown parameters \['y'\]"):
        function_parameters(stale_doc, skip=1)
    with pytest.raises(TypeError, match=r"\*args"):
        function_parameters(star, skip=1)


SCHEMA = function_parameters(_search, skip=1)


def test_signature_reads_like_python():
    assert signature("search", SCHEMA) == (
        'search(query: str, k: int = 5, mode: one of "bm25", "exact" = "bm25", '
        "tags: list[str] | None = null)"
    )


def test_valid_arguments_pass_through():
    args = {"query": "cats", "k": 3, "mode": "exact", "tags": ["a"]}
    assert validate_arguments("search", SCHEMA, args) == args
    assert validate_arguments("search", SCHEMA, {"query": "q", "tags": None}) == {
        "query": "q", "tags": None}


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        ({}, ["missing required argument `query` (str)"]),
        ({"query": "q", "kk": 2}, ["unexpected argument `kk` (did you mean `k`?)"]),
        ({"query": "q", "k": "3"}, ['`k` must be int, got a string ("3")']),
        ({"query": "q", "k": 2.5}, ["`k` must be int, got a number (2.5)"]),
        ({"query": "q", "k": True}, ["`k` must be int, got a boolean"]),
        ({"query": 7}, ["`query` must be str, got an integer (7)"]),
        ({"query": "q", "mode": "fuzzy"}, ['`mode` must be one of "bm25", "exact", got "fuzzy"']),
        ({"query": "q", "tags": ["a", 1]}, ["`tags[1]` must be str, got an integer (1)"]),
        ({"query": None}, ["`query` must be str, got null"]),
        ({"k": "x", "zzz": 1}, ["missing required argument `query`", "unexpected argument `zzz`",
                                "`k` must be int"]),
    ],
)
def test_bad_arguments_say_exactly_what_is_wrong(arguments, fragments):
    with pytest.raises(BadArguments) as info:
        validate_arguments("search", SCHEMA, arguments)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert message.endswith("Expected: " + signature("search", SCHEMA))


def test_ints_are_accepted_for_floats_and_become_floats():
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    out = validate_arguments("f", schema, {"x": 3})
    assert out == {"x": 3.0} and isinstance(out["x"], float)
    with pytest.raises(BadArguments, match="got a string"):
        validate_arguments("f", schema, {"x": "3"})
    with pytest.raises(BadArguments, match="got a boolean"):
        validate_arguments("f", schema, {"x": False})


def test_enum_does_not_confuse_true_with_one():
    schema = {"type": "object", "properties": {"n": {"enum": [1, 2]}}, "required": ["n"]}
    with pytest.raises(BadArguments):
        validate_arguments("f", schema, {"n": True})


def test_arguments_must_be_an_object():
    with pytest.raises(BadArguments, match="must be a JSON object of named arguments, not a list"):
        validate_arguments("search", SCHEMA, ["cats"])


def test_nested_object_schemas_are_checked():
    schema = {
        "type": "object",
        "properties": {"opts": {"type": "object", "properties": {"n": {"type": "integer"}},
                                "required": ["n"], "additionalProperties": False}},
        "required": ["opts"],
    }
    assert validate_arguments("f", schema, {"opts": {"n": 1}}) == {"opts": {"n": 1}}
    with pytest.raises(BadArguments, match="missing the key 'n'"):
        validate_arguments("f", schema, {"opts": {}})
    with pytest.raises(BadArguments, match="unexpected key 'm'"):
        validate_arguments("f", schema, {"opts": {"n": 1, "m": 2}})
    with pytest.raises(BadArguments, match=r"`opts\['n'\]` must be int"):
        validate_arguments("f", schema, {"opts": {"n": "1"}})
