"""Next's function, v3: rendered from the queue's rules (preferences/rating/rules.py), the
statements the other paths and SQLite run, instead of a copy of them in a .sql file. The
search is v2's word for word; the reservation also serves gold pairs (no overlap count).

A change to those rules needs a migration that runs this again: the test
test_installed_reserve_function_is_the_rules_one fails until there is one. Other databases
get nothing here (they run the rules' statements directly).
"""

from pathlib import Path

from django.db import migrations

V2 = Path(__file__).resolve().parent.parent / "sql" / "reserve_next_v2.sql"


def _install_from_rules(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from preferences.rating.rules import reserve_function

        schema_editor.execute(reserve_function(), params=None)


def _install_v2(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(V2.read_text(), params=None)


class Migration(migrations.Migration):
    dependencies = [("preferences", "0012_facet_role")]

    operations = [migrations.RunPython(_install_from_rules, _install_v2)]
