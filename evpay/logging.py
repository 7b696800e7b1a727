"""Request/task context for log lines: every record carries request_id and operator_id."""

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
operator_id_var: ContextVar[str | None] = ContextVar("operator_id", default=None)


def bind_context(**values) -> None:
    if "request_id" in values:
        request_id_var.set(values["request_id"])
    if "operator_id" in values:
        operator_id_var.set(values["operator_id"])


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or request_id_var.get() or "-"
        record.operator_id = getattr(record, "operator_id", None) or operator_id_var.get() or "-"
        return True
