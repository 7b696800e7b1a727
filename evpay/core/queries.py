"""Querysets compiled once, for the reads every request makes (a payment intent by id, ...).

Django compiles a queryset into SQL each time it runs it; for a single-row read of a wide model that costs
several times the query itself. A `PreparedQuery` compiles its queryset once per database connection, with
placeholders for the values that change, and afterwards only sends that SQL with the new values, turning rows
into instances as the ORM does (its converters, `Model.from_db`). Single-model querysets only: no
`select_related`, annotations or `values()`; `extra(select=...)` columns become attributes, as in the ORM.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import connections, models
from django.db.models import Field, Model, QuerySet
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)


class PreparedQuery(Generic[M]):
    """`PreparedQuery(lambda op, pk: Intent.objects.filter(operator_id=op, pk=pk), "op", "pk")`, then
    `.first(op=..., pk=...)`: the instance or None. `build` is called once per connection, with placeholders."""

    def __init__(self, build: Callable[..., QuerySet[M]], *names: str, using: str = "default"):
        self.build, self.names, self.using = build, names, using
        self._compiled: dict[int, tuple] = {}

    def _compile(self, connection) -> tuple:
        placeholders = {name: f"\x1fprepared:{name}\x1f" for name in self.names}
        queryset = self.build(*placeholders.values())
        if queryset.query.select_related or queryset.query.annotations or getattr(queryset, "_fields", None):
            raise ValueError("PreparedQuery takes plain single-model querysets only.")
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        positions = {name: [i for i, p in enumerate(params) if p == value] for name, value in placeholders.items()}
        if any(len(found) != 1 for found in positions.values()):
            raise ValueError(f"PreparedQuery: each placeholder must be one parameter of the SQL ({positions}).")
        klass_info = compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
        init_list = [column[0].target.attname for column in compiler.select[start:end]]
        extra_names = list(queryset.query.extra_select)  # selected before the model's columns
        compiled = (
            queryset.query.select_for_update,
            sql,
            list(params),
            [(name, found[0]) for name, found in positions.items()],
            compiler,
            compiler.get_converters(fields),
            klass_info["model"],
            init_list,
            (start, end),
            extra_names,
        )
        self._compiled[id(connection)] = compiled
        return compiled

    def first(self, **values: Any) -> M | None:
        connection = connections[self.using]
        compiled = self._compiled.get(id(connection)) or self._compile(connection)
        for_update, sql, params, positions, compiler, converters, model, init_list, (start, end), extra = compiled
        # What the ORM checks each time it compiles (only where the database has FOR UPDATE: not SQLite).
        if for_update and connection.features.has_select_for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(params)
        for name, index in positions:
            params[index] = values[name]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if converters:
            row = next(iter(compiler.apply_converters([row], converters)))
        instance = model.from_db(self.using, init_list, row[start:end])
        for name, value in zip(extra, row, strict=False):
            setattr(instance, name, value)
        return instance


def execute_deferred(sql: str, params: list | None = None, *, on_result: Callable | None = None) -> None:
    """Run a statement whose answer nothing needs before the transaction's next statement. On PostgreSQL inside a
    transaction it waits on the connection and travels with that next statement, or with the COMMIT: one round
    trip for both (evpay.core.backends.postgresql). Elsewhere it runs now. `on_result(cursor)` gets its result
    (rows, rowcount) when it has run, before anything later is read; what it raises, the statement it travelled
    with raises. For writes that cannot fail on their own (a new row with a new id, a change to a row the
    transaction has locked): an error of one surfaces later in the transaction, not where it was made, and the
    `on_result` of one that travelled with the COMMIT runs once the commit is made, so a check there can report
    but not undo (`row_update`'s is an assertion on a row the caller holds locked)."""
    connection = connections["default"]
    defer = getattr(connection, "defer", None)
    if defer is not None and defer(sql, params, on_result):
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if on_result is not None:
            on_result(cursor)


# The ORM prepares a value for the database through five methods of its field (pre_save, get_db_prep_save,
# get_db_prep_value, get_prep_value, to_python). For the common fields and values below they end where they
# started, or with one adapter of the backend: `db_values` takes that shortcut, and the ORM's way for everything
# else (another type of value, a field class that overrides any of those methods, a field not listed).
_STEPS = ("pre_save", "get_db_prep_save", "get_db_prep_value", "get_prep_value", "to_python")
_TEXT, _BOOL, _INT, _AWARE = "text", "bool", "int", "aware"


def _same_steps(field: Field, base: type[Field]) -> bool:
    return all(getattr(type(field), step) is getattr(base, step) for step in _STEPS)


def _shortcut(field: Field, connection) -> tuple[str, str | None] | None:
    """How the value of `field` may skip the ORM's steps: the kind of value that may, and for an integer the
    internal type its backend adapter takes. None: never."""
    if isinstance(field, models.ForeignKey):
        # Its own steps hand every value but None and "" to its target field's.
        return _shortcut(field.target_field, connection) if _same_steps(field, models.ForeignKey) else None
    if isinstance(field, models.CharField | models.TextField):
        base = models.CharField if isinstance(field, models.CharField) else models.TextField
        return (_TEXT, None) if _same_steps(field, base) else None  # to_python keeps any str (a TextChoices too)
    if isinstance(field, models.BooleanField) and _same_steps(field, models.BooleanField):
        return _BOOL, None
    if isinstance(field, models.IntegerField) and _same_steps(field, models.IntegerField):
        return _INT, field.get_internal_type()
    if (
        isinstance(field, models.DateTimeField)
        and _same_steps(field, models.DateTimeField)
        and not (field.auto_now or field.auto_now_add)  # pre_save sets those
    ):
        return _AWARE, None  # a naive one takes the ORM's way, and its warning
    return None


def _takes_shortcut(kind: str, value: Any) -> bool:
    if kind is _TEXT:
        return isinstance(value, str)
    if kind is _INT:
        return type(value) is int  # not a bool, not a str of digits
    if kind is _BOOL:
        return type(value) is bool
    return type(value) is datetime and value.tzinfo is not None


# Plans by backend and field list. Nothing of a connection is kept: a plan outlives the connections it served.
_PLANS: dict[tuple[str, int], tuple[Any, list]] = {}
_PLANS_KEPT = 256  # field lists are kept for reuse; should a caller build new ones, the plans do not pile up
_MISSING = object()


def db_values(instance: Model | Any, fields, *, add: bool = True) -> list:
    """What the ORM would send for `fields` (a list or tuple kept for reuse, e.g. `_meta.concrete_fields`) of a
    new `instance` (defaults and auto_now filled in, values adapted for the database); `add=False`: of a saved
    one, as an update sends them."""
    connection = connections["default"]  # the connection itself: through the proxy, every field looks it up again
    key = (connection.vendor, id(fields))
    cached = _PLANS.get(key)
    if cached is None or cached[0] is not fields:
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.clear()
        plan = []
        for field in fields:
            shortcut = _shortcut(field, connection)
            plan.append((field, field.attname, *(shortcut or (None, None)), isinstance(field, models.ForeignKey)))
        cached = _PLANS[key] = (fields, plan)
    values: list[Any] = []
    value: Any
    ops = connection.ops
    for field, attname, kind, internal_type, relation in cached[1]:
        value = instance.__dict__.get(attname, _MISSING) if kind is not None else _MISSING
        if value is None and not relation:
            values.append(None)  # every listed field's steps send None as None
        elif value is not _MISSING and _takes_shortcut(kind, value) and not (relation and value == ""):
            if kind is _INT:
                value = ops.adapt_integerfield_value(value, internal_type)
            elif kind is _AWARE:
                value = ops.adapt_datetimefield_value(value)
            values.append(value)
        else:
            values.append(field.get_db_prep_save(field.pre_save(instance, add), connection))
    return values


class _NewRow:
    """A new model instance as `db_values` sees it (its attributes), without the instance."""


def new_row_values(fields, values: dict[str, Any]) -> list:
    """`db_values(Model(**values), fields)` without building the instance, for rows a statement writes but
    nothing reads back: `values` by attname; every other field gets its default, as `Model.__init__` gives it."""
    row = _NewRow()
    attributes = row.__dict__
    attributes.update(values)
    for field in fields:
        if field.attname not in attributes:
            attributes[field.attname] = field.get_default()
    return db_values(row, fields)


_INSERT_SQL: dict[type[Model], str] = {}


def row_insert(instance: Model) -> None:
    """INSERT a new `instance` as `save(force_insert=True)` would, in one statement whose SQL is built once per
    model: for the rows every request writes, where the ORM's save machinery cost more than the statement. Sends
    no pre_save/post_save signal; the model must have no database-generated primary key."""
    from django.db import connection

    model = type(instance)
    fields = model._meta.concrete_fields
    sql = _INSERT_SQL.get(model)
    if sql is None:
        if model._meta.pk.db_returning:
            raise ValueError(f"row_insert: {model.__name__}'s primary key is made by the database.")
        quote = connection.ops.quote_name
        sql = _INSERT_SQL[model] = (
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})"
        )
    execute_deferred(sql, db_values(instance, fields))
    instance._state.adding = False
    instance._state.db = connection.alias


