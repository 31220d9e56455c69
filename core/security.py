"""Request guards that sit in front of every view: JSON nesting depth and the
Content-Security-Policy header.

Kept apart from core/middleware.py (error pages) so each concern reads in one sitting.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse

from .validation import json_depth

# No API body we accept nests deeper than a handful of levels; json.loads (DRF's parser)
# raises RecursionError near 1,000, which used to be a 500.
MAX_JSON_DEPTH = 64


class JsonDepthLimitMiddleware:
    """A JSON body nested deeper than MAX_JSON_DEPTH is a 400 with a message, before parsing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "json" in request.content_type and request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                body = request.body
            except RequestDataTooBig:
                body = b""  # the view's own size limit answers that one
            limit = getattr(settings, "MAX_JSON_DEPTH", MAX_JSON_DEPTH)
            if body and json_depth(body) > limit:
                return JsonResponse(
                    {
                        "message": f"The JSON body is nested deeper than {limit} levels.",
                        "extra": {},
                    },
                    status=400,
                )
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Adds settings.CONTENT_SECURITY_POLICY to every response that has none of its own.

    The policy allows scripts and styles from our own static files only, so templates carry
    no inline <script>, <style> or style="" (htmx is told not to inject its indicator style).
    An empty setting turns the header off.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


def csp_override(policy: str):
    """Decorator: this view's responses carry `policy` instead of the site-wide one (docs pages
    whose third-party UI injects styles)."""

    def wrap(view):
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = policy
            return response

        return wrapped

    return wrap


# Swagger UI and Redoc (local sidecar files) inject <style> elements; Redoc runs a blob: worker.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
