"""Feedback, the last phase of a round: the round's model writes alt-text for train-split posts,
and each output that passes the quality gate (modeltrain.quality) becomes a CandidatePair against
the post's current best alt-text, for raters to judge. An output that fails is kept with the
reason it was held back, so the round's page can say how many and why.

A round trained from a base model (not from another round) also has that base model write for
the same posts: raters judging those pairs are what places the base model in the human ranking
(modeltrain.human_eval). Every step is idempotent: a resumed round adds no second pair.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import transaction

from annotate.models import AltText, AltTextOrigin, Post
from preferences.models import CandidatePair, PairSource

from . import quality, selectors
from .models import RoundOutput, TrainingRound

log = logging.getLogger(__name__)


def _writers(round_: TrainingRound) -> list[tuple[str, bool]]:
    """(RoundOutput.model, is the trained model) for each model that writes feedback."""
    writers = [("trained", True)]
    if round_.options.get("feedback_base", True) and not round_.from_round_id:
        writers.append(("base", False))
    return writers


def round_feed_back(round_: TrainingRound) -> None:
    """Generate, gate and record the round's feedback candidates (the gpu worker's phase)."""
    from .services import _generate, _image_path, _resolve_base

    posts = selectors.feedback_posts(
        project_id=round_.project_id, limit=int(round_.options.get("feedback_limit") or 0)
    )
    if not posts:
        return
    items = [(_image_path(p), p.context) for p in posts]
    for model, trained in _writers(round_):
        done = set(
            RoundOutput.objects.filter(
                round=round_, purpose=RoundOutput.Purpose.FEEDBACK, model=model
            ).values_list("post_id", flat=True)
        )
        if all(p.pk in done for p in posts):
            texts = [""] * len(posts)  # a resumed round: every output is recorded already
        else:
            path = round_.checkpoint_path if trained else _resolve_base(round_)
            texts = _generate(round_, path, items, trained=trained)
        for post, text in zip(posts, texts, strict=True):
            feedback_record(round_=round_, post=post, text=text, model=model)
    pairs = (
        RoundOutput.objects.filter(
            round=round_, purpose=RoundOutput.Purpose.FEEDBACK, pair__isnull=False
        )
        .values("pair_id")
        .distinct()
        .count()
    )
    TrainingRound.objects.filter(pk=round_.pk).update(candidates_created=pairs)
    log.info("round %s: %s candidate pairs for the raters", round_.pk, pairs)


@transaction.atomic
def feedback_record(
    *, round_: TrainingRound, post: Post, text: str, model: str = "trained"
) -> RoundOutput:
    """Record one output: a pair against the post's best alt-text, or held back with a reason.

    The first text recorded for (round, post, model) is the one that counts, so repeating the
    call (a resumed round) changes nothing.
    """
    output, _ = RoundOutput.objects.get_or_create(
        round=round_,
        post=post,
        purpose=RoundOutput.Purpose.FEEDBACK,
        model=model,
        defaults={"text": text.strip()},
    )
    if output.pair_id or output.held_back:
        return output
    text = output.text
    # This round's own texts do not count as "already there": the trained and the base model
    # writing the same words share one alt-text (and pair), judged once for both.
    existing = (
        AltText.objects.filter(post=post)
        .exclude(origin=AltTextOrigin.MODEL, source_round_id=round_.pk)
        .values_list("text", flat=True)
    )
    verdict = quality.check(
        text,
        post_text=post.context,
        existing=existing,
        max_chars=int(round_.options.get("max_candidate_chars") or quality.DEFAULT_MAX_CHARS),
    )
    best = selectors.best_alt_text(post=post) if verdict.ok else None
    if not verdict.ok or best is None:
        output.held_back = verdict.reason or quality.NO_OPPONENT
        RoundOutput.objects.filter(pk=output.pk).update(held_back=output.held_back)
        return output
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    alt, _ = AltText.objects.get_or_create(
        post=post,
        origin=AltTextOrigin.MODEL,
        source_round_id=round_.pk,
        text_sha256=sha,
        defaults={"text": text},
    )
    pair, _ = CandidatePair.objects.get_or_create(
        alt_a=alt,
        alt_b=best,
        defaults={"post": post, "source": PairSource.MODEL, "source_round_id": round_.pk},
    )
    RoundOutput.objects.filter(pk=output.pk).update(alt_text=alt, pair=pair)
    output.alt_text, output.pair = alt, pair
    return output
