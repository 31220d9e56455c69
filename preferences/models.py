"""Candidate pairs, the facets raters answer, and judgements by humans and LLM labelers.

A judgement's `choice` always refers to the pair as stored (A = alt_a), whatever order the rater
saw; `shown_order` records that order so position bias can be measured.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from annotate.models import AltText, Post, Project
from core.db import in_choices


class FacetRole(models.TextChoices):
    """What a facet measures, for code that needs a particular one (the ranking facet of
    exports and rounds, the facets gold items score) whatever the project named it."""

    OVERALL = "overall", "Overall preference"
    IMAGE = "image", "Faithful to the image"
    CONTEXT = "context", "Fits the post context"
    OTHER = "other", "Other"


# (key, label, question, role) of the facets a new project starts with.
DEFAULT_FACETS = [
    (
        "overall",
        "Overall",
        "Which alt-text is better overall for this post?",
        FacetRole.OVERALL,
    ),
    (
        "faithful",
        "Faithful to the image",
        "Which describes what is in the image more accurately?",
        FacetRole.IMAGE,
    ),
    (
        "context",
        "Fits the post context",
        "Which fits what the post is saying better?",
        FacetRole.CONTEXT,
    ),
    ("concise", "Concise", "Which says what matters with fewer needless words?", FacetRole.OTHER),
    ("fluent", "Fluent", "Which reads more naturally and correctly?", FacetRole.OTHER),
]


class Facet(models.Model):
    """One question raters answer per pair; each project has its own configurable set."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="facets")
    key = models.SlugField(max_length=32)
    label = models.CharField(max_length=80)
    question = models.CharField(max_length=300)
    # At most one facet per project has each role but "other" (a constraint below).
    role = models.CharField(max_length=8, choices=FacetRole.choices, default=FacetRole.OTHER)
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    # Raters must answer a required facet to submit; an optional one may be left blank (no
    # judgement row is stored for it). A per-project choice: fewer required facets, fewer keys.
    required = models.BooleanField(default=True)

    class Meta:
        ordering = ["project", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="facet_unique_key"),
            models.UniqueConstraint(
                fields=["project", "role"],
                condition=~Q(role=FacetRole.OTHER),
                name="facet_unique_role",
            ),
            models.CheckConstraint(condition=in_choices("role", FacetRole), name="facet_role"),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.label}"


class PairSource(models.TextChoices):
    IMPORT = "import", "Imported preference"
    CORRECTION = "correction", "Correction (edited over original)"
    MODEL = "model", "Model round output"
    LLM_REWRITE = "llm-rewrite", "LLM rewrite"
    GOLD = "gold", "Gold (known answer)"


class Side(models.TextChoices):
    A = "A", "A"
    B = "B", "B"


class CandidatePair(models.Model):
    """Two alt-texts of one post to compare.

    `known_preference` is set when the pair's origin already says which side is better (an
    imported chosen/rejected record, a correction, a gold item); judged pairs leave it empty.
    """

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="pairs")
    alt_a = models.ForeignKey(AltText, on_delete=models.RESTRICT, related_name="pairs_as_a")
    alt_b = models.ForeignKey(AltText, on_delete=models.RESTRICT, related_name="pairs_as_b")
    source = models.CharField(max_length=16, choices=PairSource.choices)
    # NULL, not "": "no known preference" must not satisfy the A/B check by accident.
    known_preference = models.CharField(  # noqa: DJ001
        max_length=1, choices=Side.choices, null=True, blank=True
    )
    source_round_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(alt_a=F("alt_b")), name="pair_distinct_alts"),
            models.UniqueConstraint(fields=["alt_a", "alt_b"], name="pair_unique_alts"),
            models.CheckConstraint(
                condition=in_choices("source", PairSource), name="pair_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(known_preference__isnull=True) | in_choices("known_preference", Side),
                name="pair_known_preference_valid",
            ),
        ]
        indexes = [
            # The gold draw (one Next in twenty at the default rate) looks for the project's
            # gold pairs: without this it scanned every pair of every project (1 ms at 16,500
            # pairs, growing with the database); gold pairs are few, so the index is small.
            models.Index(fields=["post"], condition=Q(source="gold"), name="pair_gold_by_post"),
        ]

    def __str__(self) -> str:
        return f"pair {self.pk} ({self.source}) on post {self.post_id}"


class LLMLabeler(models.Model):
    """An LLM acting as a rater: a model id plus the prompt-template version it was asked with."""

    provider = models.CharField(max_length=32, default="gemini")
    model_id = models.CharField(max_length=100)
    prompt_version = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model_id", "prompt_version"], name="llmlabeler_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.model_id}@{self.prompt_version}"


class JudgementKind(models.TextChoices):
    HUMAN = "human", "Human rater"
    LLM = "llm", "LLM labeler"
    ADJUDICATION = "adjudication", "Reviewer adjudication"


