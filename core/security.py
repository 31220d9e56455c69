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
