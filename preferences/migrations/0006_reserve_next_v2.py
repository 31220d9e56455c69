"""Next's function, v2 (preferences/sql/reserve_next_v2.sql): generic plans, made once per
connection, instead of v1's planning every statement on every call.

Other databases keep the ORM path in preferences.queue and get nothing here.
"""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent.parent / "sql"


def _install(name):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute((SQL / name).read_text())

    return run


class Migration(migrations.Migration):
    dependencies = [("preferences", "0005_drop_redundant_indexes")]

    operations = [
        migrations.RunPython(_install("reserve_next_v2.sql"), _install("reserve_next_v1.sql"))
    ]
