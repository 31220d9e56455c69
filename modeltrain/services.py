"""Writes for training rounds: start, cancel, and run one (train → evaluate → feed back).

`round_run` is what the gpu-queue task calls. It claims the round with one conditional UPDATE,
so a message delivered twice cannot run a round twice; a round whose worker died (stale
heartbeat) is taken over by the redelivered message and resumes from its newest complete
checkpoint; `attempts` counts the claims, and a round that killed its worker `max_attempts` times
fails with a message instead of looping. Every phase is idempotent (get-or-create on unique
keys), so resuming mid-evaluation or mid-feedback adds no duplicates. torch and the ML library
are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.models import AltText, AltTextOrigin, Post, Role
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError, NotFound
from preferences.models import CandidatePair

from . import selectors
from .models import (
    ACTIVE_STATUSES,
    Method,
    RoundOutput,
    RoundStatus,
    Strategy,
    TrainingRound,
)

log = logging.getLogger(__name__)

TINY = "tiny"
# Settings a "tiny" base gets unless the caller overrides them: enough steps to move a tiny
# random LLaVA on a CPU in seconds (the paper's 5e-7 / batch 64 would do nothing there).
# LoRA, unlike a real round's default: the tiny loop has always exercised the adapter path
# (saving, merging for generation, resuming without a reference copy), and stays seconds long.
TINY_DEFAULTS = {
    "use_lora": True,
    "learning_rate": 3e-3,
    "per_device_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "max_steps": 12,
    "save_steps": 4,
    "save_total_limit": None,
    "warmup_ratio": 0.0,
    "lr_scheduler": "constant",
    "beta": 1.0,
    "lora_r": 8,
}
TINY_OPTIONS = {"max_new_tokens": 16, "num_beams": 2, "eval_limit": 20, "feedback_limit": 8}
DEFAULT_OPTIONS = {
    "evaluate_base": True,  # score the base model too, for the comparison table
    "eval_limit": None,  # test-split posts to score (None: all)
    "feedback_limit": 50,  # posts the model writes new candidates for
    "num_beams": 3,  # the reference implementation's generation settings
    "max_new_tokens": 256,
    "batch_size": 8,
    "llm_prelabel": False,  # after feedback, the LLM judge labels the round's new pairs
    # The base model writes feedback candidates too (a round from a base model only), so that
    # raters' judgements rank it against the rounds (modeltrain.human_eval).
    "feedback_base": True,
    "max_candidate_chars": 400,  # longer outputs are held back (modeltrain.quality)
}
# What each option accepts: (type, lowest, highest, None allowed). Checked when a round is
# started, so a bad value is a 400 on the form/API instead of a failed round hours later.
OPTION_RULES = {
    "evaluate_base": (bool, None, None, False),
    "eval_limit": (int, 1, 1_000_000, True),  # None: every test-split post
    "feedback_limit": (int, 0, 100_000, False),
    "num_beams": (int, 1, 16, False),
    "max_new_tokens": (int, 1, 2048, False),
    "batch_size": (int, 1, 1024, False),
    "llm_prelabel": (bool, None, None, False),
    "feedback_base": (bool, None, None, False),
    "max_candidate_chars": (int, 1, 100_000, False),
}
# Bounds for the hyper-parameters whose nonsense values would only fail inside the trainer.
HYPER_BOUNDS = {
    "learning_rate": (0.0, 1.0),
    "per_device_batch_size": (1, 4096),
    "gradient_accumulation_steps": (1, 100_000),
    "num_epochs": (0.0, 1000.0),
    "max_steps": (-1, 10_000_000),
    "save_steps": (1, 10_000_000),
    "save_total_limit": (1, 10_000),
    "logging_steps": (1, 10_000_000),
    "lora_r": (1, 4096),
    "lora_alpha": (1, 65_536),
    "lora_dropout": (0.0, 1.0),
    "warmup_ratio": (0.0, 1.0),
    "beta": (0.0, 1000.0),
    "weight_decay": (0.0, 10.0),
    "max_grad_norm": (0.0, 1e6),
    "max_response_tokens": (1, 65_536),
    "max_context_chars": (1, 1_000_000),
    "noise_step": (0, 1000),
    "seed": (0, 2**32 - 1),
    "negative_seed": (0, 2**32 - 1),
}
HYPER_CHOICES = {
    "attention": ("auto", "sdpa", "flex"),
    "prompt_template": ("model", "vicuna_v1"),
}  # lr_scheduler: transformers' names
_TYPE_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def _conf(key: str):
    return settings.ALTPREF_ROUNDS[key]


def heartbeat_seconds() -> float:
    return float(_conf("HEARTBEAT_S"))


def rounds_root() -> Path:
    return Path(_conf("DIR") or Path(settings.MEDIA_ROOT) / "rounds")


def snapshot_folder(snapshot) -> Path:
    """The folder of a snapshot's files (the one place that knows where snapshots live)."""
    return Path(settings.MEDIA_ROOT) / snapshot.folder


# --- configuration ----------------------------------------------------------------------------


