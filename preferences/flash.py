"""What the rater and review pages share: the answer rows and the outcome messages."""

from __future__ import annotations

from django.shortcuts import redirect

from core.reverse import path_for

from .models import Choice

CHOICE_ROWS = [
    (Choice.A, "A is better", "1"),
    (Choice.B, "B is better", "2"),
    (Choice.TIE, "Tie", "3"),
    (Choice.BOTH_BAD, "Both bad", "4"),
]


# Outcomes travel as a short code in the redirect URL, not in the session: no session write per
# submit, and the message is announced on the page the rater lands on.
FLASH = {
    "saved": "Saved your answers. Next item.",
    "edited": "Saved your changes.",
    "again": "That item was already saved; nothing was stored twice.",
    "skipped": "Skipped; the item went back to the queue.",
    "undone": "Undone: your answers for this item were removed. Answer again.",
    "adjudicated": "Adjudication saved.",
}


def flash_text(request, done: str | None = None) -> str:
    return FLASH.get(done or request.GET.get("done", ""), "")


def redirect_done(name: str, done: str, **kwargs):
    """Redirect to the named page, telling it the outcome to announce."""
    return redirect(f"{path_for(name, kwargs=kwargs)}?done={done}")
