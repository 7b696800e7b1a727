from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class CursorPagination(pagination.CursorPagination):
    """`?limit=` (default 50, max 200) and an opaque `?cursor=`; newest first."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    ordering = "-created_at"
    invalid_cursor_message = "Invalid cursor."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError({"limit": ["A whole number from 1 to 200."]}) from None
        if value < 1:
            raise ValidationError({"limit": ["A whole number from 1 to 200."]})
        return min(value, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
        return parameters

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except Exception as exc:  # DRF raises NotFound; a bad cursor is bad input.
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from exc
        # The position goes into the query as a creation time: anything else (forged) would fail in the database.
        if cursor is not None and cursor.position is not None and not _is_time(cursor.position):
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        return cursor


def _is_time(value: str) -> bool:
    if len(value) > 40:
        return False
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return False
    return parsed is not None and parsed.tzinfo is not None