def paper_defaults(method: str) -> dict:
    """The paper's hyper-parameters for a method (ARCHITECTURE.md): effective batch, epochs, and
    full fine-tuning of every part (paradigm "both" is the round's own default).

    No learning rate: MCMDPOConfig derives it from the method and use_lora (the paper's 5e-7 /
    2e-5 for full fine-tuning, a LoRA rate for adapters), so a round that only switches LoRA on
    does not inherit a full fine-tuning rate; a rate in the hyper-parameters always wins.
    """
    if method == Method.SFT:
        return {"use_lora": False, "gradient_accumulation_steps": 128, "num_epochs": 1.0}
    if method == Method.DPO:
        return {"use_lora": False, "gradient_accumulation_steps": 64, "num_epochs": 1.0}
    return {"use_lora": False, "gradient_accumulation_steps": 64, "num_epochs": 2.0}


def round_config_build(
    *,
    method: str,
    base_model: str,
    paradigm: str = "both",
    negative_type: str = "noise",
    hyperparameters: dict | None = None,
    tiny_is_demo: bool = False,
):
    """An MCMDPOConfig for a round; bad options raise ApplicationError naming them.

    tiny_is_demo: the "tiny" base is the SFT-trained demo model (tiny_base_is_demo), which
    trains with its own defaults instead of those for a random tiny model."""
    from modeltrain.mcmdpo.config import MCMDPOConfig

    values = paper_defaults(method)
    if base_model == TINY:
        values.update(TINY_DEFAULTS)
        if tiny_is_demo:
            from modeltrain.mcmdpo.demo_model import PREFERENCE_DEFAULTS

            values.update(PREFERENCE_DEFAULTS)
    values.update(hyperparameters or {})
    for key in ("method", "base_model", "paradigm", "negative_image"):
        if key in values:
            raise ApplicationError(f'Set "{key}" with its own option, not in the hyper-parameters.')
    _hyperparameters_check(values)
    try:
        return MCMDPOConfig.from_dict(
            {
                **values,
                "method": method,
                "base_model": base_model,
                "paradigm": paradigm,
                "negative_image": negative_type,
            }
        )
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"Invalid training options: {exc}") from None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scheduler_names() -> tuple[str, ...]:
    from transformers import SchedulerType

    return tuple(t.value for t in SchedulerType)


def _hyperparameters_check(values: dict) -> None:
    """Each known hyper-parameter has the type its MCMDPOConfig field declares, within bounds."""
    import math
    from dataclasses import fields

    from modeltrain.mcmdpo.config import MCMDPOConfig

    declared = {f.name: str(f.type) for f in fields(MCMDPOConfig)}
    for key, value in values.items():
        if key not in declared:
            continue  # MCMDPOConfig.from_dict names unknown options
        if key == "weights":
            if not isinstance(value, dict):
                raise ApplicationError('"weights" must be an object of loss weights.')
            continue
        allowed = {
            _TYPE_NAMES[t.strip()] for t in declared[key].split("|") if t.strip() in _TYPE_NAMES
        }
        if not allowed:
            continue
        ok = (
            (value is None and type(None) in allowed)
            or (isinstance(value, bool) and bool in allowed)
            or (_is_number(value) and isinstance(value, int) and allowed & {int, float})
            or (_is_number(value) and isinstance(value, float) and float in allowed)
            or (isinstance(value, str) and str in allowed and len(value) <= 500)
        )
        if not ok:
            names = " or ".join(sorted("null" if t is type(None) else t.__name__ for t in allowed))
            raise ApplicationError(
                f'Hyper-parameter "{key}" must be {names}, not {json.dumps(value)[:80]}.',
                extra={"field": "hyperparameters", "key": key},
            )
        choices = HYPER_CHOICES.get(key) or (_scheduler_names() if key == "lr_scheduler" else ())
        if choices and value not in choices:
            raise ApplicationError(
                f'Hyper-parameter "{key}" must be one of {", ".join(choices)}.',
                extra={"field": "hyperparameters", "key": key},
            )
        if _is_number(value):
            if not math.isfinite(value):
                raise ApplicationError(f'Hyper-parameter "{key}" must be a finite number.')
            low, high = HYPER_BOUNDS.get(key, (None, None))
            if low is not None and not (low <= value <= high):
                raise ApplicationError(
                    f'Hyper-parameter "{key}" must be between {low} and {high}.',
                    extra={"field": "hyperparameters", "key": key},
                )


def round_options_check(options: dict) -> dict:
    """The round options with each value checked against OPTION_RULES (ApplicationError names
    the first bad one)."""
    if not isinstance(options, dict):
        raise ApplicationError("Round options must be a JSON object.")
    unknown = set(options) - set(OPTION_RULES)
    if unknown:
        raise ApplicationError(f"Unknown round options: {', '.join(sorted(unknown))}.")
    for key, value in options.items():
        kind, low, high, nullable = OPTION_RULES[key]
        if value is None and nullable:
            continue
        if kind is bool:
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        if not ok:
            wanted = (
                "true or false"
                if kind is bool
                else f"a whole number from {low} to {high}" + (" (or null)" if nullable else "")
            )
            raise ApplicationError(
                f'Round option "{key}" must be {wanted}.', extra={"field": "options", "key": key}
            )
    return options


