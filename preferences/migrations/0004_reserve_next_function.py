"""Next's search and reservation as one PostgreSQL function (preferences/sql/reserve_next_v1.sql).

Other databases keep the ORM path in preferences.queue and get nothing here.
"""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent.parent / "sql" / "reserve_next_v1.sql"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SQL.read_text())


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS altpref_reserve_next("
            "bigint, integer, timestamptz, timestamptz, integer, bigint, varchar, uuid, integer)"
        )


class Migration(migrations.Migration):
    dependencies = [("preferences", "0003_assignment_project_pair_index")]

    operations = [migrations.RunPython(create, drop)]
