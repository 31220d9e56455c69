"""Seed a demo project when the database has none: posts from the alt-text task, pairs, accounts,
and the demo base model (a tiny model already SFT-trained on the task) that "tiny" rounds start from.

The posts come from `modeltrain.mcmdpo.alttext_task`: pictures of a sign and two groups of shapes,
posts that say which part they are about, a right alt-text, a wrong one of a kind people really
write, and held-out test posts with a reference alt-text. It lives in modeltrain (not annotate)
because it uses the ML package; annotate never imports modeltrain.

Accounts get random passwords printed once, at creation; nothing stores them in plain text.
`--reset-passwords` prints new ones for existing demo accounts.
"""

import json
import random
import secrets
import tempfile
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotate.models import Project, Role
from annotate.services import membership_set
from preferences.imports import altdata_import
from preferences.projects import project_create

DEMO_PROJECT = "Demo: alt-text for social posts"
ACCOUNTS = [
    ("admin", Role.ADMIN, True),
    ("reviewer", Role.REVIEWER, False),
    ("annotator", Role.ANNOTATOR, False),
]
TRAIN_POSTS = 48
TEST_POSTS = 16
# What users typed as alt-text before (the kinds the task's rejected alternatives have).
USER_ALT_KINDS = ("image_of", "file_name", "post_copy")


def demo_records(folder: Path, *, seed: int = 0) -> Path:
    """Write the demo's pictures and one generic JSONL file into folder; return the file."""
    from modeltrain.mcmdpo import alttext_task as task

    rng = random.Random(f"seed-demo:{seed}")
    names: dict = {}
    lines = []

    def image_name(scene) -> str:
        if scene not in names:
            names[scene] = f"scene-{len(names):03d}.png"
            task.draw_scene(scene).save(folder / names[scene])
        return names[scene]

    train = task.sample_posts(TRAIN_POSTS, seed=seed, held_out=False)
    for n, post in enumerate(train):
        kind = task.REJECTION_KINDS[n % len(task.REJECTION_KINDS)]
        lines.append(
            {
                "id": f"demo-{n}",
                "image": image_name(post.scene),
                "context": post.context,
                "platform": "twitter",
                "alt_text": task.rejected_alt_text(post, rng.choice(USER_ALT_KINDS), rng),
                "chosen": post.chosen,
                "rejected": task.rejected_alt_text(post, kind, rng),
            }
        )
    for n, post in enumerate(task.sample_posts(TEST_POSTS, seed=seed, held_out=True)):
        lines.append(
            {
                "id": f"demo-test-{n}",
                "image": image_name(post.scene),
                "context": post.context,
                "platform": "twitter",
                "split": "test",
                "chosen": post.chosen,
            }
        )
    path = folder / "demo.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


class Command(BaseCommand):
    help = "Create the demo project and accounts if the database has no project yet."

    def add_arguments(self, parser):
        parser.add_argument("--reset-passwords", action="store_true")
        parser.add_argument(
            "--no-model",
            action="store_true",
            help="do not build the demo base model now (the first tiny round builds it)",
        )

    def handle(self, *args, **opts):
        User = get_user_model()
        if opts["reset_passwords"]:
            for username, _, _ in ACCOUNTS:
                user = User.objects.filter(username=username).first()
                if user:
                    self._set_password(user)
            return
        if not opts["no_model"]:
            self._ensure_model()
        if Project.objects.exists():
            self.stdout.write(
                "Database already has projects; demo not seeded. "
                "(New demo passwords: manage.py seed_demo --reset-passwords)"
            )
            return
        with transaction.atomic():
            project = project_create(
                name=DEMO_PROJECT,
                guidelines="# Guidelines\n\nGood alt-text says what matters in the image **for this post**. "
                "Do not start with *image of*. Keep it short.",
                platforms=["twitter"],
                overlap=2,
            )
            with tempfile.TemporaryDirectory() as tmp:
                report = altdata_import(
                    paths=[demo_records(Path(tmp))], project=project, platform="twitter"
                )
            for username, role, staff in ACCOUNTS:
                user, created = User.objects.get_or_create(
                    username=username, defaults={"is_staff": staff, "is_superuser": staff}
                )
                membership_set(project=project, user=user, role=role)
                if created:
                    self._set_password(user)
        self.stdout.write(
            self.style.SUCCESS(f'Seeded "{project.name}": {report.imported} records imported.')
        )

    def _ensure_model(self):
        from modeltrain.mcmdpo.demo_model import demo_model_path, ensure_demo_model, is_built

        if not is_built(demo_model_path()):
            self.stdout.write("Building the demo base model (once; about a minute on a CPU)...")
        started = time.monotonic()
        path = ensure_demo_model(log=self.stdout.write)
        self.stdout.write(f"Demo base model: {path} ({time.monotonic() - started:.1f} s)")

    def _set_password(self, user):
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save(update_fields=["password"])
        self.stdout.write(f"  demo account  {user.username:<10} password  {password}")