def _stored_hyperparameters(config) -> dict:
    data = config.to_dict()
    for key in ("method", "base_model", "paradigm", "negative_image"):
        data.pop(key, None)
    return data


# --- start and cancel ---------------------------------------------------------------------------


def round_start(
    *,
    user,
    snapshot_id: int,
    method: str = Method.MCMDPO,
    base_model: str = "",
    from_round_id: int | None = None,
    paradigm: str = "both",
    negative_type: str = "noise",
    hyperparameters: dict | None = None,
    options: dict | None = None,
    project_id: int | None = None,
    processes: int | None = None,
    strategy: str = "",
    external: bool = False,
) -> TrainingRound:
    """Record a round (project admins only) and enqueue it on the gpu queue after commit.

    project_id, when given, is the project the caller is working in: a snapshot of any other
    project is "not found" there (the API's per-project routes). processes=None trains on every
    GPU the worker sees; strategy "" picks DDP for LoRA and FSDP for full fine-tuning. An
    `external` round is not queued: it is trained elsewhere (round_launch_command) and attached.
    """
    from snapshots.models import Snapshot, SnapshotKind

    snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None or (project_id is not None and snapshot.project_id != project_id):
        raise NotFound(f"No snapshot {snapshot_id} in this project.")
    if snapshot.project_id is None:
        raise ApplicationError("That snapshot belongs to no project.")
    project = project_get_for_user(user=user, project_id=snapshot.project_id, min_role=Role.ADMIN)
    if not snapshot.is_done:
        raise ApplicationError(f"Snapshot {snapshot.pk} is not complete ({snapshot.status}).")
    if method not in Method.values:
        raise ApplicationError(f'Unknown method "{method}"; use one of sft, dpo, mcmdpo.')
    if hyperparameters is not None and not isinstance(hyperparameters, dict):
        raise ApplicationError("Hyper-parameters must be a JSON object.")
    wanted = SnapshotKind.TALT if method == Method.SFT else SnapshotKind.PALT
    if snapshot.kind not in (wanted, SnapshotKind.PALT):
        raise ApplicationError(
            f"{Method(method).label} trains on a {wanted} snapshot; snapshot {snapshot.pk} is "
            f"{snapshot.kind}."
        )
    from_round = None
    if from_round_id is not None:
        if base_model:
            raise ApplicationError("Give either a base model or a previous round, not both.")
        from_round = TrainingRound.objects.filter(pk=from_round_id, project=project).first()
        if from_round is None:
            raise NotFound(f"No round {from_round_id} in this project.")
        if from_round.status != RoundStatus.DONE or not from_round.checkpoint_path:
            raise ApplicationError(
                f"Round {from_round.pk} has no finished checkpoint to start from."
            )
    else:
        base_model = (base_model or _conf("BASE_MODEL") or "").strip()
        if not base_model:
            raise ApplicationError("Give a base model (a folder or hub id) or a previous round.")
        if (
            base_model != TINY
            and base_model.startswith(("/", "."))
            and not Path(base_model).exists()
        ):
            raise ApplicationError(f"The base model folder {base_model} does not exist.")
    tiny = base_model == TINY or (from_round is not None and from_round.base_model == TINY)
    config = round_config_build(
        method=method,
        base_model=TINY if tiny else (base_model or "from-round"),
        paradigm=paradigm,
        negative_type=negative_type,
        hyperparameters=hyperparameters,
        tiny_is_demo=tiny and tiny_base_is_demo(project_id=project.pk),
    )
    strategy = round_strategy_check(
        processes=processes, strategy=strategy, use_lora=config.use_lora
    )
    merged_options = round_options_check(
        {**DEFAULT_OPTIONS, **(TINY_OPTIONS if tiny else {}), **round_options_check(options or {})}
    )
    with transaction.atomic():
        round_ = TrainingRound.objects.create(
            project=project,
            snapshot=snapshot,
            base_model=base_model if from_round is None else "",
            from_round=from_round,
            method=method,
            paradigm=config.paradigm,
            negative_type=str(config.negative_image.value),
            hyperparameters=_stored_hyperparameters(config),
            options=merged_options,
            max_attempts=_conf("MAX_ATTEMPTS"),
            processes=processes,
            strategy=strategy,
            external=bool(external),
            created_by=user,
        )
        if not external:
            _enqueue_on_commit(round_)
    return round_


MAX_PROCESSES = 64


def round_strategy_check(*, processes, strategy: str, use_lora: bool) -> str:
    """The strategy a round will use ("" → the default for its kind of fine-tuning); a bad
    process count or strategy raises ApplicationError (a 400 on the form and the API)."""
    from modeltrain.mcmdpo.launch import default_strategy

    if processes is not None and (
        not isinstance(processes, int)
        or isinstance(processes, bool)
        or not 1 <= processes <= MAX_PROCESSES
    ):
        raise ApplicationError(
            f"Processes must be a whole number from 1 to {MAX_PROCESSES}, or empty for one per "
            "GPU of the worker.",
            extra={"field": "processes"},
        )
    strategy = strategy or default_strategy(use_lora=use_lora)
    if strategy not in Strategy.values:
        raise ApplicationError(
            f'Unknown strategy "{strategy}"; use one of {", ".join(Strategy.values)}.',
            extra={"field": "strategy"},
        )
    return strategy


