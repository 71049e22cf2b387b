"""The API's JSON parser (REST_FRAMEWORK DEFAULT_PARSER_CLASSES): DRF's, with nesting bounded.

A body nested a thousand levels deep (``[[[[...]]]]``) makes the standard library's parser
raise RecursionError, which DRF's JSONParser does not catch (ValueError only): a 500, and as an
HTML page. Here it is a 400 with the reason, as is any body nested deeper than
``MAX_JSON_DEPTH`` that still parses: no request of this API nests more than a few levels, and
a deep structure would only move the recursion to whatever walks it next (validation, the audit
row's JSON)."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 32
TOO_DEEP = f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)."


def json_depth(value) -> int:
    """How deeply ``value`` nests (a scalar: 0, ``[]``: 1), counted without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            break
        pending.extend((child, depth + 1) for child in item)
    return deepest


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(TOO_DEEP) from exc
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(TOO_DEEP)
        return data
