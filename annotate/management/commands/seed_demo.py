"""Seed a demo project when the database has none: generated images, posts, pairs, accounts.

Accounts get random passwords printed once, at creation; nothing stores them in plain text.
`--reset-passwords` prints new ones for existing demo accounts.
"""

import json
import secrets
import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotate.importers.service import altdata_import
from annotate.models import Project, Role
from annotate.services import membership_set, project_create

DEMO_PROJECT = "Demo: alt-text for social posts"
ACCOUNTS = [
    ("admin", Role.ADMIN, True),
    ("reviewer", Role.REVIEWER, False),
    ("annotator", Role.ANNOTATOR, False),
]

COLOURS = {
    "red": (200, 30, 30),
    "blue": (30, 60, 200),
    "green": (30, 150, 60),
    "orange": (240, 140, 20),
    "purple": (120, 40, 160),
    "teal": (20, 140, 140),
}
SHAPES = ["circle", "square", "triangle"]
CONTEXTS = [
    "Finally finished the logo for our bake sale! What do you think?",
    "Kids' art class today: we learned about shapes and colours.",
    "New sticker design dropping Friday. Preorders open now.",
    "Can anyone identify this road sign? Saw it on my hike.",
    "My minimalist wallpaper pack is free this week.",
    "Quiz: which of these flags is fake? Answer in the replies.",
]


def _draw(colour: tuple[int, int, int], shape: str, size: int = 160):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    box = (size * 0.2, size * 0.2, size * 0.8, size * 0.8)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(
            [(size / 2, size * 0.15), (size * 0.85, size * 0.8), (size * 0.15, size * 0.8)],
            fill=colour,
        )
    return img


def demo_records(folder: Path) -> Path:
    """Write demo images and a generic JSONL file into folder; return the file."""
    lines = []
    n = 0
    for ci, (colour, rgb) in enumerate(COLOURS.items()):
        for si, shape in enumerate(SHAPES):
            name = f"{colour}-{shape}.png"
            _draw(rgb, shape).save(folder / name)
            other = SHAPES[(si + 1) % len(SHAPES)]
            # Two posts share each image: the same picture needs different alt-text per context.
            for k in range(2):
                context = CONTEXTS[(ci + si + 3 * k) % len(CONTEXTS)]
                lines.append(
                    {
                        "id": f"demo-{n}",
                        "image": name,
                        "context": context,
                        "platform": "twitter",
                        "alt_text": f"image of a {shape}",
                        "chosen": f"A solid {colour} {shape} centred on an off-white background.",
                        "rejected": f"A {other} shape.",
                    }
                )
                n += 1
            if si == 0:
                lines.append(
                    {
                        "id": f"demo-test-{n}",
                        "image": name,
                        "context": context + " (repost)",
                        "split": "test",
                        "chosen": f"A {colour} {shape} on a pale background.",
                    }
                )
    path = folder / "demo.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


class Command(BaseCommand):
    help = "Create the demo project and accounts if the database has no project yet."

    def add_arguments(self, parser):
        parser.add_argument("--reset-passwords", action="store_true")

    def handle(self, *args, **opts):
        User = get_user_model()
        if opts["reset_passwords"]:
            for username, _, _ in ACCOUNTS:
                user = User.objects.filter(username=username).first()
                if user:
                    self._set_password(user)
            return
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

    def _set_password(self, user):
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save(update_fields=["password"])
        self.stdout.write(f"  demo account  {user.username:<10} password  {password}")