def _enqueue_on_commit(round_: TrainingRound) -> None:
    """Send the round to the gpu queue after commit through the job outbox (core.jobs): with the
    broker down the round stays queued (round_.queue_down) and the sweep sends it later."""
    round_.queue_down = False

    def send():
        round_.queue_down = _enqueue(round_.pk) is False

    transaction.on_commit(send)


def _enqueue(round_id: int) -> bool:
    from core import jobs

    from .jobs import ROUND_JOB

    return jobs.enqueue(ROUND_JOB, round_id)


def round_cancel(*, user, round_id: int) -> TrainingRound:
    """Cancel a round: a queued one at once, a running one between two training steps."""
    round_ = TrainingRound.objects.filter(pk=round_id).first()
    if round_ is None:
        raise NotFound(f"No round {round_id}.")
    project_get_for_user(user=user, project_id=round_.project_id, min_role=Role.ADMIN)
    if round_.is_finished:
        raise ApplicationError(f"Round {round_.pk} is already {round_.status}.", status_code=409)
    TrainingRound.objects.filter(pk=round_id, status=RoundStatus.QUEUED).update(
        status=RoundStatus.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    )
    TrainingRound.objects.filter(pk=round_id, status__in=ACTIVE_STATUSES).update(
        cancel_requested=True
    )
    round_.refresh_from_db()
    return round_


# --- the worker side ------------------------------------------------------------------------------


class RoundBusy(Exception):
    """Another live worker holds the round (its heartbeat is fresh); try again later."""


def _stale_before():
    return timezone.now() - timedelta(seconds=3 * _conf("HEARTBEAT_S"))


def round_claim(*, round_id: int, task_id: str = "") -> TrainingRound | None:
    """Take the round for this worker, or return None when there is nothing to do.

    One conditional UPDATE: a queued round, or an active one whose worker's heartbeat is stale
    (that worker died; this is the redelivered message), with attempts left. Raises RoundBusy
    when a live worker holds it.
    """
    now = timezone.now()
    claimable = Q(status=RoundStatus.QUEUED) | Q(status__in=ACTIVE_STATUSES) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=_stale_before())
    )
    taken = (
        TrainingRound.objects.filter(claimable, pk=round_id, cancel_requested=False)
        .filter(attempts__lt=F("max_attempts"))
        .update(
            status=Case(
                When(status=RoundStatus.QUEUED, then=Value(RoundStatus.RUNNING)),
                default=F("status"),
            ),
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            started_at=Coalesce(F("started_at"), Value(now)),
            task_id=task_id or F("task_id"),
        )
    )
    if taken:
        return TrainingRound.objects.get(pk=round_id)
    round_ = TrainingRound.objects.filter(pk=round_id).first()
    if round_ is None or round_.is_finished:
        return None  # a redelivered message for a finished round: nothing to do
    stale = round_.heartbeat_at is None or round_.heartbeat_at < _stale_before()
    if round_.status in ACTIVE_STATUSES and not stale:
        raise RoundBusy(f"round {round_id} is held by a live worker")
    if round_.cancel_requested:
        _finish(round_id, RoundStatus.CANCELLED, from_statuses=[round_.status])
        return None
    # attempts exhausted: the previous workers died while running this round
    _finish(
        round_id,
        RoundStatus.FAILED,
        from_statuses=[round_.status],
        error=(
            f"The worker running this round stopped without finishing {round_.attempts} times "
            f"(limit {round_.max_attempts}); giving up. A round that kills its worker usually "
            "runs out of GPU or host memory: lower the batch size or sequence lengths and start "
            "a new round."
        ),
    )
    return None


def _finish(round_id: int, status: str, *, from_statuses, **fields) -> int:
    return TrainingRound.objects.filter(pk=round_id, status__in=from_statuses).update(
        status=status, finished_at=timezone.now(), **fields
    )


def _advance(round_id: int, from_status: str, to_status: str, **fields) -> bool:
    return bool(
        TrainingRound.objects.filter(pk=round_id, status=from_status).update(
            status=to_status, heartbeat_at=timezone.now(), **fields
        )
    )


def _Heartbeat(round_id: int):  # noqa: N802 - kept as the context manager's old name
    """Touches heartbeat_at from a background thread while the round's worker is alive (the
    shared core.jobs.Heartbeat, which survives a database blip)."""
    from core.jobs import Heartbeat

    from .jobs import ROUND_JOB

    return Heartbeat(ROUND_JOB, round_id, task_id=None, every=_conf("HEARTBEAT_S"))


def _cancel_requested(round_id: int) -> bool:
    return TrainingRound.objects.filter(pk=round_id, cancel_requested=True).exists()


