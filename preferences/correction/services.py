"""Writes of the correction screen: a rater's edit or accepted LLM suggestion becomes a pair that
prefers it over the original, so they live with the pairs, not with the alt-texts."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import transaction

from annotate.models import AltText, AltTextOrigin
from annotate.selectors import project_role
from core.errors import ApplicationError, NotFound
from core.validation import text_check_storable
from preferences.models import (
    CandidatePair,
    CorrectionDecision,
    CorrectionReview,
    PairSource,
    Side,
)


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def alttext_correct(*, alt_text, user, text: str):
    """Store a rater's edit of `alt_text`; return (corrected AltText, CandidatePair) or (None, None).

    A real edit becomes a human-corrected AltText whose parent is the original, plus a
    CandidatePair (source "correction") that prefers the edited text. An "edit" that only
    changes whitespace stores nothing: it would be a pair of two equal texts.
    """
    if project_role(project=alt_text.post.project, user=user) is None:
        raise NotFound("No such alt-text.")
    text = text.strip()
    if not text:
        raise ApplicationError("The corrected alt-text is empty; use Keep original instead.")
    text_check_storable(text, what="The corrected alt-text")
    limit = settings.ALTPREF["MAX_ALT_TEXT_CHARS"]
    if len(text) > limit:
        raise ApplicationError(f"Alt-text is limited to {limit} characters (got {len(text)}).")
    if _same_text(text, alt_text.text):
        return None, None
    with transaction.atomic():
        edited = AltText.objects.create(
            post=alt_text.post,
            text=text,
            text_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            origin=AltTextOrigin.HUMAN_CORRECTED,
            parent=alt_text,
            author=user,
        )
        pair = CandidatePair.objects.create(
            post=alt_text.post,
            alt_a=edited,
            alt_b=alt_text,
            source=PairSource.CORRECTION,
            known_preference=Side.A,
        )
    return edited, pair


def alttext_correction_submit(*, alt_text, user, action: str, text: str = "", suggestion=None):
    """Apply one correction-screen decision and remember it; return the CorrectionReview.

    action: "edit" (store `text` if it differs), "accept" (the LLM suggestion is preferred
    over the original), "keep" (the original stays; nothing new is stored). A repeated submit
    of the same decision (double click, retry) returns the first one without storing more.
    """
    if project_role(project=alt_text.post.project, user=user) is None:
        raise NotFound("No such alt-text.")
    if action not in ("edit", "accept", "keep"):
        raise ApplicationError(f'Unknown action "{action}"; use edit, accept or keep.')
    with transaction.atomic():
        existing = (
            CorrectionReview.objects.select_for_update()
            .filter(alt_text=alt_text, rater=user)
            .first()
        )
        if existing is not None:
            return existing
        result = None
        if action == "edit":
            result, _pair = alttext_correct(alt_text=alt_text, user=user, text=text)
            decision = CorrectionDecision.EDITED if result else CorrectionDecision.UNCHANGED
        elif action == "accept":
            if (
                suggestion is None
                or suggestion.post_id != alt_text.post_id
                or suggestion.origin != AltTextOrigin.LLM_CORRECTED
            ):
                raise ApplicationError("There is no LLM suggestion to accept for this alt-text.")
            CandidatePair.objects.get_or_create(
                alt_a=suggestion,
                alt_b=alt_text,
                defaults={
                    "post": alt_text.post,
                    "source": PairSource.CORRECTION,
                    "known_preference": Side.A,
                },
            )
            result, decision = suggestion, CorrectionDecision.ACCEPTED
        else:
            decision = CorrectionDecision.KEPT
        return CorrectionReview.objects.create(
            alt_text=alt_text, rater=user, decision=decision, result=result
        )
