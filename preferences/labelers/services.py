"""Writes for LLM labelling: robust calls (cache, rate limit, retries, budget), corrections,
judgements in both orders, and labelling runs processed in batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from annotate.models import AltText, AltTextOrigin, Project
from core import jobs
from core.errors import ApplicationError, NotFound
from preferences.marks import pairs_mark_changed
from preferences.models import (
    CandidatePair,
    Choice,
    Facet,
    Judgement,
    JudgementKind,
    LLMLabeler,
    ShownOrder,
)

from . import answers
from .base import Labeler, LabelerError
from .config import NOT_CONFIGURED, Provider, ProviderSettings, provider_default, provider_get
from .jobs import LABEL_RUN_JOB
from .models import (
    CallStatus,
    LabelRun,
    LabelTask,
    LLMCacheEntry,
    LLMCall,
    LLMCorrection,
    LLMVerdict,
    RunStatus,
)
from .prompts import prompt_load
from .ratelimit import limiter_for

logger = logging.getLogger(__name__)

MAX_RUN_LIMIT = 1_000_000
# A run gives up after this many items in a row fail: the provider is down or the key is wrong.
MAX_CONSECUTIVE_FAILURES = 5
MAX_BACKOFF_S = 60.0
# Pre-call cost guess for the budget check: ~1 image (258 tokens) + prompt, and an answer.
EST_INPUT_TOKENS = 1_000
EST_OUTPUT_TOKENS = 400


class LLMCallFailed(Exception):
    """The item could not be labelled (after retries, or the answer was invalid)."""


class BudgetExhausted(Exception):
    pass


@dataclass
class LabelContext:
    """What one labelling step needs besides the item: the client, its provider and settings,
    the rater, the run."""

    impl: Labeler
    provider: Provider
    cfg: ProviderSettings
    labeler: LLMLabeler
    task: str
    run: LabelRun | None = None
    sleep: Any = time.sleep


def _sha256(data: Any) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()


def llm_labeler_get_or_create(*, model_id: str, task: str, provider: str) -> LLMLabeler:
    """The rater row for (provider, model, prompt version of `task`)."""
    version = prompt_load(task).version
    labeler, _ = LLMLabeler.objects.get_or_create(
        provider=provider, model_id=model_id, prompt_version=version
    )
    return labeler


def _provider_for(provider: str | None, impl: Labeler | None) -> Provider:
    """The named provider, the one `impl` speaks, or the default; 409 when none is usable."""
    key = provider or (impl.provider if impl is not None else None)
    chosen = provider_get(key) if key else provider_default()
    if chosen is None or (impl is None and not chosen.settings().configured):
        raise ApplicationError(NOT_CONFIGURED, status_code=409)
    return chosen


def label_context_build(
    *,
    task: str,
    run: LabelRun | None = None,
    impl: Labeler | None = None,
    provider: str | None = None,
) -> LabelContext:
    """`impl` replaces the provider's client (tests); a run uses its labeler's provider."""
    chosen = _provider_for(run.labeler.provider if run else provider, impl)
    cfg = chosen.settings()
    impl = impl or chosen.build(cfg)
    labeler = (
        run.labeler
        if run
        else llm_labeler_get_or_create(model_id=impl.model_id, task=task, provider=chosen.key)
    )
    return LabelContext(impl=impl, provider=chosen, cfg=cfg, labeler=labeler, task=task, run=run)


def _image_bytes(post) -> tuple[bytes, str]:
    try:
        with post.image.file.open("rb") as handle:
            return handle.read(), post.image.mime
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise LLMCallFailed(f"The image file of post {post.pk} is missing from storage.") from exc


def _run_add(run: LabelRun | None, **deltas) -> None:
    if run is not None and deltas:
        LabelRun.objects.filter(pk=run.pk).update(**{k: F(k) + v for k, v in deltas.items()})
        for k, v in deltas.items():
            setattr(run, k, getattr(run, k) + v)


def llm_generate(
    *,
    ctx: LabelContext,
    prompt: str,
    image: tuple[bytes, str],
    inputs: dict,
    schema: dict,
    parse,
    targets: dict,
) -> tuple[Any, LLMCall | None, bool]:
    """One validated answer for `inputs`: from the cache, or from the LLM with retries.

    Returns (parsed answer, the LLMCall that produced it, from_cache). Every HTTP attempt is
    recorded as an LLMCall; an invalid answer is a failed call and raises LLMCallFailed.
    """
    version = ctx.labeler.prompt_version
    model_id = ctx.impl.model_id
    provider = ctx.provider.key
    inputs_hash = _sha256({"model": model_id, "prompt_version": version, "inputs": inputs})
    cached = LLMCacheEntry.objects.filter(
        provider=provider, model_id=model_id, prompt_version=version, inputs_hash=inputs_hash
    ).first()
    if cached is not None:
        LLMCacheEntry.objects.filter(pk=cached.pk).update(hits=F("hits") + 1)
        _run_add(ctx.run, cache_hits=1)
        return cached.answer, cached.call, True

    run = ctx.run
    if run is not None:
        estimate = ctx.provider.cost(
            model_id=model_id, input_tokens=EST_INPUT_TOKENS, output_tokens=EST_OUTPUT_TOKENS
        )
        if run.spent_usd + estimate > run.budget_usd:
            raise BudgetExhausted(
                f"Budget reached: spent ${run.spent_usd:.4f} of ${run.budget_usd:.4f}; "
                f"the next call (about ${estimate:.4f}) would exceed it."
            )

    common = dict(
        labeler=ctx.labeler,
        run=run,
        task=ctx.task,
        model_id=model_id,
        prompt_version=version,
        request_hash=inputs_hash,
        **targets,
    )
    limiter = limiter_for(model_id=f"{provider}:{model_id}", rpm=ctx.cfg.rpm)
    attempts = ctx.cfg.max_retries + 1
    for attempt in range(1, attempts + 1):
        limiter.acquire()
        try:
            raw = ctx.impl.generate(
                prompt=prompt, image_bytes=image[0], mime=image[1], schema=schema
            )
        except LabelerError as exc:
            LLMCall.objects.create(
                **common,
                attempt=attempt,
                status=CallStatus.FAILED,
                http_status=exc.http_status,
                error=answers.storable(exc.message),
                latency_ms=exc.latency_ms,
            )
            _run_add(run, http_calls=1)
            if exc.transient and attempt < attempts:
                # Exponential backoff with jitter, so parallel workers do not retry in step.
                delay = min(MAX_BACKOFF_S, ctx.cfg.retry_base_delay_s * 2 ** (attempt - 1))
                ctx.sleep(delay * random.uniform(0.5, 1.0))
                continue
            suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
            raise LLMCallFailed(exc.message + suffix) from exc

        cost = ctx.provider.cost(
            model_id=model_id, input_tokens=raw.input_tokens, output_tokens=raw.output_tokens
        )
        measured = dict(
            **common,
            attempt=attempt,
            http_status=raw.http_status,
            raw_answer=answers.storable(raw.text),
            latency_ms=raw.latency_ms,
            input_tokens=raw.input_tokens,
            output_tokens=raw.output_tokens,
            cost_usd=cost,
        )
        _run_add(run, http_calls=1, spent_usd=cost)
        try:
            parsed = parse(raw.text)
        except answers.AnswerInvalid as exc:
            message = answers.storable(str(exc), limit=500)
            LLMCall.objects.create(**measured, status=CallStatus.FAILED, error=message)
            raise LLMCallFailed(message) from exc
        call = LLMCall.objects.create(**measured, status=CallStatus.OK)
        LLMCacheEntry.objects.get_or_create(
            provider=provider,
            model_id=model_id,
            prompt_version=version,
            inputs_hash=inputs_hash,
            defaults={"answer": parsed, "call": call},
        )
        return parsed, call, False
    raise AssertionError("unreachable")  # pragma: no cover


# --- Grammar correction -----------------------------------------------------------------


def alt_text_llm_correct(*, alt_text: AltText, ctx: LabelContext) -> LLMCorrection:
    """Ask the LLM to fix grammar and spelling; store an llm-corrected AltText if it changed."""
    existing = LLMCorrection.objects.filter(source=alt_text, labeler=ctx.labeler).first()
    if existing is not None:
        return existing
    post = alt_text.post
    image = _image_bytes(post)
    template = prompt_load(LabelTask.CORRECT)
    parsed, call, from_cache = llm_generate(
        ctx=ctx,
        prompt=template.render(context=post.context, alt_text=alt_text.text),
        image=image,
        inputs={"image": post.image.sha256, "context": post.context, "alt_text": alt_text.text},
        schema=answers.correction_schema(),
        parse=lambda text: answers.correction_parse(text, original=alt_text.text),
        targets={"alt_text": alt_text},
    )
    with transaction.atomic():
        result = None
        if parsed["changed"]:
            text = parsed["corrected"]
            result = AltText.objects.create(
                post=post,
                text=text,
                text_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                origin=AltTextOrigin.LLM_CORRECTED,
                parent=alt_text,
            )
        correction, _ = LLMCorrection.objects.get_or_create(
            source=alt_text,
            labeler=ctx.labeler,
            defaults={"result": result, "call": call, "from_cache": from_cache, "run": ctx.run},
        )
    return correction


# --- Facet judgements in both orders ----------------------------------------------------

_SWAP = {Choice.A: Choice.B, Choice.B: Choice.A}


def _to_stored(verdict: str, shown_order: str) -> str:
    """A verdict about the shown order ("A" = shown first) as a choice about the stored pair."""
    return _SWAP.get(verdict, verdict) if shown_order == ShownOrder.BA else verdict


def pair_llm_judge(*, pair: CandidatePair, ctx: LabelContext) -> list[Judgement]:
    """Judge every active facet of the pair in both orders; store one LLM judgement per facet.

    If the orders disagree on a facet (position bias) the facet is stored as a tie and the
    verdict is marked flipped (low confidence). Nothing is stored unless both orders answered.
    """
    facets = list(Facet.objects.filter(project_id=pair.post.project_id, is_active=True))
    done = set(
        Judgement.objects.filter(pair=pair, rater_llm=ctx.labeler).values_list(
            "facet_id", flat=True
        )
    )
    facets = [f for f in facets if f.id not in done]
    if not facets:
        return []
    post = pair.post
    image = _image_bytes(post)
    template = prompt_load(LabelTask.JUDGE)
    keys = [f.key for f in facets]
    facet_lines = "\n".join(f"- {f.key}: {f.question}" for f in facets)
    verdicts = {}
    for order in (ShownOrder.AB, ShownOrder.BA):
        first, second = (
            (pair.alt_a.text, pair.alt_b.text)
            if order == ShownOrder.AB
            else (pair.alt_b.text, pair.alt_a.text)
        )
        verdicts[order] = llm_generate(
            ctx=ctx,
            prompt=template.render(
                facets=facet_lines, context=post.context, first=first, second=second
            ),
            image=image,
            inputs={
                "image": post.image.sha256,
                "context": post.context,
                "first": first,
                "second": second,
                "facets": [[f.key, f.question] for f in facets],
            },
            schema=answers.judgement_schema(keys),
            parse=lambda text: answers.judgement_parse(text, facet_keys=keys),
            targets={"pair": pair, "shown_order": order},
        )
    (ans_ab, call_ab, cache_ab), (ans_ba, call_ba, cache_ba) = (
        verdicts[ShownOrder.AB],
        verdicts[ShownOrder.BA],
    )
    stored = []
    with transaction.atomic():
        for facet in facets:
            choice_ab = _to_stored(ans_ab[facet.key]["verdict"], ShownOrder.AB)
            choice_ba = _to_stored(ans_ba[facet.key]["verdict"], ShownOrder.BA)
            flipped = choice_ab != choice_ba
            rationale = ans_ab[facet.key]["rationale"]
            if flipped:
                rationale = (
                    f"Position-dependent verdict ({choice_ab} shown A-first, {choice_ba} "
                    f"shown B-first): recorded as a low-confidence tie. {rationale}"
                )
            try:
                with transaction.atomic():
                    judgement = Judgement.objects.create(
                        pair=pair,
                        facet=facet,
                        kind=JudgementKind.LLM,
                        rater_llm=ctx.labeler,
                        choice=Choice.TIE if flipped else choice_ab,
                        shown_order=ShownOrder.AB,
                        rationale=rationale[: answers.MAX_RATIONALE_CHARS * 2],
                    )
                    LLMVerdict.objects.create(
                        judgement=judgement,
                        facet=facet,
                        choice_ab=choice_ab,
                        choice_ba=choice_ba,
                        flipped=flipped,
                        call_ab=call_ab,
                        call_ba=call_ba,
                        from_cache=cache_ab and cache_ba,
                        run=ctx.run,
                    )
            except IntegrityError:
                continue  # a concurrent run stored this facet first
            stored.append(judgement)
        if stored:
            pairs_mark_changed(project_id=facets[0].project_id, pair_ids=[pair.pk])
    return stored


# --- Runs -------------------------------------------------------------------------------


def item_max_bad_answers() -> int:
    return int(getattr(settings, "GEMINI_ITEM_MAX_BAD_ANSWERS", 3))


def _flagged(*, task: str, labeler: LLMLabeler) -> QuerySet:
    """Ids of items the LLM answered badly (invalid, hostile) item_max_bad_answers() times.

    A bad answer is a failed call that got an HTTP 200 (a refused answer, not an outage); an
    item attempt stops at its first bad answer, so each counts one attempt. Flagged items are
    left out of later runs, so one poisonous item never blocks the project's labelling.
    """
    field = "alt_text" if task == LabelTask.CORRECT else "pair"
    return (
        LLMCall.objects.filter(
            labeler=labeler,
            status=CallStatus.FAILED,
            http_status=200,
            **{f"{field}__isnull": False},
        )
        .values(field)
        .annotate(bad=Count("id"))
        .filter(bad__gte=item_max_bad_answers())
        .values(field)
    )


def _candidates(
    *, project: Project, task: str, labeler: LLMLabeler, source_round_id: int | None = None
) -> QuerySet:
    flagged = _flagged(task=task, labeler=labeler)
    if task == LabelTask.CORRECT:
        return (
            AltText.objects.filter(post__project=project, origin=AltTextOrigin.USER_WRITTEN)
            .exclude(llm_corrections__labeler=labeler)
            .exclude(pk__in=flagged)
            .order_by("id")
        )
    pairs = CandidatePair.objects.filter(post__project=project)
    if source_round_id is not None:
        pairs = pairs.filter(source_round_id=source_round_id)
    return pairs.exclude(judgements__rater_llm=labeler).exclude(pk__in=flagged).order_by("id")


def _label_item(*, item, ctx: LabelContext) -> None:
    """Label one item; any failure of this item alone becomes LLMCallFailed.

    A database error while storing (it should not happen once answers are sanitised) is
    rolled back to a savepoint and reported without its SQL, which stays in the worker log.
    """
    savepoint = transaction.savepoint()
    try:
        if ctx.task == LabelTask.CORRECT:
            alt_text_llm_correct(alt_text=item, ctx=ctx)
        else:
            pair_llm_judge(pair=item, ctx=ctx)
    except (DatabaseError, UnicodeError) as exc:
        transaction.savepoint_rollback(savepoint)
        logger.exception("storing the LLM answer for item %s failed", item.pk)
        raise LLMCallFailed(
            f"Storing the answer for item {item.pk} failed ({type(exc).__name__}); "
            "details are in the worker log."
        ) from exc
    except BaseException:
        transaction.savepoint_commit(savepoint)  # keep the failed calls' records
        raise
    transaction.savepoint_commit(savepoint)


def label_run_start(
    *,
    project: Project,
    task: str,
    user=None,
    limit: int | None = None,
    budget_usd: Decimal | float | str | None = None,
    batch_size: int | None = None,
    impl: Labeler | None = None,
    enqueue: bool = True,
    source_round_id: int | None = None,
    provider: str | None = None,
) -> LabelRun:
    """Create a run over the items not yet labelled and enqueue its first batch after commit.

    `provider` is a registered provider key (config.PROVIDERS); None takes the default one.
    enqueue=False leaves the batches to the caller (llm_label --sync, tests).
    source_round_id restricts a judge run to the pairs that training round produced.
    """
    if task not in LabelTask.values:
        raise ApplicationError(f'Unknown task "{task}"; use "correct" or "judge".')
    if source_round_id is not None and task != LabelTask.JUDGE:
        raise ApplicationError("Only a judge run can be restricted to a round's pairs.")
    chosen = _provider_for(provider, impl)
    cfg = chosen.settings()
    if limit is not None and not (1 <= int(limit) <= MAX_RUN_LIMIT):
        raise ApplicationError(f"The limit must be between 1 and {MAX_RUN_LIMIT}.")
    try:
        budget = Decimal(str(budget_usd)) if budget_usd not in (None, "") else cfg.budget_usd
    except ArithmeticError:
        raise ApplicationError("The budget must be a number of US dollars.") from None
    if not budget.is_finite() or budget <= 0:
        raise ApplicationError("The budget must be a positive number of US dollars.")
    batch = int(batch_size or cfg.batch_size)
    if not 1 <= batch <= 500:
        raise ApplicationError("The batch size must be between 1 and 500.")
    if task == LabelTask.JUDGE and not project.facets.filter(is_active=True).exists():
        raise ApplicationError("This project has no active facets to judge.")
    model_id = impl.model_id if impl else cfg.model_id
    labeler = llm_labeler_get_or_create(model_id=model_id, task=task, provider=chosen.key)
    available = _candidates(
        project=project, task=task, labeler=labeler, source_round_id=source_round_id
    ).count()
    total = min(available, int(limit)) if limit else available
    run = LabelRun.objects.create(
        project=project,
        task=task,
        labeler=labeler,
        limit=limit,
        batch_size=batch,
        budget_usd=budget,
        total=total,
        source_round_id=source_round_id,
        started_by=user if getattr(user, "is_authenticated", False) else None,
        message="" if total else "Nothing to label: every item already has an LLM label.",
        status=RunStatus.QUEUED if total else RunStatus.DONE,
    )
    run.queue_down = False
    if total and enqueue:
        # Through the job outbox: with the broker down the run stays queued (run.queue_down)
        # and the sweep sends it when the queue is back.
        jobs.enqueue_on_commit(LABEL_RUN_JOB, run)
    return run


def _finish(run: LabelRun, status: str, message: str = "") -> None:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    LabelRun.objects.filter(pk=run.pk).update(
        status=status, message=message, finished_at=run.finished_at
    )


def label_run_batch(*, run_id: int, impl: Labeler | None = None, task_id: str = "") -> LabelRun:
    """Label the next batch of a run's items; returns the run (finished or with more to do).

    Each batch claims the run (core.jobs) and releases it at the end, so the next batch's
    message, or a sweep's after a worker died, takes it; a duplicate message for a batch that a
    live worker is running raises jobs.JobBusy. Items already labelled are skipped and the cursor
    makes a taken-over batch continue where the last one stopped.
    """
    claimed = jobs.claim(LABEL_RUN_JOB, run_id, task_id=task_id)
    run = LabelRun.objects.select_related("project", "labeler").filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such labelling run.")
    if run.is_finished:
        return run
    if claimed is None:  # takeovers exhausted: a batch keeps killing its worker
        _finish(
            run,
            RunStatus.FAILED,
            f"The worker labelling this run stopped {run.attempts} times in a row without "
            "finishing a batch; giving up. Retry the run to continue from where it stopped.",
        )
        return run
    try:
        ctx = label_context_build(task=run.task, run=run, impl=impl)
    except ApplicationError as exc:
        _finish(run, RunStatus.FAILED, exc.message)
        return run
    if run.started_at is None:
        run.started_at = timezone.now()
        LabelRun.objects.filter(pk=run.pk).update(started_at=run.started_at)
    with jobs.Heartbeat(LABEL_RUN_JOB, run.pk, task_id=run.task_id) as heartbeat:
        run = _label_batch(run, ctx, heartbeat)
    if not run.is_finished and not heartbeat.lost.is_set():
        jobs.release(LABEL_RUN_JOB, run.pk, task_id=run.task_id)
    return run


def _label_batch(run: LabelRun, ctx: LabelContext, heartbeat: jobs.Heartbeat) -> LabelRun:
    remaining = run.total - (run.done + run.failed + run.skipped)
    items = list(
        _candidates(
            project=run.project,
            task=run.task,
            labeler=run.labeler,
            source_round_id=run.source_round_id,
        )
        .filter(id__gt=run.cursor)
        .select_related("post__image")[: min(run.batch_size, max(remaining, 0))]
    )
    if not items:
        _finish(run, RunStatus.DONE, run.message)
        return run
    consecutive = 0
    for item in items:
        if heartbeat.lost.is_set():
            return run  # taken over after a stall: the other worker goes on
        if LabelRun.objects.filter(pk=run.pk, status=RunStatus.CANCELLED).exists():
            run.status = RunStatus.CANCELLED
            return run
        try:
            _label_item(item=item, ctx=ctx)
        except BudgetExhausted as exc:
            _finish(run, RunStatus.BUDGET, str(exc))
            return run
        except LLMCallFailed as exc:
            consecutive += 1
            _run_add(run, failed=1)
            message = str(exc)
            if (
                _flagged(task=run.task, labeler=run.labeler)
                .filter(**{"alt_text" if run.task == LabelTask.CORRECT else "pair": item.pk})
                .exists()
            ):
                message = (
                    f"Item {item.pk} is flagged after {item_max_bad_answers()} bad answers; "
                    f"later runs skip it. Last: {message}"
                )
            run.cursor, run.message = item.pk, message[:500]
            LabelRun.objects.filter(pk=run.pk).update(cursor=run.cursor, message=run.message)
            if consecutive >= MAX_CONSECUTIVE_FAILURES:
                _finish(
                    run,
                    RunStatus.FAILED,
                    f"Stopped after {consecutive} items failed in a row; last error: {exc}",
                )
                return run
            continue
        consecutive = 0
        _run_add(run, done=1)
        run.cursor = item.pk
        LabelRun.objects.filter(pk=run.pk).update(cursor=item.pk)
    if run.done + run.failed + run.skipped >= run.total:
        _finish(run, RunStatus.DONE, run.message if run.failed else "")
    return run


def label_run_cancel(*, run: LabelRun) -> LabelRun:
    if not run.is_finished:
        _finish(run, RunStatus.CANCELLED, "Cancelled by an admin.")
    return run


def label_run_retry(*, run: LabelRun) -> LabelRun:
    """Start a failed, cancelled or budget-stopped run again over the items it has not labelled
    (those that failed included), through the job outbox."""
    if not run.is_finished or run.status == RunStatus.DONE:
        raise ApplicationError(
            f"Only a failed, cancelled or stopped run can be retried; run {run.pk} is "
            f"{run.get_status_display().lower()}.",
            status_code=409,
        )
    available = _candidates(
        project=run.project,
        task=run.task,
        labeler=run.labeler,
        source_round_id=run.source_round_id,
    ).count()
    todo = min(available, max(run.limit - run.done, 0)) if run.limit else available
    with transaction.atomic():
        LabelRun.objects.filter(pk=run.pk, status=run.status).update(
            status=RunStatus.QUEUED if todo else RunStatus.DONE,
            total=run.done + run.skipped + todo,
            failed=0,
            cursor=0,
            attempts=0,
            heartbeat_at=None,
            message="" if todo else "Nothing left to label.",
            finished_at=None if todo else timezone.now(),
        )
        run.refresh_from_db()
        run.queue_down = False
        if todo:
            jobs.enqueue_on_commit(LABEL_RUN_JOB, run)
    queue_down = run.queue_down
    run.refresh_from_db()
    run.queue_down = queue_down
    return run