def round_run(*, round_id: int, task_id: str = "") -> str:
    """Run (or resume) a round to the end; returns the final status, or "skipped"."""
    round_ = round_claim(round_id=round_id, task_id=task_id)
    if round_ is None:
        return "skipped"
    with _Heartbeat(round_id):
        try:
            return _run_phases(round_)
        except Exception as exc:  # noqa: BLE001 - any failure ends up on the round's page
            log.exception("round %s failed", round_id)
            tail = (
                str(exc)
                if isinstance(exc, TrainingFailed)
                else "".join(traceback.format_exception_only(type(exc), exc)).strip()
            )
            _finish(round_id, RoundStatus.FAILED, from_statuses=ACTIVE_STATUSES, error=tail[-4000:])
            return RoundStatus.FAILED


def _run_phases(round_: TrainingRound) -> str:
    rid = round_.pk
    if round_.status == RoundStatus.RUNNING:
        final = _train(round_)
        if final is None or _cancel_requested(rid):
            _finish(rid, RoundStatus.CANCELLED, from_statuses=ACTIVE_STATUSES)
            return RoundStatus.CANCELLED
        _advance(rid, RoundStatus.RUNNING, RoundStatus.EVALUATING, checkpoint_path=str(final))
        round_.refresh_from_db()
    if round_.status == RoundStatus.EVALUATING:
        if _cancel_requested(rid):
            _finish(rid, RoundStatus.CANCELLED, from_statuses=ACTIVE_STATUSES)
            return RoundStatus.CANCELLED
        _evaluate(round_)
        _advance(rid, RoundStatus.EVALUATING, RoundStatus.GENERATING)
        round_.refresh_from_db()
    if round_.status == RoundStatus.GENERATING:
        if _cancel_requested(rid):
            _finish(rid, RoundStatus.CANCELLED, from_statuses=ACTIVE_STATUSES)
            return RoundStatus.CANCELLED
        from preferences.consensus.services import consensus_refresh

        from .feedback import round_feed_back

        # Feedback pits the model's text against each post's best alt-text, which the blended
        # consensus decides: bring it up to date with the answers first.
        consensus_refresh(project_id=round_.project_id)
        round_feed_back(round_)
        _prelabel(round_)
        _finish(rid, RoundStatus.DONE, from_statuses=[RoundStatus.GENERATING])
    round_.refresh_from_db()
    return round_.status


# --- training -----------------------------------------------------------------------------------


def _output_dir(round_: TrainingRound) -> Path:
    return Path(round_.output_dir) if round_.output_dir else rounds_root() / f"round-{round_.pk}"


def _resolve_base(round_: TrainingRound) -> str:
    """A folder or hub id the ML library can load: tiny → built once; from-round → its model."""
    if round_.from_round_id:
        previous = Path(round_.from_round.checkpoint_path)
        if (previous / "adapter_config.json").exists():
            return str(_merged_copy(previous, _output_dir(round_) / "base-merged"))
        return str(previous)
    if round_.base_model == TINY:
        return str(tiny_base_for_project(project_id=round_.project_id))
    return round_.base_model


def _publish_dir(build, target: Path) -> Path:
    """Build a folder next to `target` and rename it into place, so readers never see half of it."""
    if (target / "config.json").exists():
        return target
    staging = target.with_name(f".{target.name}.tmp-{time.monotonic_ns()}")
    build(staging)
    try:
        staging.rename(target)
    except OSError:  # another worker published it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _merged_copy(adapter_folder: Path, target: Path) -> Path:
    def build(staging: Path):
        from modeltrain.mcmdpo.generate import load_trained

        model, processor = load_trained(adapter_folder)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)

    return _publish_dir(build, target)


def _project_texts(project_id: int) -> list[str]:
    texts = list(Post.objects.filter(project_id=project_id).values_list("context", flat=True))
    texts += list(
        AltText.objects.filter(post__project_id=project_id)
        .exclude(origin=AltTextOrigin.MODEL)
        .values_list("text", flat=True)
    )
    return texts


def tiny_base_is_demo(*, project_id: int) -> bool:
    """Whether the project's "tiny" base is the demo model: it knows every word of the project,
    as for the seeded demo."""
    from modeltrain.mcmdpo import demo_model

    texts = _project_texts(project_id)
    return bool(texts) and demo_model.knows_all_words(texts)


def tiny_base_for_project(*, project_id: int) -> Path:
    """The "tiny" base: the demo model (already SFT-trained on the alt-text task) when
    tiny_base_is_demo; else a random tiny LLaVA whose tokenizer knows the project's words (CPU
    tests), built once."""
    from modeltrain.mcmdpo import demo_model
    from modeltrain.mcmdpo.synthetic import vocabulary

    if tiny_base_is_demo(project_id=project_id):
        return demo_model.ensure_demo_model()
    project_texts = _project_texts(project_id)
    texts = list(vocabulary()) + project_texts
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]

    def build(staging: Path):
        from modeltrain.mcmdpo.tiny import save_tiny_llava

        save_tiny_llava(staging, texts, seed=0)

    return _publish_dir(build, rounds_root() / f"tiny-base-p{project_id}-{digest}")


class TrainingFailed(Exception):
    """The `train` child exited with an error; the message is the tail of its stderr."""


def _config_for_child(round_: TrainingRound, base: str) -> dict:
    from modeltrain.mcmdpo.config import MCMDPOConfig

    config = MCMDPOConfig.from_dict(
        {
            **round_.hyperparameters,
            "method": round_.method,
            "base_model": base,
            "paradigm": round_.paradigm,
            "negative_image": round_.negative_type,
        }
    )
    return config.to_dict()


