"""The correction screen: edit an alt-text with a live word diff and checks, accept an LLM
suggestion, or keep the original."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotate.checks import alt_text_checks, word_diff
from annotate.models import AltText
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError, NotFound
from preferences.selectors import (
    correction_next,
    llm_suggestion_for,
    llm_suggestion_model,
    rater_progress,
)

from .services import alttext_correction_submit

# Outcomes travel as a code in the redirect URL and are announced in the page's live region.
FLASH = {
    "edited": "Saved your correction.",
    "unchanged": "No change to the alt-text, so nothing new was stored.",
    "accepted": "Accepted the suggestion.",
    "kept": "Kept the original alt-text.",
}


def _alt_in_project(project, alt_id: int) -> AltText:
    alt = (
        AltText.objects.select_related("post__image")
        .filter(pk=alt_id, post__project=project)
        .first()
    )
    if alt is None:
        raise NotFound("No such alt-text.")
    return alt


def _context(request, project, alt: AltText, *, text: str | None = None, errors=None) -> dict:
    text = alt.text if text is None else text
    suggestion = llm_suggestion_for(alt_text=alt)
    return {
        "project": project,
        "alt": alt,
        "post": alt.post,
        "text": text,
        "suggestion": suggestion,
        # The LLM side may record the model on the alt-text later; show it when it is there.
        "suggestion_model": llm_suggestion_model(suggestion=suggestion),
        "checks": alt_text_checks(text=text, context=alt.post.context),
        "diff": word_diff(before=alt.text, after=text),
        "changed": " ".join(text.split()) != " ".join(alt.text.split()),
        "errors": errors or [],
        "max_chars": settings.ALTPREF["MAX_ALT_TEXT_CHARS"],
        "progress": rater_progress(project=project, user=request.user),
        "flash": FLASH.get(request.GET.get("done", ""), ""),
    }


@require_GET
@login_required
def correct_next(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id)
    alt = correction_next(project=project, user=request.user)
    if alt is None:
        return render(
            request,
            "annotate/correct_empty.html",
            {"project": project, "flash": FLASH.get(request.GET.get("done", ""), "")},
        )
    return render(request, "annotate/correct.html", _context(request, project, alt))


@require_GET
@login_required
def correct_item(request, project_id: int, alt_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id)
    alt = _alt_in_project(project, alt_id)
    return render(request, "annotate/correct.html", _context(request, project, alt))


@require_POST
@login_required
def correct_check(request, project_id: int, alt_id: int):
    """htmx: the diff and checks for the text being edited (the editor itself is not swapped)."""
    project = project_get_for_user(user=request.user, project_id=project_id)
    alt = _alt_in_project(project, alt_id)
    text = request.POST.get("text", "")[: settings.ALTPREF["MAX_ALT_TEXT_CHARS"] + 1]
    return render(
        request, "annotate/correct.html#feedback", _context(request, project, alt, text=text)
    )


@require_POST
@login_required
def correct_submit(request, project_id: int, alt_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id)
    alt = _alt_in_project(project, alt_id)
    action = request.POST.get("action", "")
    text = request.POST.get("text", "")
    try:
        review = alttext_correction_submit(
            alt_text=alt,
            user=request.user,
            action=action,
            text=text,
            suggestion=llm_suggestion_for(alt_text=alt) if action == "accept" else None,
        )
    except ApplicationError as exc:
        if exc.status_code != 400:
            raise
        context = _context(request, project, alt, text=text, errors=[exc.message])
        return render(request, "annotate/correct.html", context, status=400)
    return redirect(f"{reverse('correct:next', args=[project.id])}?done={review.decision}")
