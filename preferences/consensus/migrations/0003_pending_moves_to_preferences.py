"""ConsensusPending now belongs to preferences (its 0012): state only, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("consensus", "0002_consensus_pending"),
        ("preferences", "0011_consensus_pending"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ConsensusPending")],
            database_operations=[],
        ),
    ]
