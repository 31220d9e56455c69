"""Blended labels per pair and facet, per-project blending settings, rater reliability, gold.

Consensus rows are derived data: consensus_refresh rebuilds the pairs that writers marked
(preferences.marks), so they can always be recomputed; nothing depends on them being written in
order.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models import Project
from core.db import in_choices
from preferences.models import CandidatePair, Choice, Facet, FacetRole, LLMLabeler


class Method(models.TextChoices):
    WEIGHTED = "weighted", "Weighted vote"
    DAWID_SKENE = "dawid-skene", "Dawid–Skene"
    ADJUDICATION = "adjudication", "Reviewer adjudication"


class ConsensusPolicy(models.Model):
    """Per-project blending, agreement, blind-first and gold settings (defaults if absent)."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="consensus_policy"
    )
    method = models.CharField(max_length=12, choices=Method.choices, default=Method.WEIGHTED)
    weight_adjudication = models.FloatField(default=5.0)
    weight_human = models.FloatField(default=1.0)
    weight_llm = models.FloatField(default=0.5)
    # Confidence below this sends the pair and facet to the review queue.
    review_threshold = models.FloatField(default=0.6)
    # Raters do not see LLM verdicts for a pair until they have submitted their own.
    blind_first = models.BooleanField(default=True)
    # Share of queue items that are gold (known-answer) pairs, 0..0.5.
    gold_rate = models.FloatField(default=0.05)
    # Scale a rater's weight by their gold accuracy once they have this many gold answers.
    gold_downweight = models.BooleanField(default=True)
    gold_min_answers = models.PositiveSmallIntegerField(default=5)
    # Class prior from the last Dawid–Skene fit (Choice order); None until fitted.
    ds_prior = models.JSONField(null=True, blank=True)
    ds_fitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("method", Method) & ~Q(method=Method.ADJUDICATION),
                name="consensuspolicy_method",
            ),
            models.CheckConstraint(
                condition=Q(weight_adjudication__gte=0, weight_human__gte=0, weight_llm__gte=0),
                name="consensuspolicy_weights_nonneg",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=0.5), name="consensuspolicy_gold_rate"
            ),
            models.CheckConstraint(
                condition=Q(review_threshold__gte=0, review_threshold__lte=1),
                name="consensuspolicy_threshold",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.method}"


class Consensus(models.Model):
    pair = models.ForeignKey(CandidatePair, on_delete=models.CASCADE, related_name="consensus")
    facet = models.ForeignKey(Facet, on_delete=models.CASCADE, related_name="consensus")
    label = models.CharField(max_length=8, choices=Choice.choices)
    confidence = models.FloatField()
    method = models.CharField(max_length=12, choices=Method.choices)
    # {"human": 1.0, "llm": 0.5, ...} and the per-label weighted scores that decided it.
    weights = models.JSONField(default=dict)
    scores = models.JSONField(default=dict)
    # {"human": {"A": 2}, "llm": {"tie": 1}, "adjudication": {}} — raw votes by kind.
    counts = models.JSONField(default=dict)
    n_judgements = models.PositiveIntegerField(default=0)
    # Share of human votes that agree with the label; None without human votes.
    human_agreement = models.FloatField(null=True, blank=True)
    flagged = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "facet"], name="consensus_unique"),
            models.CheckConstraint(condition=in_choices("label", Choice), name="consensus_label"),
            models.CheckConstraint(condition=in_choices("method", Method), name="consensus_method"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=1), name="consensus_confidence"
            ),
        ]
        indexes = [models.Index(fields=["facet", "flagged"])]

    def __str__(self) -> str:
        return f"pair {self.pair_id}/{self.facet_id}: {self.label} ({self.confidence:.2f})"


class RaterReliability(models.Model):
    """One rater's (human or LLM) reliability in a project: Dawid–Skene fit and gold accuracy."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reliabilities")
    rater_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    rater_llm = models.ForeignKey(
        LLMLabeler, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Dawid–Skene confusion matrix: confusion[true][given] = P(given | true), labels in
    # Choice order; None until fitted.
    confusion = models.JSONField(null=True, blank=True)
    ds_accuracy = models.FloatField(null=True, blank=True)
    n_judgements = models.PositiveIntegerField(default=0)
    gold_answers = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    fitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(rater_user__isnull=True) ^ Q(rater_llm__isnull=True),
                name="reliability_one_rater",
            ),
            models.UniqueConstraint(
                fields=["project", "rater_user"],
                condition=Q(rater_user__isnull=False),
                name="reliability_unique_user",
            ),
            models.UniqueConstraint(
                fields=["project", "rater_llm"],
                condition=Q(rater_llm__isnull=False),
                name="reliability_unique_llm",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rater_user or self.rater_llm} in {self.project}"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answers if self.gold_answers else None


class GoldKind(models.TextChoices):
    OTHER_POST = "other-post", "Alt-text of another post's image"
    FILENAME = "filename", "A file name"
    BOILERPLATE = "boilerplate", 'Boilerplate "image of …"'
    POST_TEXT = "post-text", "The post text copied as alt-text"


# Roles of the facets on which a gold item's answer is known; other facets are not scored.
GOLD_FACET_ROLES = [FacetRole.OVERALL, FacetRole.IMAGE]


class GoldItem(models.Model):
    """A known-answer pair (CandidatePair source="gold"): a good alt-text vs a known-bad one."""

    pair = models.OneToOneField(CandidatePair, on_delete=models.CASCADE, related_name="gold")
    kind = models.CharField(max_length=12, choices=GoldKind.choices)
    facet_keys = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=in_choices("kind", GoldKind), name="golditem_kind"),
        ]

    def __str__(self) -> str:
        return f"gold {self.kind} pair {self.pair_id}"