class Choice(models.TextChoices):
    A = "A", "A is better"
    B = "B", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both-bad", "Both bad"


class ShownOrder(models.TextChoices):
    AB = "AB", "A shown first"
    BA = "BA", "B shown first"


# For membership tests on the submit path: a choices enum's `.values` builds a new list each time.
CHOICE_VALUES = frozenset(Choice.values)
SHOWN_ORDER_VALUES = frozenset(ShownOrder.values)


class Judgement(models.Model):
    # Indexed by (pair, facet) below; a second index on pair alone only slowed every insert.
    pair = models.ForeignKey(
        CandidatePair, on_delete=models.CASCADE, related_name="judgements", db_index=False
    )
    facet = models.ForeignKey(Facet, on_delete=models.CASCADE, related_name="judgements")
    kind = models.CharField(max_length=16, choices=JudgementKind.choices)
    rater_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="judgements",
    )
    rater_llm = models.ForeignKey(
        LLMLabeler, null=True, blank=True, on_delete=models.PROTECT, related_name="judgements"
    )
    choice = models.CharField(max_length=8, choices=Choice.choices)
    shown_order = models.CharField(max_length=2, choices=ShownOrder.choices, default=ShownOrder.AB)
    seconds_spent = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    # Set by clients (browser form, API) so a retried submit is recognised, not stored twice.
    client_key = models.CharField(max_length=64, blank=True)
    # Whether an LLM verdict for this pair was visible to the rater when they answered.
    llm_verdict_visible = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=in_choices("choice", Choice), name="judgement_choice_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("kind", JudgementKind), name="judgement_kind_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("shown_order", ShownOrder), name="judgement_shown_order_valid"
            ),
            # Exactly one rater, and an LLM rater exactly when the kind says so.
            models.CheckConstraint(
                condition=(
                    Q(kind=JudgementKind.LLM, rater_llm__isnull=False, rater_user__isnull=True)
                    | (
                        Q(kind__in=[JudgementKind.HUMAN, JudgementKind.ADJUDICATION])
                        & Q(rater_user__isnull=False, rater_llm__isnull=True)
                    )
                ),
                name="judgement_one_rater",
            ),
            models.CheckConstraint(
                condition=Q(seconds_spent__isnull=True) | Q(seconds_spent__gte=0),
                name="judgement_seconds_nonnegative",
            ),
            models.UniqueConstraint(
                fields=["pair", "facet", "rater_user", "kind"],
                condition=Q(rater_user__isnull=False),
                name="judgement_unique_user",
            ),
            models.UniqueConstraint(
                fields=["pair", "facet", "rater_llm"],
                condition=Q(rater_llm__isnull=False),
                name="judgement_unique_llm",
            ),
        ]
        indexes = [models.Index(fields=["pair", "facet"])]

    def __str__(self) -> str:
        who = self.rater_user or self.rater_llm
        return f"{who} on pair {self.pair_id}/{self.facet.key}: {self.choice}"


# --- The raters' queue ------------------------------------------------------------------


class AssignmentStatus(models.TextChoices):
    RESERVED = "reserved", "Reserved"
    DONE = "done", "Submitted"
    SKIPPED = "skipped", "Skipped"


class Assignment(models.Model):
    """One rater's reservation of one pair: the unit the queue serves and overlap counts.

    A reserved assignment counts against the project's overlap until `reserved_until`; after
    that its slot is free for other raters (reclaimed). One row per (pair, rater), so a rater
    is never served the same pair twice. `shown_order` is drawn when the item is reserved and
    travels with every judgement submitted for it.
    """

    # Indexed with pair below: Next groups a project's live assignments from the queue floor on.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    # Both led by the unique (pair, rater) and (rater, project, status) indexes below: no index
    # of their own (each index is written again when Submit changes the status).
    pair = models.ForeignKey(
        CandidatePair, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="assignments",
        db_index=False,
    )
    status = models.CharField(
        max_length=8, choices=AssignmentStatus.choices, default=AssignmentStatus.RESERVED
    )
    shown_order = models.CharField(max_length=2, choices=ShownOrder.choices, default=ShownOrder.AB)
    token = models.UUIDField(unique=True)
    reserved_at = models.DateTimeField()
    reserved_until = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "rater"], name="assignment_unique_rater"),
            models.CheckConstraint(
                condition=in_choices("status", AssignmentStatus), name="assignment_status_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("shown_order", ShownOrder),
                name="assignment_shown_order_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["pair", "status", "reserved_until"]),
            # A rater's items in a project, newest submission last: Next's "started" test, the
            # submission `u` undoes (the newest, read from the end) and the progress count
            # (selectors.rater_progress, and the recount in the progress triggers: the count,
            # and the median of the newest items) read this index alone; led by the old
            # (rater, project, status) index's columns, which it replaced.
            models.Index(
                fields=["rater", "project", "status", "submitted_at", "id"],
                include=["reserved_at", "reserved_until"],
                name="assignment_rater_history",
            ),
            models.Index(fields=["project", "pair"]),
        ]

    def __str__(self) -> str:
        return f"{self.rater} · pair {self.pair_id} · {self.status}"


