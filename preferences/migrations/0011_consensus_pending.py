"""ConsensusPending moves from the consensus app to preferences (state only: the table, its
name and its index stay as consensus 0002 created them), so writers below consensus can mark."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0001_initial"),
        ("consensus", "0002_consensus_pending"),
        ("preferences", "0010_facet_required_rater_settings_edits"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ConsensusPending",
                    fields=[
                        (
                            "pair",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="+",
                                serialize=False,
                                to="preferences.candidatepair",
                            ),
                        ),
                        ("marked_at", models.DateTimeField()),
                        (
                            "project",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="annotate.project",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "consensus_consensuspending",
                        "indexes": [
                            models.Index(
                                fields=["project", "marked_at"],
                                name="consensus_c_project_b7450b_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
