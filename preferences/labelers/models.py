"""LLM calls with their provenance and cost, the answer cache, labelling runs, and what each
LLM label was made from.

Every HTTP attempt is one LLMCall (failed ones too), so cost and failure rates are auditable.
Labels themselves live where the rest of the app reads them: Judgement (kind="llm") and
AltText (origin="llm-corrected"); LLMVerdict and LLMCorrection link them to their calls.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models import AltText, Project
from core.db import in_choices
from preferences.models import CandidatePair, Choice, Facet, Judgement, LLMLabeler


class LabelTask(models.TextChoices):
    CORRECT = "correct", "Grammar correction"
    JUDGE = "judge", "Facet judgement"


class CallStatus(models.TextChoices):
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    BUDGET = "budget", "Stopped: budget reached"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_RUN_STATUSES = [RunStatus.DONE, RunStatus.BUDGET, RunStatus.FAILED, RunStatus.CANCELLED]


class LabelRun(models.Model):
    """One labelling run over a project's items, processed in batches by Celery tasks."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_runs")
    task = models.CharField(max_length=8, choices=LabelTask.choices)
    labeler = models.ForeignKey(LLMLabeler, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    limit = models.PositiveIntegerField(null=True, blank=True)
    batch_size = models.PositiveIntegerField(default=10)
    budget_usd = models.DecimalField(max_digits=10, decimal_places=4)
    spent_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    http_calls = models.PositiveIntegerField(default=0)
    # Items are walked in id order; the cursor is the last id handled, so a redelivered batch
    # task resumes instead of repeating work.
    cursor = models.BigIntegerField(default=0)
    # Set when a training round asked for its new model pairs to be pre-labelled: the run
    # then judges only the pairs whose source_round_id is this (None: every pair).
    source_round_id = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    # The batch's claim (core.jobs): the message that holds the run, its worker's last
    # heartbeat (NULL between batches: the next message may take it), and how many times in a
    # row a batch was taken over from a worker that stopped.
    task_id = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=in_choices("task", LabelTask), name="labelrun_task"),
            models.CheckConstraint(
                condition=in_choices("status", RunStatus), name="labelrun_status"
            ),
            models.CheckConstraint(condition=Q(budget_usd__gte=0), name="labelrun_budget_gte_0"),
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="labelrun_batch_gte_1"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} {self.task} on {self.project} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES

    @property
    def percent(self) -> int:
        handled = self.done + self.failed + self.skipped
        return int(100 * handled / self.total) if self.total else (100 if self.is_finished else 0)


class LLMCall(models.Model):
    """One HTTP attempt at the LLM, successful or not, with everything needed to audit it."""

    labeler = models.ForeignKey(LLMLabeler, on_delete=models.PROTECT, related_name="calls")
    run = models.ForeignKey(
        LabelRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    task = models.CharField(max_length=8, choices=LabelTask.choices)
    model_id = models.CharField(max_length=100)
    prompt_version = models.CharField(max_length=64)
    # sha256 of the exact request inputs (model, prompt version, image hash, texts, facets, order)
    request_hash = models.CharField(max_length=64, db_index=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=8, choices=CallStatus.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    raw_answer = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    alt_text = models.ForeignKey(
        AltText, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pair = models.ForeignKey(
        CandidatePair, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    shown_order = models.CharField(max_length=2, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=in_choices("task", LabelTask), name="llmcall_task"),
            models.CheckConstraint(
                condition=in_choices("status", CallStatus), name="llmcall_status"
            ),
            models.CheckConstraint(
                condition=Q(status=CallStatus.OK) | ~Q(error=""), name="llmcall_failed_has_error"
            ),
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.model_id} {self.task} {self.status} ({self.latency_ms} ms)"


class LLMCacheEntry(models.Model):
    """A validated answer for (provider, model, prompt version, inputs): a re-run reuses it for
    free. The provider is part of the key: a vLLM server may serve a model under any name."""

    provider = models.CharField(max_length=32, default="gemini")
    model_id = models.CharField(max_length=100)
    prompt_version = models.CharField(max_length=64)
    inputs_hash = models.CharField(max_length=64)
    answer = models.JSONField()
    call = models.ForeignKey(LLMCall, null=True, on_delete=models.SET_NULL, related_name="+")
    hits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model_id", "prompt_version", "inputs_hash"],
                name="llmcache_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.model_id}@{self.prompt_version} {self.inputs_hash[:12]}"


class LLMVerdict(models.Model):
    """How one LLM judgement came about: the verdicts in both shown orders and the calls.

    If the two orders disagree the judgement is stored as a tie and `flipped` is set, which the
    consensus treats as low confidence and the dashboard counts as position bias.
    """

    judgement = models.OneToOneField(
        Judgement, on_delete=models.CASCADE, related_name="llm_verdict"
    )
    facet = models.ForeignKey(Facet, on_delete=models.CASCADE, related_name="+")
    choice_ab = models.CharField(max_length=8, choices=Choice.choices)
    choice_ba = models.CharField(max_length=8, choices=Choice.choices)
    flipped = models.BooleanField()
    call_ab = models.ForeignKey(LLMCall, null=True, on_delete=models.SET_NULL, related_name="+")
    call_ba = models.ForeignKey(LLMCall, null=True, on_delete=models.SET_NULL, related_name="+")
    from_cache = models.BooleanField(default=False)
    run = models.ForeignKey(LabelRun, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"{self.choice_ab}/{self.choice_ba} → judgement {self.judgement_id}"


class LLMCorrection(models.Model):
    """Provenance of one LLM grammar correction (the llm-corrected AltText) or of a no-change."""

    source = models.ForeignKey(AltText, on_delete=models.CASCADE, related_name="llm_corrections")
    labeler = models.ForeignKey(LLMLabeler, on_delete=models.PROTECT, related_name="+")
    # NULL when the LLM found nothing to fix: there is nothing for raters to review.
    result = models.OneToOneField(
        AltText, null=True, blank=True, on_delete=models.CASCADE, related_name="llm_provenance"
    )
    call = models.ForeignKey(LLMCall, null=True, on_delete=models.SET_NULL, related_name="+")
    from_cache = models.BooleanField(default=False)
    run = models.ForeignKey(LabelRun, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "labeler"], name="llmcorrection_unique"),
        ]

    def __str__(self) -> str:
        return f"correction of alt {self.source_id} → {self.result_id}"
