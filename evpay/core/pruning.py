"""The one way old rows are deleted: by primary key, in batches, each batch its own short statement, so that a
large backlog never holds one long transaction or locks a whole table."""

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet

DEFAULT_BATCH = 5000


def prune_in_batches(
    queryset: QuerySet[Any], *, batch: int = DEFAULT_BATCH, delete: Callable[[list[Any]], int] | None = None
) -> int:
    """Delete every row of `queryset`; returns how many rows of its model were deleted (cascaded rows of other
    models are not counted). `delete(ids) -> count` replaces the plain delete of a batch where related rows must
    go first."""
    model: type[Model] = queryset.model
    label = model._meta.label

    def delete_rows(ids: list[Any]) -> int:
        return model._default_manager.filter(pk__in=ids).delete()[1].get(label, 0)

    deleted = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += (delete or delete_rows)(ids)
