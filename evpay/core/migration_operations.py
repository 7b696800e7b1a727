"""Migration operations the apps share."""

from django.db import migrations


class DropPatternIndexes(migrations.operations.base.Operation):
    """Drop the second index Django gives an indexed varchar column on PostgreSQL (`<name>_like`, with
    `varchar_pattern_ops`), kept for `LIKE 'prefix%'` outside the C locale.

    Nothing filters ids by prefix: they are matched whole, and the admin's search (`icontains`) cannot use such an
    index. On the hot tables each of these indexes was one more index entry (and WAL record) for every row
    inserted, and for every update that changes an indexed column. The model state does not change (Django does
    not track these indexes); on other databases, which have no such index, nothing happens. Reversed, the indexes
    are built again as Django built them. Django builds one again itself only if a later migration changes the
    column's type (`AlterField`)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str, fields: list[str]):
        self.model_name = model_name
        self.fields = fields

    def deconstruct(self):
        return self.__class__.__qualname__, [], {"model_name": self.model_name, "fields": self.fields}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        for name in self.fields:
            column = model._meta.get_field(name).column
            index = schema_editor._create_index_name(model._meta.db_table, [column], suffix="_like")
            schema_editor.execute(schema_editor._delete_index_sql(model, index))  # DROP INDEX IF EXISTS

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        for name in self.fields:
            statement = schema_editor._create_like_index_sql(model, model._meta.get_field(name))
            if statement is not None:
                schema_editor.execute(statement)

    def describe(self):
        return f"Drop the pattern-ops indexes of {self.model_name} {', '.join(self.fields)}"

    @property
    def migration_name_fragment(self):
        return f"drop_pattern_indexes_{self.model_name.lower()}"
