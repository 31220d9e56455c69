"""Training rounds: snapshot + base model + method + hyper-parameters → progress, checkpoint, scores.

A round's row is the single source of truth a gpu worker and the pages share: the worker claims
it with a conditional UPDATE (so a redelivered message cannot run it twice), writes progress to
it, and reads `cancel_requested` between steps.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.db import in_choices

from . import quality


class Method(models.TextChoices):
    SFT = "sft", "SFT"
    DPO = "dpo", "DPO"
    MCMDPO = "mcmdpo", "MCM-DPO"


class Strategy(models.TextChoices):
    """How the processes of a multi-process round share the model (modeltrain.mcmdpo.launch)."""

    DDP = "ddp", "DDP (every process holds the model)"
    FSDP = "fsdp", "FSDP2 (full sharding)"
    DEEPSPEED_ZERO2 = "deepspeed_zero2", "DeepSpeed ZeRO-2"
    DEEPSPEED_ZERO3 = "deepspeed_zero3", "DeepSpeed ZeRO-3"


class RoundStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Training"
    EVALUATING = "evaluating", "Evaluating"
    GENERATING = "generating", "Generating candidates"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = [
    RoundStatus.RUNNING,
    RoundStatus.EVALUATING,
    RoundStatus.GENERATING,
]
FINISHED_STATUSES = [RoundStatus.DONE, RoundStatus.FAILED, RoundStatus.CANCELLED]


class TrainingRound(models.Model):
    project = models.ForeignKey(
        "annotate.Project", on_delete=models.CASCADE, related_name="training_rounds"
    )
    snapshot = models.ForeignKey(
        "snapshots.Snapshot", on_delete=models.PROTECT, related_name="training_rounds"
    )
    # Where training starts: a local folder / hub id / "tiny" (a tiny LLaVA built for the
    # project, CPU demos and tests), or a previous round's published model.
    base_model = models.CharField(max_length=500, blank=True)
    from_round = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next_rounds"
    )
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.MCMDPO)
    paradigm = models.CharField(max_length=20, default="both")
    negative_type = models.CharField(max_length=16, default="noise")
    # MCMDPOConfig.to_dict() without base_model/method/paradigm/negative_image (columns above).
    hyperparameters = models.JSONField(default=dict, blank=True)
    # Round-level knobs that are not training options: evaluation and feedback settings.
    options = models.JSONField(default=dict, blank=True)
    # Training processes on the worker's machine; null: one per GPU the worker sees (1 on a CPU).
    processes = models.PositiveSmallIntegerField(null=True, blank=True)
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.DDP)
    # Trained elsewhere (a cluster's multi-node run) and attached: no gpu-queue training.
    external = models.BooleanField(default=False)

    status = models.CharField(max_length=12, choices=RoundStatus.choices, default="queued")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    margins = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)  # [{step, loss, margins}] for curves
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    world_size = models.PositiveSmallIntegerField(default=0)  # processes the last run used
    # The process group of the running `train` child, so a later attempt can end an orphan.
    child_pgid = models.IntegerField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)

    output_dir = models.CharField(max_length=500, blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    resumed_from = models.CharField(max_length=500, blank=True)  # last resume's checkpoint
    scores = models.JSONField(default=dict, blank=True)
    base_scores = models.JSONField(default=dict, blank=True)
    eval_count = models.PositiveIntegerField(default=0)
    candidates_created = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Something worth knowing that is not a failure (e.g. why LLM pre-labelling was skipped).
    note = models.TextField(blank=True)
    # The LLM judging run over this round's new pairs (options["llm_prelabel"]), if started.
    label_run = models.ForeignKey(
        "labelers.LabelRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_id = models.CharField(max_length=64, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=in_choices("method", Method), name="round_method_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("status", RoundStatus), name="round_status_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("strategy", Strategy), name="round_strategy_valid"
            ),
            models.CheckConstraint(
                condition=Q(processes__isnull=True) | Q(processes__gte=1),
                name="round_processes_positive",
            ),
            models.CheckConstraint(
                condition=~Q(base_model="") | Q(from_round__isnull=False),
                name="round_has_base",
            ),
            models.CheckConstraint(
                condition=Q(step__lte=models.F("total_steps")) | Q(total_steps=0),
                name="round_step_lte_total",
            ),
        ]

    def __str__(self) -> str:
        return f"round {self.pk} ({self.method}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def percent(self) -> int:
        return int(100 * self.step / self.total_steps) if self.total_steps else 0


class RoundOutput(models.Model):
    """One alt-text the round's model wrote: for the test split (scored) or for feedback."""

    class Purpose(models.TextChoices):
        EVAL = "eval", "Evaluation (test split)"
        FEEDBACK = "feedback", "Feedback candidate"

    round = models.ForeignKey(TrainingRound, on_delete=models.CASCADE, related_name="outputs")
    post = models.ForeignKey("annotate.Post", on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    model = models.CharField(max_length=8, default="trained")  # "trained" or "base"
    text = models.TextField()
    reference = models.TextField(blank=True)
    alt_text = models.ForeignKey(
        "annotate.AltText", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pair = models.ForeignKey(
        "preferences.CandidatePair",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Why this feedback output did not become a pair (modeltrain.quality); "" when it did or is
    # not a feedback output.
    held_back = models.CharField(
        max_length=16, blank=True, default="", choices=list(quality.REASONS.items())
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["round", "post", "purpose", "model"], name="roundoutput_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"round {self.round_id} {self.purpose} output for post {self.post_id}"
