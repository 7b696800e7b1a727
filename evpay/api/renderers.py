"""JSON rendered with orjson: several times faster than the standard library for the same bytes."""

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

# Whatever orjson does not take natively (Decimal, lazy strings, timedelta...) goes through DRF's own encoder,
# and so do datetimes, which DRF writes with `Z` for UTC: the bytes are the ones DRF's renderer would send.
_drf_default = JSONEncoder().default
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if accepted_media_type and "indent" in accepted_media_type:
            return super().render(data, accepted_media_type, renderer_context)  # `Accept: ...; indent=2`
        try:
            return orjson.dumps(data, default=_drf_default, option=_OPTIONS)
        except TypeError:  # beyond orjson (an integer over 64 bits): the standard library takes it
            return super().render(data, accepted_media_type, renderer_context)