def round_config_write(*, round_: TrainingRound, out: Path, base: str) -> Path:
    """Write the round's `train --config` file (and round.json) into `out`; the config's path."""
    out.mkdir(parents=True, exist_ok=True)
    data = _config_for_child(round_, base)
    (out / "round.json").write_text(json.dumps({"round": round_.pk, "config": data}, indent=1))
    for key in ("base_model", "method"):  # given on the command line
        data.pop(key)
    path = out / "config.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def _worker_processes(round_: TrainingRound) -> tuple[int, bool]:
    """(processes, cpu): the round's count, or one per GPU this worker sees (1 without CUDA)."""
    import torch

    cuda = torch.cuda.is_available()
    return round_.processes or (torch.cuda.device_count() if cuda else 1) or 1, not cuda


def _train(round_: TrainingRound) -> Path | None:
    """Run (or resume) training in a child process group; the final folder, None if cancelled.

    The child is the package's `train` CLI (under `accelerate launch` for more than one process);
    its progress log is tailed into the row, cancel ends the whole group, and a group a dead
    worker left behind is ended before this attempt relaunches into the same folder.
    """
    from modeltrain import child_process
    from modeltrain.mcmdpo.launch import LaunchError, fsdp_wrap_classes, launch_command
    from modeltrain.mcmdpo.progress import ProgressReader

    rid = round_.pk
    out = _output_dir(round_)
    out.mkdir(parents=True, exist_ok=True)
    if not round_.output_dir:
        TrainingRound.objects.filter(pk=rid).update(output_dir=str(out))
    child_process.end_orphans(out)
    (out / child_process.STOP_FILE).unlink(missing_ok=True)
    (out / "result.json").unlink(missing_ok=True)  # only this launch's result counts
    base = _resolve_base(round_)
    config_path = round_config_write(round_=round_, out=out, base=base)
    processes, cpu = _worker_processes(round_)
    multi = processes > 1
    try:
        argv = launch_command(
            strategy=round_.strategy,
            processes=processes,
            snapshot=snapshot_folder(round_.snapshot),
            base=base,
            method=round_.method,
            output=out,
            config=config_path,
            main_process_port=child_process.free_port() if multi else None,
            cpu=cpu,
            fsdp_wrap=fsdp_wrap_classes(base) if multi and round_.strategy == "fsdp" else None,
        )
    except LaunchError as exc:
        raise TrainingFailed(str(exc)) from None

    every = max(1, _conf("PROGRESS_EVERY"))
    history = [h for h in round_.history if isinstance(h, dict)]
    reader = ProgressReader(out)
    since = child_process.stderr_size(out)

    def on_event(event: dict) -> None:
        if event.get("event") == "start" and event.get("resumed_from"):
            TrainingRound.objects.filter(pk=rid).update(resumed_from=event["resumed_from"])
        if event.get("event") != "log" or "step" not in event:
            return
        point = {
            "step": event["step"],
            "loss": event.get("loss"),
            "margins": event.get("margins") or {},
        }
        # A resumed run repeats the steps after its checkpoint: keep one point per step.
        while history and history[-1]["step"] >= point["step"]:
            history.pop()
        history.append(point)
        if point["step"] % every and point["step"] != event.get("total"):
            return
        TrainingRound.objects.filter(pk=rid, status=RoundStatus.RUNNING).update(
            step=min(point["step"], event.get("total") or point["step"]),
            total_steps=event.get("total") or 0,
            loss=point["loss"],
            margins=point["margins"],
            history=history,
            heartbeat_at=timezone.now(),
        )

    # Replay what earlier launches logged: a dead worker's child may have trained (and saved) a
    # few steps after the row's last update, and this launch resumes after them.
    for event in reader.new_events():
        on_event(event)
    proc = child_process.start(argv, out)
    TrainingRound.objects.filter(pk=rid).update(child_pgid=proc.pid, world_size=processes)
    cancelled = False
    try:
        last_check = 0.0
        while proc.poll() is None:
            for event in reader.new_events():
                on_event(event)
            now = time.monotonic()
            if now - last_check >= 1.0:  # one indexed read a second
                last_check = now
                if _cancel_requested(rid):
                    cancelled = True
                    child_process.stop_group(out, proc, **_stop_graces())
                    break
            time.sleep(0.2)
    finally:
        # Whatever happened here (an exception included), no training process outlives this.
        if proc.poll() is None or child_process.members(out):
            child_process.stop_group(out, proc, stop_grace=0.0, term_grace=5.0)
        TrainingRound.objects.filter(pk=rid).update(child_pgid=None)
    for event in reader.new_events():
        on_event(event)
    result = _read_result(out)
    TrainingRound.objects.filter(pk=rid).update(
        history=history,
        loss=history[-1]["loss"] if history else None,
        margins=history[-1]["margins"] if history else {},
        **(
            {
                "step": result["global_step"],
                "total_steps": max(result["max_steps"], result["global_step"]),
                "resumed_from": result.get("resumed_from") or "",
            }
            if result
            else {}
        ),
    )
    if cancelled or _cancel_requested(rid):
        return None
    if proc.returncode != 0 or result is None:
        tail = child_process.stderr_tail(out, since) or "(no output on stderr)"
        raise TrainingFailed(f"Training exited with status {proc.returncode}:\n{tail}"[-4000:])
    if result.get("stopped"):
        raise TrainingFailed(
            "Training was stopped from outside the round (a signal) before its end."
        )
    return Path(result["final_dir"])


