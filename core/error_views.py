"""The app's own error pages: 403, 404, 500, and a failed CSRF check that keeps the rater's work.

A CSRF failure on a rating page is nearly always an expired session or a lost cookie, not an
attack: the page says so and asks the rater to sign in again. The rater's answers on the item
are kept in the browser (static/js/keys.js stores them as they are chosen) and come back when
the item opens after sign-in.
"""

from __future__ import annotations

import re

from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

# /rate/items/<id>/submit/ (or edit, skip, undo) -> the item's own page, to come back to.
_ITEM = re.compile(r"^/rate/items/(\d+)/")


def _back_to(request) -> str:
    match = _ITEM.match(request.path)
    if match:
        return reverse("rate:item", kwargs={"assignment_id": int(match[1])})
    return request.path if request.method == "GET" else reverse("annotate:home")


def csrf_failure(request, reason: str = "", template_name: str | None = None):
    back = _back_to(request)
    context = {
        "status": 403,
        "title": "Sign in again to continue",
        "message": (
            "Your session or its security check ran out, so this was not saved. Sign in again: "
            "your answers on this item are kept in this browser and come back after you sign in."
        ),
        "sign_in_url": f"{reverse('login')}?{urlencode({'next': back})}",
        "back": back,
    }
    template = "error.html#body" if getattr(request, "htmx", False) else "error.html"
    return render(request, template, context, status=403)


def permission_denied(request, exception=None):
    return render(
        request,
        "403.html",
        {"status": 403, "message": "You do not have access to this page."},
        status=403,
    )


def page_not_found(request, exception=None):
    return render(
        request,
        "404.html",
        {"status": 404, "message": "There is nothing at this address."},
        status=404,
    )
