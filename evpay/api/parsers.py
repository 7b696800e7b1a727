"""The one JSON body parser: strict JSON, bounded in size and nesting before it is parsed, whose strings
PostgreSQL can store and UTF-8 can encode."""

import re

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser

from evpay.core.errors import DomainError

# No request body of the contract nests deeper than a few levels; a deep one only costs stack (Python's parser
# recurses per level: 1,000 levels is a RecursionError).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")


class RequestTooLarge(DomainError):
    status_code, code, title = 413, "request_too_large", "Request too large"


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the brackets of `raw` (outside strings) nest deeper than `limit`; a scan, not a parse."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", raw):
        if byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def _has_unstorable_text(data) -> bool:
    # NUL fits neither a text nor a jsonb column; a lone surrogate (`"\ud800"`) is not Unicode and cannot
    # be encoded as UTF-8. Either would reach the database or the response renderer and fail there as a 500.
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                return True
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


class JSONParser(DRFJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:  # a body without Content-Length (chunked) is only measured here
            raise RequestTooLarge(f"Request body is over the limit of {limit} bytes.")
        if json_too_deep(raw):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        # orjson: strict (no NaN/Infinity, no lone surrogates, valid UTF-8 only) and several times faster.
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _has_unstorable_text(data):
            raise ParseError("JSON parse error - strings may not contain NUL characters or unpaired surrogates.")
        return data
