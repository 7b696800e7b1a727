"""The one JSON body parser: strict JSON whose strings PostgreSQL can store and UTF-8 can encode."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser


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
        data = super().parse(stream, media_type, parser_context)
        if _has_unstorable_text(data):
            raise ParseError("JSON parse error - strings may not contain NUL characters or unpaired surrogates.")
        return data