_UPDATE_SQL: dict[tuple[type[Model], tuple[str, ...]], tuple[list, str]] = {}


def row_update(instance: Model, field_names: list[str]) -> None:
    """UPDATE `field_names` of a saved `instance` (an auto_now field among them gets the current time), as
    `save(update_fields=...)` would, in one statement whose SQL is built once per model and fields. Sends no
    pre_save/post_save signal. For the rows that every request changes, locked by the caller."""
    connection = connections["default"]
    model = type(instance)
    key = (model, tuple(field_names))
    compiled = _UPDATE_SQL.get(key)
    if compiled is None:
        quote = connection.ops.quote_name
        columns = {f.name: f for f in model._meta.concrete_fields if not f.primary_key}
        unknown = [name for name in field_names if name not in columns]
        if unknown:
            raise ValueError(f"row_update: {unknown} are not columns of {model.__name__} it can set.")
        fields = [columns[name] for name in dict.fromkeys(field_names)]
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {', '.join(f'{quote(str(f.column))} = %s' for f in fields)} "
            f"WHERE {quote(str(model._meta.pk.column))} = %s"
        )
        compiled = _UPDATE_SQL[key] = (fields, sql)
    fields, sql = compiled
    values = db_values(instance, fields, add=False)

    def updated_one(cursor) -> None:
        if cursor.rowcount != 1:
            raise ObjectDoesNotExist(f"row_update: no {model.__name__} {instance.pk!r}.")

    execute_deferred(sql, [*values, instance.pk], on_result=updated_one)