def _stop_graces() -> dict:
    # STOP file first (a clean stop at the next step), then SIGTERM, then SIGKILL.
    return {
        "stop_grace": float(_conf("STOP_GRACE_S")),
        "term_grace": 15.0,
    }


def _read_result(out: Path) -> dict | None:
    try:
        data = json.loads((out / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "global_step" in data else None


# --- runs outside the gpu queue (multi-node clusters) -------------------------------------------


def round_launch_prepare(*, round_: TrainingRound, output_dir: str | None = None) -> dict:
    """Write the round's config file for an external run; what its launch line needs."""
    out = Path(output_dir) if output_dir else _output_dir(round_)
    base = _resolve_base(round_)
    config = round_config_write(round_=round_, out=out, base=base)
    return {"output_dir": str(out), "config": str(config), "base": base}


def _progress_history(out: Path) -> tuple[list[dict], int]:
    """(history, world size) from a run's progress log: the last entry per step, in step order."""
    from modeltrain.mcmdpo.progress import ProgressReader

    points, world = {}, 0
    for event in ProgressReader(out).new_events():
        if event.get("event") == "start":
            world = int(event.get("world_size") or 0)
        elif event.get("event") == "log" and isinstance(event.get("step"), int):
            points[event["step"]] = {
                "step": event["step"],
                "loss": event.get("loss"),
                "margins": event.get("margins") or {},
            }
    return [points[k] for k in sorted(points)], world


def round_attach(*, round_id: int, output_dir: str, user=None) -> TrainingRound:
    """Attach a finished external run (a `train` output folder) to a round and queue the rest
    of the round (evaluation, feedback) on the gpu queue.

    The folder must hold result.json of a run that finished (not stopped) and a sealed final/
    trained with the round's method. Only a queued, failed or cancelled round takes one (409
    otherwise). `user` None: the management command (the operator).
    """
    from modeltrain.mcmdpo import checkpoints

    round_ = TrainingRound.objects.filter(pk=round_id).first()
    if round_ is None:
        raise NotFound(f"No round {round_id}.")
    if user is not None:
        project_get_for_user(user=user, project_id=round_.project_id, min_role=Role.ADMIN)
    out = Path(str(output_dir or "").strip())
    if not str(output_dir or "").strip() or not out.is_absolute():
        raise ApplicationError("Give the run's output folder as an absolute path.")
    if not out.is_dir():
        raise ApplicationError(f"{out} is not a folder on this server.")
    result = _read_result(out)
    if result is None:
        raise ApplicationError(
            f"{out} has no result.json: the run did not finish (or is not a run)."
        )
    if result.get("stopped"):
        raise ApplicationError(f"The run in {out} was stopped before its end; resume it first.")
    final = out / "final"
    if not checkpoints.is_complete(final):
        raise ApplicationError(
            f"{final} is missing or not sealed (its COMPLETE.json must list every file)."
        )
    try:
        trained = json.loads((final / "altpref_training.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ApplicationError(
            f"{final} has no altpref_training.json: not a train CLI run."
        ) from None
    if trained.get("method") != round_.method:
        raise ApplicationError(
            f"The run trained {trained.get('method')}; round {round_.pk} is {round_.method}."
        )
    history, world = _progress_history(out)
    updated = TrainingRound.objects.filter(
        pk=round_.pk,
        status__in=[RoundStatus.QUEUED, RoundStatus.FAILED, RoundStatus.CANCELLED],
    ).update(
        status=RoundStatus.EVALUATING,
        external=True,
        output_dir=str(out),
        checkpoint_path=str(final),
        step=result["global_step"],
        total_steps=max(result.get("max_steps") or 0, result["global_step"]),
        history=history,
        loss=history[-1]["loss"] if history else None,
        margins=history[-1]["margins"] if history else {},
        world_size=world,
        resumed_from=result.get("resumed_from") or "",
        error="",
        cancel_requested=False,
        attempts=0,
        heartbeat_at=None,
        finished_at=None,
    )
    if not updated:
        round_.refresh_from_db()
        raise ApplicationError(
            f"Round {round_.pk} is {round_.status}: only a queued, failed or cancelled round "
            "takes an external run.",
            status_code=409,
        )
    transaction.on_commit(lambda: _enqueue_phases(round_.pk))
    round_.refresh_from_db()
    return round_


def _enqueue_phases(round_id: int) -> None:
    """Queue evaluation and feedback of an attached run (round_claim takes an EVALUATING round
    without a heartbeat)."""
    from celery import uuid

    from .tasks import round_run_task

    task_id = uuid()
    TrainingRound.objects.filter(pk=round_id).update(task_id=task_id)
    round_run_task.apply_async(args=[round_id], task_id=task_id)


# --- evaluation and feedback -------------------------------------------------------------------


def _generate(
    round_: TrainingRound, model_dir: str, items: list[tuple[str, str]], *, trained: bool
):
    import torch

    from modeltrain.mcmdpo.data import PromptStyle
    from modeltrain.mcmdpo.generate import generate_alt_texts, load_trained
    from modeltrain.mcmdpo.modeling import load_model_and_processor

    # The base model is asked the way the round's model was trained to be asked (a fair
    # comparison); the reference's LLaVA needs its vicuna_v1 template and square pictures.
    hyper = round_.hyperparameters
    style = PromptStyle(
        template=hyper.get("prompt_template", "model"),
        pad_to_square=bool(hyper.get("pad_to_square", False)),
    )
    options = round_.options
    if trained:
        model, processor = load_trained(model_dir)
    else:
        model, processor = load_model_and_processor(model_dir)
        model.eval()
    if torch.cuda.is_available():
        model = model.to("cuda")
    return generate_alt_texts(
        model,
        processor,
        items,
        num_beams=int(options.get("num_beams") or 3),
        max_new_tokens=int(options.get("max_new_tokens") or 64),
        batch_size=int(options.get("batch_size") or 8),
        style=style,
    )


def _image_path(post: Post) -> str:
    return str(Path(settings.MEDIA_ROOT) / post.image.file.name)


def _score_outputs(round_: TrainingRound, posts, texts, references, *, which: str) -> dict:
    from modeltrain.scoring import score_records

    records = [
        {"idx": post.pk, "chosen": ref, "response": text}
        for post, ref, text in zip(posts, references, texts, strict=True)
    ]
    out = _output_dir(round_)
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"eval_{which}.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return score_records(records).summary


def _evaluate(round_: TrainingRound) -> None:
    """Generate alt-text for the project's test split and score it like the reference scorer."""
    rows = selectors.eval_posts(
        project_id=round_.project_id, limit=round_.options.get("eval_limit")
    )
    if not rows:
        TrainingRound.objects.filter(pk=round_.pk).update(scores={}, eval_count=0)
        return
    posts = [post for post, _ in rows]
    refs = [ref for _, ref in rows]
    items = [(_image_path(p), p.context) for p in posts]
    texts = _generate(round_, round_.checkpoint_path, items, trained=True)
    with transaction.atomic():
        for post, ref, text in zip(posts, refs, texts, strict=True):
            RoundOutput.objects.update_or_create(
                round=round_,
                post=post,
                purpose=RoundOutput.Purpose.EVAL,
                model="trained",
                defaults={"text": text, "reference": ref},
            )
    scores = _score_outputs(round_, posts, texts, refs, which="trained")
    base_scores = {}
    if round_.options.get("evaluate_base", True):
        base_texts = _generate(round_, _resolve_base(round_), items, trained=False)
        base_scores = _score_outputs(round_, posts, base_texts, refs, which="base")
        with transaction.atomic():  # kept for the side-by-side view
            for post, ref, text in zip(posts, refs, base_texts, strict=True):
                RoundOutput.objects.update_or_create(
                    round=round_,
                    post=post,
                    purpose=RoundOutput.Purpose.EVAL,
                    model="base",
                    defaults={"text": text, "reference": ref},
                )
    TrainingRound.objects.filter(pk=round_.pk).update(
        scores=scores, base_scores=base_scores, eval_count=len(posts), heartbeat_at=timezone.now()
    )


def _prelabel(round_: TrainingRound) -> None:
    """options["llm_prelabel"]: start an LLM judging run over the pairs this round created.

    Optional help for the raters, so it never fails the round: when the judge is not configured
    (or anything else stops it) the round records a note and finishes normally. The run's
    batches go to the default queue; the gpu worker does not wait for them.
    """
    round_.refresh_from_db(fields=["options", "label_run", "note"])
    if not round_.options.get("llm_prelabel") or round_.label_run_id:
        return  # off, or started already by an earlier attempt of this round
    from preferences.labelers.models import LabelTask
    from preferences.labelers.services import label_run_start

    if not CandidatePair.objects.filter(source_round_id=round_.pk).exists():
        note = "LLM pre-labelling: this round created no new pairs to judge."
        TrainingRound.objects.filter(pk=round_.pk).update(note=note)
        return
    try:
        with transaction.atomic():
            run = label_run_start(
                project=round_.project,
                task=LabelTask.JUDGE,
                user=round_.created_by,
                source_round_id=round_.pk,
            )
            TrainingRound.objects.filter(pk=round_.pk).update(
                label_run=run,
                note=f"LLM pre-labelling: judging run {run.pk} over {run.total} new pairs.",
            )
    except ApplicationError as exc:
        TrainingRound.objects.filter(pk=round_.pk).update(
            note=f"LLM pre-labelling skipped: {exc.message}"
        )
    except Exception as exc:  # noqa: BLE001 - optional step: the trained round stays good
        log.exception("round %s: LLM pre-labelling could not start", round_.pk)
        TrainingRound.objects.filter(pk=round_.pk).update(
            note=f"LLM pre-labelling could not start: {type(exc).__name__}: {exc}"[:2000]
        )