class RaterProgress(models.Model):
    """A rater's progress in a project as the judge page shows it, kept up to date by
    PostgreSQL triggers on Assignment (preferences/sql/rater_progress_v1.sql); Django code
    never writes it (deleting a project or a rater takes their rows along), and it stays empty
    on other databases (they count from the history instead: selectors.rater_progress).

    Counting from the history on every Next read every item the rater had done in the
    project, which grows all day for a rater doing thousands; this is one row.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    items_done = models.PositiveIntegerField(default=0)
    # Seconds spent (submitted_at - reserved_at) on the newest submitted items (at most
    # selectors.PROGRESS_MEDIAN_ITEMS), oldest first: the median reads them.
    recent_seconds = models.JSONField(default=list)
    # The newest item's sort key (submitted_at, id): a submission after it is appended,
    # anything else makes the trigger count again from the history.
    newest_at = models.DateTimeField(null=True)
    newest_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rater", "project"], name="raterprogress_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} · project {self.project_id} · {self.items_done} done"


class ConsensusPending(models.Model):
    """A pair whose judgements changed after its consensus was last built (preferences.marks).

    Every write of judgements adds this row in its own transaction, so the mark commits with the
    answers and no change is ever lost; `preferences.consensus.services.consensus_refresh`
    rebuilds marked pairs and deletes their rows. It lives here, below consensus, so that the
    writers (rating, labelers, review) need not import consensus to mark. The table keeps its
    first name: the PostgreSQL Submit inserts into it in raw SQL.
    """

    pair = models.OneToOneField(
        CandidatePair, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Indexed by the (project, marked_at) index below, which refreshes read in that order.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    marked_at = models.DateTimeField()

    class Meta:
        db_table = "consensus_consensuspending"
        indexes = [
            models.Index(fields=["project", "marked_at"], name="consensus_c_project_b7450b_idx")
        ]

    def __str__(self) -> str:
        return f"pair {self.pair_id} pending since {self.marked_at:%Y-%m-%d %H:%M:%S}"


class SkipPolicy(models.TextChoices):
    OTHERS = "others", "Skipped items go to other raters only"
    LATER = "later", "Skipped items also come back to the skipper when nothing else is left"


class QueuePolicy(models.Model):
    """Per-project queue settings beyond Project's overlap and reservation time."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="queue_policy")
    skip_policy = models.CharField(
        max_length=8, choices=SkipPolicy.choices, default=SkipPolicy.OTHERS
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("skip_policy", SkipPolicy), name="queuepolicy_skip_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.skip_policy}"


class CorrectionDecision(models.TextChoices):
    EDITED = "edited", "Edited"
    ACCEPTED = "accepted", "Accepted the suggestion"
    KEPT = "kept", "Kept the original (rejected the suggestion)"
    UNCHANGED = "unchanged", "Saved without changes"


class CorrectionReview(models.Model):
    """That a rater has dealt with one alt-text on the correction screen, and how."""

    alt_text = models.ForeignKey(AltText, on_delete=models.CASCADE, related_name="reviews")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="correction_reviews"
    )
    decision = models.CharField(max_length=10, choices=CorrectionDecision.choices)
    result = models.ForeignKey(
        AltText, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["alt_text", "rater"], name="correctionreview_unique"),
            models.CheckConstraint(
                condition=in_choices("decision", CorrectionDecision),
                name="correctionreview_decision_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rater} {self.decision} alt {self.alt_text_id}"


class JudgementEdit(models.Model):
    """Audit of a rater's edit of an answer they had submitted (reopened from their history):
    the judgement row holds the new answer, this row what it replaced, and when."""

    pair = models.ForeignKey(CandidatePair, on_delete=models.CASCADE, related_name="+")
    facet = models.ForeignKey(Facet, on_delete=models.CASCADE, related_name="+")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judgement_edits"
    )
    # "" when the facet had no answer before (an optional facet answered on edit) or has none
    # after (an optional facet cleared).
    old_choice = models.CharField(max_length=8, blank=True)
    new_choice = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.rater} pair {self.pair_id}/{self.facet_id}: {self.old_choice} -> {self.new_choice}"


class RaterSettings(models.Model):
    """A rater's own settings for the judge screen: keyboard shortcuts (on/off and remapped,
    WCAG 2.1.4) and an optional daily goal. Copied into the session at sign-in and on save, so
    the judge screen reads them without a query."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_settings"
    )
    shortcuts_enabled = models.BooleanField(default=True)
    # action -> key, only the actions the rater changed (preferences.rating.keyprefs.DEFAULT_KEYS).
    keymap = models.JSONField(default=dict, blank=True)
    daily_goal = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"settings of {self.user}"
