"""PostgreSQL as django-prometheus instruments it, with four changes for the request path.

1. The connection health check at most once a second. Django's health check (CONN_HEALTH_CHECKS) sends
   `SELECT 1` before the first statement of every request: on a read by id that is a third of the request's
   round trips (bench/README.md). The check is there for a persistent connection that died while it sat idle
   (a server restart, an idle timeout), and such a connection is still checked: a connection is checked when it
   was last checked (or opened) DATABASE_HEALTH_CHECK_INTERVAL seconds ago or more, which every connection idle
   that long was. One that died within the interval fails its first statement instead; that request answers
   503 `service_unavailable` (evpay/api/errors.py), Django finds the connection unusable at the request's end and
   the next request opens a new one.

2. Deferred statements (`evpay.core.queries.execute_deferred`): inside a transaction, a write whose answer
   nothing needs at once waits on the connection and goes out with the transaction's next statement, or with
   its COMMIT, in the same message (the simple query protocol runs several statements of one message in order,
   each with a snapshot of its own, as if sent one by one). The order of the transaction's statements does not
   change, only the number of round trips: a create's insert, its event and its stored response travel with
   the COMMIT. A rollback drops what is waiting; a savepoint's statements go ahead of its RELEASE or ROLLBACK
   TO, like any other statement. An error in a deferred statement is raised by the statement it travelled with.
   A deferred statement's `on_result` may register `transaction.on_commit` hooks, also when its result came
   with the COMMIT. The BEGIN of an atomic block waits the same way: a transaction costs a round trip per
   statement whose answer is needed, plus one for whatever is deferred to its COMMIT.

3. Client-side binding done once per statement's text and with one transformer per connection (`_Binder`), the
   same text the driver's own binding makes (tested value by value).

4. django-prometheus's statement series (`django_db_execute_total`, its durations and errors) counted with their
   labelled children looked up once per process (`_counting_cursor`), not three times per statement.
"""

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db.backends.postgresql.base import CursorDebugWrapper as PostgresCursorDebugWrapper
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django_prometheus.db import errors_total, execute_many_total, execute_total, query_duration_seconds
from django_prometheus.db.backends.postgresql import base
from psycopg import ClientCursor
from psycopg import Connection as PsycopgConnection
from psycopg._queries import PostgresClientQuery, _query2pg_client_nocache
from psycopg.adapt import Transformer
from psycopg.pq import TransactionStatus

Deferred = tuple[str, list | None, Callable | None]
_BEGIN: Deferred = ("BEGIN", None, None)
STATEMENT_SEPARATOR = ";\n"  # between the statements of one message


