"""The raw material: projects and their members, posts (the context), images, alt-texts.

Invariants live in the database (check and unique constraints), so a bug or a concurrent import
cannot store what the Python code would have refused.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.db import in_choices


class Platform(models.TextChoices):
    TWITTER = "twitter", "Twitter / X"
    PINTEREST = "pinterest", "Pinterest"
    OTHER = "other", "Other"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    DEV = "dev", "Dev"
    TEST = "test", "Test"


class Role(models.TextChoices):
    """Ordered by privilege: each role can do what the ones before it can."""

    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


class Project(models.Model):
    """A labelling campaign: which platforms, how many raters per item, the guidelines."""

    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown, shown to raters.")
    platforms = models.JSONField(default=list, blank=True)
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Distinct raters wanted per pair and facet set."
    )
    reservation_seconds = models.PositiveIntegerField(default=600)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_gte_1"),
            models.CheckConstraint(
                condition=Q(reservation_seconds__gte=10), name="project_reservation_gte_10s"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=in_choices("role", Role), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} in {self.project}"


class Image(models.Model):
    """One stored file per distinct image content; posts share it."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.FileField(max_length=255)
    mime = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="image_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(width__gt=0) & Q(height__gt=0), name="image_size_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}×{self.height} {self.mime}"


class Post(models.Model):
    """A social-media post: its text is the context the alt-text is written for."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="posts")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    external_id = models.CharField(max_length=255, blank=True)
    # sha256 of (image sha256, context): the identity that makes re-imports idempotent even
    # for sources whose record ids are only unique per file.
    content_key = models.CharField(max_length=64)
    context = models.TextField(blank=True)
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="posts")
    provenance = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_key"], name="post_unique_content"),
            models.CheckConstraint(
                condition=in_choices("platform", Platform), name="post_platform_valid"
            ),
            models.CheckConstraint(condition=in_choices("split", Split), name="post_split_valid"),
        ]
        indexes = [models.Index(fields=["project", "split"]), models.Index(fields=["external_id"])]

    def __str__(self) -> str:
        return f"{self.platform}:{self.external_id or self.pk}"


class AltTextOrigin(models.TextChoices):
    USER_WRITTEN = "user-written", "Written by the post's author"
    LLM_CORRECTED = "llm-corrected", "Corrected by the LLM"
    HUMAN_CORRECTED = "human-corrected", "Corrected by a rater"
    IMPORTED_CHOSEN = "imported-chosen", "Imported as chosen"
    IMPORTED_REJECTED = "imported-rejected", "Imported as rejected"
    REFERENCE = "reference", "Reference (test split ground truth)"
    MODEL = "model", "Written by a trained model"


# Origins whose text is one fact about the post: importing it again must not add a copy.
IMPORTED_ORIGINS = [
    AltTextOrigin.USER_WRITTEN,
    AltTextOrigin.IMPORTED_CHOSEN,
    AltTextOrigin.IMPORTED_REJECTED,
    AltTextOrigin.REFERENCE,
]
CORRECTION_ORIGINS = [AltTextOrigin.LLM_CORRECTED, AltTextOrigin.HUMAN_CORRECTED]


class AltText(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="alt_texts")
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64)
    origin = models.CharField(max_length=24, choices=AltTextOrigin.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="corrections"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Set for origin=model; a plain id so this app does not depend on modeltrain.
    source_round_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=in_choices("origin", AltTextOrigin), name="alttext_origin_valid"
            ),
            models.CheckConstraint(
                condition=~Q(origin__in=CORRECTION_ORIGINS) | Q(parent__isnull=False),
                name="alttext_correction_has_parent",
            ),
            models.UniqueConstraint(
                fields=["post", "origin", "text_sha256"],
                condition=Q(origin__in=IMPORTED_ORIGINS),
                name="alttext_imported_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.origin}] {self.text[:60]}"