@functools.cache
def _counting_cursor(cursor_class: type, alias: str, vendor: str) -> type:
    """The driver's cursor counting statements, errors and their durations under django-prometheus's series (what
    its `ExportingCursorWrapper` counts), with the labelled series looked up once instead of three times per
    statement."""
    executed = execute_total.labels(alias, vendor)
    executed_many = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    class CountingCursor(cursor_class):
        def execute(self, *args, **kwargs):
            executed.inc()
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except BaseException as exc:
                errors_total.labels(alias, vendor, type(exc).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

        def executemany(self, query, params_seq, *args, **kwargs):
            params_seq = list(params_seq)
            executed.inc(len(params_seq))
            executed_many.inc(len(params_seq))
            started = time.perf_counter()
            try:
                return super().executemany(query, params_seq, *args, **kwargs)
            except BaseException as exc:
                errors_total.labels(alias, vendor, type(exc).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

    CountingCursor.__name__ = CountingCursor.__qualname__ = f"Counting{cursor_class.__name__}"
    return CountingCursor


@functools.lru_cache(maxsize=512)
def _parsed(sql: str, encoding: str) -> tuple[bytes, list[str] | None, list]:
    """A statement's template for client-side binding, as the driver makes it. The driver caches its own only
    for statements of at most 50 parameters and 4 kB and parses every longer one again on every call (here, 100
    us for a statement of 70 parameters against 25 us for one of 40). Keyed by the statement's text: a str keeps
    its hash, so a statement built once (the outbox's, a prepared query's) is found at the cost of a lookup."""
    return _query2pg_client_nocache(sql.encode(encoding), encoding)


class _Binder:
    """Client-side binding as the driver's `ClientCursor.mogrify` and `execute` do it, with one transformer per
    connection instead of one per statement (a transformer keeps the dumper it found for each Python type; the
    driver's new one per statement looked every parameter's type up again) and every statement's parsing cached
    (`_parsed`). `tests/test_deferred_statements.py` compares it with `mogrify`."""

    __slots__ = ("connection", "transformer")

    def __init__(self, connection: PsycopgConnection):
        self.connection = connection
        self.transformer = Transformer(connection)

    def bind(self, sql: str, params: Any) -> str:
        if not isinstance(sql, str):  # a psycopg `sql.Composable`, bytes: the driver's own way
            query = PostgresClientQuery(self.transformer)
            query.convert(sql, params)
            return query.query.decode(self.transformer.encoding)
        encoding = self.transformer.encoding
        template, order, parts = _parsed(sql, encoding)
        values = PostgresClientQuery.validate_and_reorder_params(parts, params, order)
        literal = self.transformer.as_literal
        return (template % tuple(b"NULL" if value is None else literal(value) for value in values)).decode(encoding)


def _message(db: "DatabaseWrapper", statements: Sequence[tuple[str, Any]]) -> str:
    """Several statements as one message, each with its parameters bound as client-side binding binds them."""
    return STATEMENT_SEPARATOR.join(
        (sql if params is None else db.bind(sql, params)).strip().rstrip(";") for sql, params in statements
    )


class _SendsDeferredAhead:
    """Django's cursor wrapper, sending the connection's deferred statements ahead of its own, in one message,
    and handing each its result before this statement's is read."""

    db: "DatabaseWrapper"
    cursor: ClientCursor

    def execute(self, sql, params=None):
        pending = self.db.deferred_take()
        if not isinstance(self.cursor, ClientCursor):
            # A server-side cursor (`.iterator()`) sends its statement as a DECLARE: what waits goes first, alone.
            self._send_alone(pending)
            return super().execute(sql, params)
        if not pending:
            return super().execute(sql if params is None else self.db.bind(sql, params))
        result = super().execute(_message(self.db, [*((s, p) for s, p, _ in pending), (sql, params)]))
        self._hand_out(pending)
        return result

    def executemany(self, sql, param_list):
        self._send_alone(self.db.deferred_take())
        return super().executemany(sql, param_list)

    def callproc(self, procname, params=None, kparams=None):
        self._send_alone(self.db.deferred_take())
        return super().callproc(procname, params, kparams)

    def copy(self, statement):
        self._send_alone(self.db.deferred_take())
        return super().copy(statement)

    def _send_alone(self, pending: list[Deferred]) -> None:
        """What waits, in a message of its own on a plain cursor, before a statement that cannot carry it."""
        if pending:
            with self.db.cursor() as plain:
                plain.execute_deferred(pending)

    def execute_deferred(self, pending: list[Deferred], then: str | None = None) -> None:
        """Send `pending` (and the statement `then`, without parameters) in one message."""
        statements = [(s, p) for s, p, _ in pending]
        if then is not None:
            statements.append((then, None))
        super().execute(_message(self.db, statements))  # type: ignore[misc]
        self._hand_out(pending)

    def _hand_out(self, pending: list[Deferred]) -> None:
        for _, _, on_result in pending:
            if on_result is not None:
                on_result(self.cursor)
            self.cursor.nextset()


class DeferringCursorWrapper(_SendsDeferredAhead, CursorWrapper):
    pass


class DeferringCursorDebugWrapper(_SendsDeferredAhead, PostgresCursorDebugWrapper):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    _checked_at = float("-inf")
    _binder: _Binder | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deferred: list[Deferred] = []
        self._committing = False

    def get_connection_params(self):
        params = PostgresDatabaseWrapper.get_connection_params(self)  # Django's, without django-prometheus's wrapper
        params["cursor_factory"] = _counting_cursor(params["cursor_factory"], self.alias, self.vendor)
        return params

    # --- the health check -----------------------------------------------------------------------------------

    def close_if_health_check_failed(self):
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        now = time.monotonic()
        if now - self._checked_at < settings.DATABASE_HEALTH_CHECK_INTERVAL:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
        self._checked_at = now

    def connect(self):
        super().connect()
        self._checked_at = time.monotonic()  # a new connection has just answered

    # --- deferred statements --------------------------------------------------------------------------------

    def _defers(self) -> bool:
        # A message of several statements needs the simple query protocol, i.e. client-side binding.
        return self.connection is not None and not self.settings_dict["OPTIONS"].get("server_side_binding")

    def bind(self, sql: str, params: Any) -> str:
        """`sql` with `params` bound client-side, as the driver would send it (see `_Binder`)."""
        if self.connection is None:
            self.ensure_connection()  # the quoting of some types (bytea) depends on the connection
        binder = self._binder
        if binder is None or binder.connection is not self.connection:
            binder = self._binder = _Binder(self.connection)
        with self.wrap_database_errors:  # a value the driver refuses (a NUL in text) is Django's DataError
            return binder.bind(sql, params)

    def defer(self, sql: str, params: list | None, on_result: Callable | None = None) -> bool:
        """Queue a statement for the next round trip of this transaction; False (the caller runs it now) outside a
        transaction, or where a message cannot hold several statements (server-side binding)."""
        if not self.in_atomic_block or not self._defers():
            return False
        self._deferred.append((sql, list(params) if params is not None else None, on_result))
        return True

    def deferred_take(self) -> list[Deferred]:
        pending, self._deferred = self._deferred, []
        return pending

    def make_cursor(self, cursor):
        return DeferringCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return DeferringCursorDebugWrapper(cursor, self)

    def set_autocommit(self, autocommit, force_begin_transaction_with_broken_autocommit=False):
        if autocommit:
            self._deferred = [entry for entry in self._deferred if entry is not _BEGIN]  # it began nothing
            return super().set_autocommit(True)
        self.validate_no_atomic_block()
        self.close_if_health_check_failed()
        self.ensure_connection()
        if not self._defers() or not self.connection.autocommit:
            return super().set_autocommit(False, force_begin_transaction_with_broken_autocommit)
        # A transaction begins (what Django's set_autocommit(False) does, but for the BEGIN it would send and log
        # now). The driver stays in autocommit, so that it sends no BEGIN of its own; the BEGIN waits like a
        # deferred statement, for the transaction's first statement, and is logged with it. The driver's
        # commit and rollback go by what the server reports open.
        self._deferred.append(_BEGIN)
        self.autocommit = False

    def _commit(self):
        pending = self.deferred_take()
        if pending == [_BEGIN]:
            return  # the transaction ran no statement: the server never saw it begin
        if not pending or self.connection is None:
            return super()._commit()
        # The deferred statements and the COMMIT in one message; the driver finds the transaction ended.
        self._committing = True
        try:
            with self.wrap_database_errors, self.cursor() as cursor:
                cursor.execute_deferred(pending, then="COMMIT")
        finally:
            self._committing = False

    def on_commit(self, func, robust=False):
        if self._committing:
            # From a deferred statement's on_result, handed its result by the COMMIT it travelled with: the
            # function runs after this commit, with the transaction's other hooks (Django would refuse it here,
            # outside the atomic block that is ending).
            self.run_on_commit.append((set(), func, robust))
            return
        super().on_commit(func, robust)

    def _rollback(self):
        self._deferred.clear()
        if self.connection is not None and self.connection.info.transaction_status == TransactionStatus.IDLE:
            return None  # its BEGIN never left: the server has nothing to roll back (and the driver sends nothing)
        return super()._rollback()

    def _close(self):
        self._deferred.clear()
        return super()._close()
